//! One-layer RNN (tanh), LSTM and GRU over a window of L daily values, with a linear head
//! giving two logits (no increase / increase) from the last hidden state.
//!
//! Input size is 1, so each gate's input term is a broadcast product x_t · w_i rather than
//! a matmul. Recurrent weights are stored as (in, out) so a step is `h.matmul(w_h)` with no
//! transpose. The gate equations are PyTorch's (its two biases per gate are one here where
//! they only ever appear summed).

use candle_core::{Device, Result, Tensor};
use rand_chacha::ChaCha8Rng;
use wick_common::trial::Cell;

use crate::params::Params;

/// One gate: input weights (1, H), recurrent weights (H, H), bias (1, H).
struct Gate {
    wi: Tensor,
    wh: Tensor,
    b: Tensor,
}

impl Gate {
    fn new(p: &mut Params, name: &str, h: usize, rng: &mut ChaCha8Rng) -> Result<Self> {
        let k = 1.0 / (h as f64).sqrt();
        Ok(Gate {
            wi: p.uniform(&format!("{name}.wi"), &[1, h], k, rng)?,
            wh: p.uniform(&format!("{name}.wh"), &[h, h], k, rng)?,
            b: p.uniform(&format!("{name}.b"), &[1, h], k, rng)?,
        })
    }

    /// x_t·wi + b (+ h·wh when there is a previous state).
    fn pre(&self, x: &Tensor, h: Option<&Tensor>) -> Result<Tensor> {
        let a = x.broadcast_mul(&self.wi)?.broadcast_add(&self.b)?;
        match h {
            Some(h) => a + h.matmul(&self.wh)?,
            None => Ok(a),
        }
    }
}

/// The recurrent part of the model.
enum Recurrent {
    Rnn(Gate),
    Lstm {
        i: Gate,
        f: Gate,
        g: Gate,
        o: Gate,
    },
    /// `bhn` is the recurrent bias of the candidate, which the reset gate scales.
    Gru {
        r: Gate,
        z: Gate,
        n: Gate,
        bhn: Tensor,
    },
}

/// A sequence classifier.
pub struct SeqModel {
    /// Which cell.
    pub cell: Cell,
    /// Hidden units.
    pub hidden: usize,
    rec: Recurrent,
    /// Head weights (H, 2) and bias (1, 2).
    head_w: Tensor,
    head_b: Tensor,
}

impl SeqModel {
    /// Builds a model, registering its parameters in `params` with initial values from `rng`.
    pub fn new(
        cell: Cell,
        hidden: usize,
        params: &mut Params,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self> {
        let h = hidden;
        let rec = match cell {
            Cell::Rnn => Recurrent::Rnn(Gate::new(params, "rnn", h, rng)?),
            Cell::Lstm => Recurrent::Lstm {
                i: Gate::new(params, "lstm.i", h, rng)?,
                f: Gate::new(params, "lstm.f", h, rng)?,
                g: Gate::new(params, "lstm.g", h, rng)?,
                o: Gate::new(params, "lstm.o", h, rng)?,
            },
            Cell::Gru => Recurrent::Gru {
                r: Gate::new(params, "gru.r", h, rng)?,
                z: Gate::new(params, "gru.z", h, rng)?,
                n: Gate::new(params, "gru.n", h, rng)?,
                bhn: params.uniform("gru.bhn", &[1, h], 1.0 / (h as f64).sqrt(), rng)?,
            },
        };
        let k = 1.0 / (h as f64).sqrt();
        let head_w = params.uniform("head.w", &[h, 2], k, rng)?;
        let head_b = params.uniform("head.b", &[1, 2], k, rng)?;
        Ok(SeqModel {
            cell,
            hidden,
            rec,
            head_w,
            head_b,
        })
    }

    /// Logits (B, 2) for a time-major batch `xt` of shape (L, B).
    pub fn forward(&self, xt: &Tensor) -> Result<Tensor> {
        let steps = xt.dim(0)?;
        let mut h: Option<Tensor> = None;
        let mut c: Option<Tensor> = None;
        for t in 0..steps {
            let x = xt.get(t)?.unsqueeze(1)?;
            let hp = h.as_ref();
            h = Some(match &self.rec {
                Recurrent::Rnn(g) => g.pre(&x, hp)?.tanh()?,
                Recurrent::Lstm { i, f, g, o } => {
                    let ig = sigmoid(&i.pre(&x, hp)?)?;
                    let gg = g.pre(&x, hp)?.tanh()?;
                    let cn = match &c {
                        Some(c) => ((sigmoid(&f.pre(&x, hp)?)? * c)? + (ig * gg)?)?,
                        None => (ig * gg)?,
                    };
                    let hn = (sigmoid(&o.pre(&x, hp)?)? * cn.tanh()?)?;
                    c = Some(cn);
                    hn
                }
                Recurrent::Gru { r, z, n, bhn } => {
                    let zg = sigmoid(&z.pre(&x, hp)?)?;
                    let xn = n.pre(&x, None)?;
                    let cand = match hp {
                        Some(hp) => {
                            let rg = sigmoid(&r.pre(&x, Some(hp))?)?;
                            let hn = hp.matmul(&n.wh)?.broadcast_add(bhn)?;
                            (xn + (rg * hn)?)?.tanh()?
                        }
                        // h0 = 0: the recurrent term is the bias alone.
                        None => {
                            let rg = sigmoid(&r.pre(&x, None)?)?;
                            (xn + rg.broadcast_mul(bhn)?)?.tanh()?
                        }
                    };
                    // h' = (1 − z)·n + z·h  =  n + z·(h − n)
                    match hp {
                        Some(hp) => (&cand + (zg * (hp - &cand)?)?)?,
                        None => (&cand - (zg * &cand)?)?,
                    }
                }
            });
        }
        let h = h.ok_or_else(|| candle_core::Error::Msg("empty input sequence".into()))?;
        h.matmul(&self.head_w)?.broadcast_add(&self.head_b)
    }

    /// P(increase) for each row of a time-major batch.
    pub fn prob_increase(&self, xt: &Tensor) -> Result<Vec<f32>> {
        let p = candle_nn::ops::softmax_last_dim(&self.forward(xt)?.detach())?;
        p.narrow(1, 1, 1)?.squeeze(1)?.to_vec1()
    }
}

fn sigmoid(x: &Tensor) -> Result<Tensor> {
    candle_nn::ops::sigmoid(x)
}

/// Packs rows `idx` of a row-major (n, L) window matrix into a time-major (L, B) tensor.
pub fn batch_time_major(x: &[f32], l: usize, idx: &[usize], device: &Device) -> Result<Tensor> {
    let b = idx.len();
    let mut out = vec![0f32; l * b];
    for (j, &i) in idx.iter().enumerate() {
        for (t, &v) in x[i * l..(i + 1) * l].iter().enumerate() {
            out[t * b + j] = v;
        }
    }
    Tensor::from_vec(out, (l, b), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Purpose, stream};

    #[test]
    fn every_cell_gives_two_logits_per_row() {
        for cell in [Cell::Rnn, Cell::Lstm, Cell::Gru] {
            let mut p = Params::new(&Device::Cpu);
            let m = SeqModel::new(cell, 8, &mut p, &mut stream(0, Purpose::Init, 0)).unwrap();
            let x: Vec<f32> = (0..5 * 7).map(|i| (i as f32 * 0.37).sin()).collect();
            let xt = batch_time_major(&x, 7, &[0, 1, 2, 3, 4], &Device::Cpu).unwrap();
            assert_eq!(m.forward(&xt).unwrap().dims(), &[5, 2], "{cell}");
            let p1 = m.prob_increase(&xt).unwrap();
            assert!(p1.iter().all(|p| (0.0..=1.0).contains(p)));
        }
        // parameter counts: 3 H-vectors per gate + H² per gate + head
        let count = |cell| {
            let mut p = Params::new(&Device::Cpu);
            SeqModel::new(cell, 4, &mut p, &mut stream(0, Purpose::Init, 0)).unwrap();
            p.count()
        };
        assert_eq!(count(Cell::Rnn), 4 + 16 + 4 + 8 + 2);
        assert_eq!(count(Cell::Lstm), 4 * (4 + 16 + 4) + 8 + 2);
        assert_eq!(count(Cell::Gru), 3 * (4 + 16 + 4) + 4 + 8 + 2);
    }

    #[test]
    fn time_major_packing() {
        let x = [1., 2., 3., 4., 5., 6.]; // two windows of L = 3
        let t = batch_time_major(&x, 3, &[1, 0], &Device::Cpu).unwrap();
        assert_eq!(
            t.to_vec2::<f32>().unwrap(),
            vec![vec![4., 1.], vec![5., 2.], vec![6., 3.]]
        );
    }
}
