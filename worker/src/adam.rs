//! Adam (Kingma & Ba) as PyTorch defines it, updating the parameters in place.
//!
//! candle's own AdamW keeps its moments private (so it cannot be checkpointed) and spends
//! about a dozen tensor operations per parameter per step. Here the two moments of a
//! parameter live in one flat state tensor `[m; v]`; on the CPU one fused loop updates the
//! moments and a second one the parameter, with no allocation. Other devices use the same
//! state through ordinary tensor operations.
//!
//! m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
//! p ← p − lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + ε)

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp1, InplaceOp2, Layout, Result, Tensor, Var};

use crate::params::Params;

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// The optimizer and its state.
pub struct Adam {
    /// Learning rate.
    lr: f64,
    /// Steps taken so far (t in the bias corrections).
    step: u64,
    /// Per parameter (same order as `Params::vars`): flat `[m; v]` of 2 × numel values.
    state: Vec<Var>,
    /// Use the fused in-place CPU loops (false: tensor operations, as on a GPU).
    fused: bool,
}

/// Moment update on the CPU: `self` is the flat `[m; v]` state, the source the gradient.
struct Moments;

/// Moment update on the CPU from a gradient computed outside candle (plain values).
struct MomentsOf<'a>(&'a [f32]);

/// Parameter update on the CPU from the `[m; v]` state.
struct Apply {
    lr_t: f32,
    eps_t: f32,
}

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let (a, b) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("adam: non-contiguous tensor".into()))?;
    Ok(&s.as_slice::<f32>()?[a..b])
}

fn contiguous_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> Result<&'a mut [f32]> {
    let (a, b) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("adam: non-contiguous tensor".into()))?;
    match s {
        CpuStorage::F32(v) => Ok(&mut v[a..b]),
        _ => candle_core::bail!("adam: parameters must be f32"),
    }
}

impl InplaceOp2 for Moments {
    fn name(&self) -> &'static str {
        "adam-moments"
    }
    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        moments(contiguous_mut(s1, l1)?, contiguous(s2, l2)?)
    }
}

impl InplaceOp1 for MomentsOf<'_> {
    fn name(&self) -> &'static str {
        "adam-moments-of"
    }
    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> Result<()> {
        moments(contiguous_mut(s, l)?, self.0)
    }
}

/// m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²  over the flat `[m; v]` state `mv`.
fn moments(mv: &mut [f32], g: &[f32]) -> Result<()> {
    if mv.len() != 2 * g.len() {
        candle_core::bail!(
            "adam: gradient of {} values for a state of {}",
            g.len(),
            mv.len()
        );
    }
    let (m, v) = mv.split_at_mut(g.len());
    let (b1, b2) = (BETA1 as f32, BETA2 as f32);
    for ((m, v), &g) in m.iter_mut().zip(v.iter_mut()).zip(g) {
        *m = b1 * *m + (1.0 - b1) * g;
        *v = b2 * *v + (1.0 - b2) * g * g;
    }
    Ok(())
}

impl InplaceOp2 for Apply {
    fn name(&self) -> &'static str {
        "adam-apply"
    }
    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let mv = contiguous(s2, l2)?;
        let p = contiguous_mut(s1, l1)?;
        let (m, v) = mv.split_at(p.len());
        for ((p, &m), &v) in p.iter_mut().zip(m).zip(v) {
            *p -= self.lr_t * m / (v.sqrt() + self.eps_t);
        }
        Ok(())
    }
}

impl Adam {
    /// A fresh optimizer for `params` with learning rate `lr`.
    pub fn new(params: &Params, lr: f64) -> Result<Self> {
        let state = params
            .vars()
            .iter()
            .map(|(_, v)| Var::zeros(2 * v.elem_count(), candle_core::DType::F32, v.device()))
            .collect::<Result<_>>()?;
        let fused = params.vars().iter().all(|(_, v)| v.device().is_cpu());
        Ok(Adam {
            lr,
            step: 0,
            state,
            fused,
        })
    }

    /// Chooses between the fused CPU loops and plain tensor operations (the GPU path);
    /// both compute the same update, which a test checks.
    pub fn set_fused(&mut self, fused: bool) {
        self.fused = fused && self.state.iter().all(|s| s.device().is_cpu());
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Counts a step; returns the bias-corrected learning rate and epsilon.
    fn begin(&mut self) -> (f64, f64) {
        self.step += 1;
        let t = self.step as i32;
        let c1 = 1.0 - BETA1.powi(t);
        let c2 = 1.0 - BETA2.powi(t);
        // p -= lr/c1 · m / (sqrt(v)/sqrt(c2) + ε)  ==  p -= (lr·sqrt(c2)/c1) · m / (sqrt(v) + ε·sqrt(c2))
        (self.lr * c2.sqrt() / c1, EPS * c2.sqrt())
    }

    /// One update of every parameter that has a gradient in `grads`.
    pub fn step(&mut self, params: &Params, grads: &GradStore) -> Result<()> {
        let (lr_t, eps_t) = self.begin();
        for ((_, var), state) in params.vars().iter().zip(&self.state) {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let g = g.flatten_all()?.contiguous()?;
            if self.fused {
                state.as_tensor().inplace_op2(&g, &Moments)?;
                apply(var, state, lr_t, eps_t)?;
            } else {
                tensor_update(var, state, &g, lr_t, eps_t)?;
            }
        }
        Ok(())
    }

    /// One update of every parameter from plain gradient values, one slice per parameter
    /// in `Params` order (gradients computed by hand rather than by candle's autograd).
    pub fn step_values(&mut self, params: &Params, grads: &[Vec<f32>]) -> Result<()> {
        if grads.len() != params.vars().len() {
            candle_core::bail!(
                "adam: {} gradients for {} parameters",
                grads.len(),
                params.vars().len()
            );
        }
        for ((name, var), g) in params.vars().iter().zip(grads) {
            if g.len() != var.elem_count() {
                candle_core::bail!("adam: gradient of '{name}' has {} values", g.len());
            }
        }
        let (lr_t, eps_t) = self.begin();
        for (((_, var), state), g) in params.vars().iter().zip(&self.state).zip(grads) {
            if self.fused {
                state.as_tensor().inplace_op1(&MomentsOf(g))?;
                apply(var, state, lr_t, eps_t)?;
            } else {
                let g = Tensor::from_slice(g, g.len(), var.device())?;
                tensor_update(var, state, &g, lr_t, eps_t)?;
            }
        }
        Ok(())
    }

    /// The state for a checkpoint: `adam.<param name>` tensors and the step count.
    pub fn export(&self, params: &Params) -> (HashMap<String, Tensor>, u64) {
        let map = params
            .vars()
            .iter()
            .zip(&self.state)
            .map(|((n, _), s)| (format!("adam.{n}"), s.as_tensor().clone()))
            .collect();
        (map, self.step)
    }

    /// Restores the state written by [`Adam::export`].
    pub fn import(
        &mut self,
        params: &Params,
        values: &HashMap<String, Tensor>,
        step: u64,
    ) -> Result<()> {
        for ((name, _), state) in params.vars().iter().zip(&self.state) {
            let key = format!("adam.{name}");
            let t = values.get(&key).ok_or_else(|| {
                candle_core::Error::Msg(format!("optimizer state '{key}' missing"))
            })?;
            if t.dims() != state.dims() {
                candle_core::bail!("optimizer state '{key}' has the wrong shape {:?}", t.dims());
            }
            state.set(&t.to_device(state.device())?)?;
        }
        self.step = step;
        Ok(())
    }
}

/// The fused CPU parameter update from the `[m; v]` state.
fn apply(var: &Var, state: &Var, lr_t: f64, eps_t: f64) -> Result<()> {
    let apply = Apply {
        lr_t: lr_t as f32,
        eps_t: eps_t as f32,
    };
    var.as_tensor().inplace_op2(state.as_tensor(), &apply)
}

/// The same update through tensor operations (any device); `g` is flat.
fn tensor_update(var: &Var, state: &Var, g: &Tensor, lr_t: f64, eps_t: f64) -> Result<()> {
    let n = var.elem_count();
    let m = state.narrow(0, 0, n)?;
    let v = state.narrow(0, n, n)?;
    let m = ((m * BETA1)? + (g * (1.0 - BETA1))?)?;
    let v = ((v * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
    let upd = ((&m * lr_t)? / (v.sqrt()? + eps_t)?)?.reshape(var.shape())?;
    var.set(&(var.as_tensor() - upd)?)?;
    state.set(&Tensor::cat(&[&m, &v], 0)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn one_param(value: f32) -> (Params, Tensor) {
        let mut p = Params::new(&Device::Cpu);
        let mut rng = crate::rng::stream(0, crate::rng::Purpose::Init, 0);
        let t = p.uniform("w", &[3], 0.0, &mut rng).unwrap();
        p.vars()[0]
            .1
            .set(&Tensor::new(&[value, value, value], &Device::Cpu).unwrap())
            .unwrap();
        (p, t)
    }

    #[test]
    fn first_step_moves_by_lr_in_the_gradient_sign() {
        // After one step m̂ = g and v̂ = g², so p moves by lr·g/(|g|+ε) ≈ lr·sign(g).
        let (p, t) = one_param(1.0);
        let loss = (t.as_ref() * 0.5).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let mut adam = Adam::new(&p, 0.1).unwrap();
        adam.step(&p, &grads).unwrap();
        let v: Vec<f32> = p.vars()[0].1.as_tensor().to_vec1().unwrap();
        for x in v {
            assert!((x - 0.9).abs() < 1e-6, "{x}");
        }
    }

    #[test]
    fn fused_and_tensor_paths_agree_over_many_steps() {
        let run = |fused: bool| {
            let (p, t) = one_param(0.3);
            let mut adam = Adam::new(&p, 0.01).unwrap();
            adam.set_fused(fused);
            for _ in 0..50 {
                // loss = sum((p - 2)^2 · [1, 2, 3])
                let w = Tensor::new(&[1f32, 2., 3.], &Device::Cpu).unwrap();
                let loss = ((t.as_ref() - 2.0).unwrap().sqr().unwrap() * w)
                    .unwrap()
                    .sum_all()
                    .unwrap();
                adam.step(&p, &loss.backward().unwrap()).unwrap();
            }
            p.vars()[0].1.as_tensor().to_vec1::<f32>().unwrap()
        };
        let (a, b) = (run(true), run(false));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
        assert!(
            a.iter().all(|&x| x > 0.6),
            "parameters moved towards 2: {a:?}"
        );
    }

    #[test]
    fn plain_value_gradients_update_like_a_grad_store() {
        for fused in [true, false] {
            let (pa, ta) = one_param(0.3);
            let (pb, _) = one_param(0.3);
            let (mut a, mut b) = (Adam::new(&pa, 0.05).unwrap(), Adam::new(&pb, 0.05).unwrap());
            a.set_fused(fused);
            b.set_fused(fused);
            for _ in 0..20 {
                let w = Tensor::new(&[1f32, -2., 3.], &Device::Cpu).unwrap();
                let loss = ((ta.as_ref() - 1.0).unwrap().sqr().unwrap() * &w)
                    .unwrap()
                    .sum_all()
                    .unwrap();
                let grads = loss.backward().unwrap();
                let g: Vec<f32> = grads.get(&ta).unwrap().to_vec1().unwrap();
                a.step(&pa, &grads).unwrap();
                b.step_values(&pb, &[g]).unwrap();
            }
            let va: Vec<f32> = pa.vars()[0].1.as_tensor().to_vec1().unwrap();
            let vb: Vec<f32> = pb.vars()[0].1.as_tensor().to_vec1().unwrap();
            assert_eq!(va, vb, "fused={fused}");
            assert!((va[0] - 0.3).abs() > 0.1, "parameters moved: {va:?}");
        }
        let (p, _) = one_param(0.3);
        let mut adam = Adam::new(&p, 0.1).unwrap();
        assert!(
            adam.step_values(&p, &[vec![1.0; 2]]).is_err(),
            "wrong size refused"
        );
        assert!(adam.step_values(&p, &[]).is_err(), "wrong count refused");
    }
}
