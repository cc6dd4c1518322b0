//! Moving parameters into the gathered weight buffers and gradients out of them, both in
//! the order `SeqModel::new` registers parameters: per gate `wi` (1, H), `wh` (H, H),
//! `b` (1, H); then the GRU's `bhn` (1, H); then `head.w` (H, 2) and `head.b` (1, 2).

use candle_core::{Result, Storage, Var};
use wick_common::trial::Cell;

use super::Bptt;
use crate::params::Params;

/// Calls `f` with the values of a CPU f32 parameter, without copying them.
fn with_values<T>(var: &Var, f: impl FnOnce(&[f32]) -> T) -> Result<T> {
    let (storage, layout) = var.as_tensor().storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("hand-written passes need parameters on the CPU")
    };
    let (a, b) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("non-contiguous parameter".into()))?;
    Ok(f(&cpu.as_slice::<f32>()?[a..b]))
}

impl Bptt {
    /// Number of parameter tensors of the model.
    fn tensor_count(&self) -> usize {
        let gates = self.gh / self.h;
        3 * gates + usize::from(self.cell == Cell::Gru) + 2
    }

    /// Copies the current parameter values into the weight buffers (call before every
    /// batch: the optimizer changes them).
    pub fn load(&mut self, params: &Params) -> Result<()> {
        let vars = params.vars();
        if vars.len() != self.tensor_count() {
            candle_core::bail!(
                "{} parameters for a {} model, expected {}",
                vars.len(),
                self.cell,
                self.tensor_count()
            );
        }
        let (h, gh) = (self.h, self.gh);
        let gates = gh / h;
        let expect = |i: usize, n: usize| -> Result<&Var> {
            let (name, v) = &vars[i];
            if v.elem_count() != n {
                candle_core::bail!("parameter '{name}' has {} values, not {n}", v.elem_count());
            }
            Ok(v)
        };
        for g in 0..gates {
            let cols = g * h..(g + 1) * h;
            with_values(expect(3 * g, h)?, |s| {
                self.wi[cols.clone()].copy_from_slice(s)
            })?;
            with_values(expect(3 * g + 1, h * h)?, |s| {
                for (dst, src) in self.rec.w.chunks_exact_mut(gh).zip(s.chunks_exact(h)) {
                    dst[cols.clone()].copy_from_slice(src);
                }
            })?;
            with_values(expect(3 * g + 2, h)?, |s| {
                self.bias[cols.clone()].copy_from_slice(s)
            })?;
        }
        let mut next = 3 * gates;
        if self.cell == Cell::Gru {
            with_values(expect(next, h)?, |s| self.bhn.copy_from_slice(s))?;
            next += 1;
        }
        with_values(expect(next, 2 * h)?, |s| self.head_w.copy_from_slice(s))?;
        with_values(expect(next + 1, 2)?, |s| self.head_b.copy_from_slice(s))?;
        self.rec.pack();
        Ok(())
    }

    /// Splits the gradient accumulators into `grads`, in parameter order.
    pub(super) fn export_grads(&mut self) {
        let (h, gh) = (self.h, self.gh);
        let gates = gh / h;
        if self.grads.len() != self.tensor_count() {
            let mut sizes = Vec::new();
            for _ in 0..gates {
                sizes.extend([h, h * h, h]);
            }
            if self.cell == Cell::Gru {
                sizes.push(h);
            }
            sizes.extend([2 * h, 2]);
            self.grads = sizes.into_iter().map(|n| vec![0.0; n]).collect();
        }
        for g in 0..gates {
            let cols = g * h..(g + 1) * h;
            self.grads[3 * g].copy_from_slice(&self.g_wi[cols.clone()]);
            let wh = &mut self.grads[3 * g + 1];
            for (dst, src) in wh.chunks_exact_mut(h).zip(self.g_wcat.chunks_exact(gh)) {
                dst.copy_from_slice(&src[cols.clone()]);
            }
            self.grads[3 * g + 2].copy_from_slice(&self.g_bias[cols]);
        }
        let mut next = 3 * gates;
        if self.cell == Cell::Gru {
            self.grads[next].copy_from_slice(&self.g_bhn);
            next += 1;
        }
        self.grads[next].copy_from_slice(&self.g_head_w);
        self.grads[next + 1].copy_from_slice(&self.g_head_b);
    }
}
