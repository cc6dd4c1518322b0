//! A hand-written forward and backward pass through time for the sequence classifier on the
//! CPU: the fast path of covid training, computing exactly what `SeqModel` and candle's
//! autograd compute (the tests hold it to them and to finite differences), several times
//! faster at the covid sizes.
//!
//! Layout: rows are batch elements, all row-major. The recurrent weights of every gate are
//! gathered side by side into one (H, G·H) matrix so that a step's recurrent terms are one
//! matrix product; every step's hidden state and gate activations are kept in buffers that
//! live as long as the `Bptt`, and the backward pass adds each step's share of the
//! recurrent weights' gradient as it goes (keeping one step's gradient with respect to the
//! pre-activations, not the sequence's). The three products a step makes with those weights
//! live in `recurrent` (register tiles with the weights packed once a batch, or the `gemm`
//! crate), single-threaded: at these sizes splitting them across threads loses. The
//! per-cell steps live in `rnn`, `lstm` and `gru` (their loops compiled a second time for
//! AVX2 and FMA, chosen at run time); `act` has the vectorisable activations, `lanes` the
//! loop helper that keeps many-array row loops vectorised; `load` moves parameters in and
//! gradients out in `Params` order.

mod act;
mod gru;
mod lanes;
mod load;
mod lstm;
mod recurrent;
mod rnn;
#[cfg(test)]
mod tests;

use wick_common::trial::Cell;

use recurrent::Recurrent;

use crate::kernels::{Fused, MulAdd, Separate};

/// Evaluates `$wide` (a call of an AVX2 + FMA build, whose activations fuse their
/// multiply-adds) when the CPU has both features, else `$plain` (separate multiplies and
/// adds). The two round differently in the last bits, so results are reproducible on one
/// kind of CPU, and across CPUs to within rounding.
macro_rules! wide {
    ($wide:expr, $plain:expr) => {{
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA, the only features `$wide` is compiled for.
            unsafe { $wide };
        } else {
            $plain;
        }
        #[cfg(not(target_arch = "x86_64"))]
        $plain;
    }};
}

/// Scratch space and weights for the hand-written passes of one model.
pub struct Bptt {
    cell: Cell,
    /// Hidden units H.
    h: usize,
    /// Gates G (1, 4 or 3); `gh` = G·H.
    gh: usize,
    /// Recurrent weights of all gates, (H, G·H), and their products.
    rec: Recurrent,
    /// Input weights and biases of all gates, G·H each.
    wi: Vec<f32>,
    bias: Vec<f32>,
    /// GRU only: the candidate's recurrent bias (H).
    bhn: Vec<f32>,
    /// Head (H, 2) and its bias.
    head_w: Vec<f32>,
    head_b: [f32; 2],
    /// Shape of the batch in the buffers.
    l: usize,
    b: usize,
    /// Inputs, time-major (L, B).
    x: Vec<f32>,
    /// Hidden states ((L+1)·B, H); step 0 is the zero initial state.
    hs: Vec<f32>,
    /// Gate activations (L·B, G·H) (unused by the RNN, whose activation is the state).
    acts: Vec<f32>,
    /// LSTM cell states ((L+1)·B, H).
    cs: Vec<f32>,
    /// LSTM: tanh of the cell state; GRU: the candidate's recurrent term h·W_n + b_hn.
    aux: Vec<f32>,
    /// Gradients of the loss with respect to one step's recurrent pre-activations (B, G·H),
    /// rows `dq_rs` apart (see `Recurrent::dq_stride`).
    dq: Vec<f32>,
    dq_rs: usize,
    /// Gradients with respect to the current hidden (and cell) state (B, H).
    dh: Vec<f32>,
    dc: Vec<f32>,
    /// Logits (B, 2).
    logits: Vec<f32>,
    /// Gradient accumulators: same shapes as the weights above.
    g_wcat: Vec<f32>,
    g_wi: Vec<f32>,
    g_bias: Vec<f32>,
    g_bhn: Vec<f32>,
    g_head_w: Vec<f32>,
    g_head_b: [f32; 2],
    /// Gradients in `Params` order, filled by `loss_and_grads`.
    grads: Vec<Vec<f32>>,
}

impl Bptt {
    /// Buffers for a `cell` model of `hidden` units; weights come from [`Bptt::load`].
    pub fn new(cell: Cell, hidden: usize) -> Self {
        let h = hidden;
        let gates = match cell {
            Cell::Rnn => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        };
        let gh = gates * h;
        Bptt {
            cell,
            h,
            gh,
            rec: Recurrent::new(h, gh),
            wi: vec![0.0; gh],
            bias: vec![0.0; gh],
            bhn: vec![0.0; h],
            head_w: vec![0.0; 2 * h],
            head_b: [0.0; 2],
            l: 0,
            b: 0,
            x: Vec::new(),
            hs: Vec::new(),
            acts: Vec::new(),
            cs: Vec::new(),
            aux: Vec::new(),
            dq: Vec::new(),
            dq_rs: gh,
            dh: Vec::new(),
            dc: Vec::new(),
            logits: Vec::new(),
            g_wcat: vec![0.0; h * gh],
            g_wi: vec![0.0; gh],
            g_bias: vec![0.0; gh],
            g_bhn: vec![0.0; h],
            g_head_w: vec![0.0; 2 * h],
            g_head_b: [0.0; 2],
            grads: Vec::new(),
        }
    }

    /// Sizes the buffers for `l` steps of `b` rows (they only grow).
    fn shape(&mut self, l: usize, b: usize) {
        let (h, gh) = (self.h, self.gh);
        self.l = l;
        self.b = b;
        let grow = |v: &mut Vec<f32>, n: usize| v.resize(n.max(v.len()), 0.0);
        grow(&mut self.x, l * b);
        grow(&mut self.hs, (l + 1) * b * h);
        grow(&mut self.dh, b * h);
        grow(&mut self.logits, 2 * b);
        self.dq_rs = self.rec.dq_stride();
        grow(&mut self.dq, b * self.dq_rs);
        if self.cell != Cell::Rnn {
            grow(&mut self.acts, l * b * gh);
            grow(&mut self.aux, l * b * h);
        }
        if self.cell == Cell::Lstm {
            grow(&mut self.cs, (l + 1) * b * h);
            grow(&mut self.dc, b * h);
        }
    }

    /// Runs the model over a time-major (L, B) batch `xt`, leaving every step's state in
    /// the buffers; returns the logits (B, 2), row-major.
    pub fn forward(&mut self, xt: &[f32], l: usize, b: usize) -> &[f32] {
        assert_eq!(xt.len(), l * b, "input is not (L, B)");
        assert!(l > 0, "empty input sequence");
        self.shape(l, b);
        self.x[..l * b].copy_from_slice(xt);
        let bh = b * self.h;
        self.hs[..bh].fill(0.0);
        if self.cell == Cell::Lstm {
            self.cs[..bh].fill(0.0);
        }
        wide!(self.forward_steps_avx2(), self.forward_steps::<Separate>());
        let h = self.h;
        let last = &self.hs[l * bh..(l + 1) * bh];
        for (row, out) in last.chunks_exact(h).zip(self.logits.chunks_exact_mut(2)) {
            let (mut a, mut c) = (self.head_b[0], self.head_b[1]);
            for (&v, w) in row.iter().zip(self.head_w.chunks_exact(2)) {
                a += v * w[0];
                c += v * w[1];
            }
            out[0] = a;
            out[1] = c;
        }
        &self.logits[..2 * b]
    }

    /// Mean cross-entropy of a batch (`xt` time-major (L, B), classes `y`), leaving the
    /// gradient of every parameter in [`Bptt::grads`].
    pub fn loss_and_grads(&mut self, xt: &[f32], y: &[u8], l: usize) -> f32 {
        let b = y.len();
        self.forward(xt, l, b);
        let h = self.h;
        // Softmax cross-entropy: d loss / d logits = (softmax − one-hot) / B.
        let mut loss = 0f64;
        for (z, &y) in self.logits.chunks_exact_mut(2).zip(y) {
            let m = z[0].max(z[1]);
            let (e0, e1) = ((z[0] - m).exp(), (z[1] - m).exp());
            let lse = m + (e0 + e1).ln();
            loss += f64::from(lse - z[usize::from(y)]);
            let s = e0 + e1;
            z[0] = (e0 / s - f32::from(y == 0)) / b as f32;
            z[1] = (e1 / s - f32::from(y == 1)) / b as f32;
        }
        let bh = b * h;
        let last = &self.hs[l * bh..(l + 1) * bh];
        self.g_head_w.fill(0.0);
        self.g_head_b = [0.0; 2];
        for ((row, d), dh) in last
            .chunks_exact(h)
            .zip(self.logits.chunks_exact(2))
            .zip(self.dh.chunks_exact_mut(h))
        {
            self.g_head_b[0] += d[0];
            self.g_head_b[1] += d[1];
            for ((&v, gw), (w, dh)) in row
                .iter()
                .zip(self.g_head_w.chunks_exact_mut(2))
                .zip(self.head_w.chunks_exact(2).zip(dh.iter_mut()))
            {
                gw[0] += v * d[0];
                gw[1] += v * d[1];
                *dh = w[0] * d[0] + w[1] * d[1];
            }
        }
        self.g_wi.fill(0.0);
        self.g_bias.fill(0.0);
        self.g_bhn.fill(0.0);
        if self.cell == Cell::Lstm {
            self.dc[..bh].fill(0.0);
        }
        self.g_wcat.fill(0.0);
        wide!(self.backward_steps_avx2(), self.backward_steps());
        self.export_grads();
        (loss / b as f64) as f32
    }

    /// The gradients of the last [`Bptt::loss_and_grads`], in `Params` order.
    pub fn grads(&self) -> &[Vec<f32>] {
        &self.grads
    }

    /// Every forward step (the body of the loops is inlined here, so that the AVX2 copy
    /// below compiles it with wide vectors).
    #[inline(always)]
    fn forward_steps<M: MulAdd>(&mut self) {
        for t in 1..=self.l {
            match self.cell {
                Cell::Rnn => self.rnn_forward::<M>(t),
                Cell::Lstm => self.lstm_forward::<M>(t),
                Cell::Gru => self.gru_forward::<M>(t),
            }
        }
    }

    /// Every backward step, last to first.
    #[inline(always)]
    fn backward_steps(&mut self) {
        for t in (1..=self.l).rev() {
            match self.cell {
                Cell::Rnn => self.rnn_backward(t),
                Cell::Lstm => self.lstm_backward(t),
                Cell::Gru => self.gru_backward(t),
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn forward_steps_avx2(&mut self) {
        self.forward_steps::<Fused>();
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn backward_steps_avx2(&mut self) {
        self.backward_steps();
    }

    /// Step t's share of the recurrent weights' gradient, Wcat += h_{t−1}ᵀ · dq_t, and
    /// dq_t · Wcatᵀ, the gradient reaching h_{t−1} through those weights, added to `dh` when
    /// `acc` (the GRU's direct path) or replacing it. (Accumulating per step keeps one
    /// step's dq instead of the whole sequence's: a working set that stays in cache.)
    fn back_through_weights(&mut self, t: usize, acc: bool) {
        let (b, h) = (self.b, self.h);
        let dq = &self.dq[..b * self.dq_rs];
        let hp = &self.hs[(t - 1) * b * h..t * b * h];
        self.rec
            .backward(hp, dq, b, &mut self.g_wcat, &mut self.dh, acc);
    }

    /// h_{t−1} · Wcat into `dst` (B, G·H), or zeros at the first step (h_0 = 0).
    fn recurrent_product(
        hs: &[f32],
        rec: &Recurrent,
        dst: &mut [f32],
        t: usize,
        b: usize,
        h: usize,
    ) {
        let gh = rec.w.len() / h;
        if t == 1 {
            dst[..b * gh].fill(0.0);
        } else {
            rec.forward(&hs[(t - 1) * b * h..t * b * h], b, dst);
        }
    }

    /// Runs the recurrent products on register tiles (when this CPU and H allow) or on the
    /// general product; for tests and benchmarks, which compare the two.
    pub fn use_tiles(&mut self, on: bool) {
        self.rec.use_tiles(on);
    }

    /// Whether the recurrent products run on register tiles.
    pub fn uses_tiles(&self) -> bool {
        self.rec.tiled()
    }
}

/// Packs rows `idx` of a row-major (n, L) window matrix time-major (L, B) into `out`.
pub fn time_major(x: &[f32], l: usize, idx: &[usize], out: &mut Vec<f32>) {
    let b = idx.len();
    out.clear();
    out.resize(l * b, 0.0);
    for (j, &i) in idx.iter().enumerate() {
        for (t, &v) in x[i * l..(i + 1) * l].iter().enumerate() {
            out[t * b + j] = v;
        }
    }
}
