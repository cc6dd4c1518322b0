//! The tanh RNN step: h' = tanh(x·w_i + b + h·W), and its backward: the gradient reaching
//! the pre-activation is dh'·(1 − h'²).

use super::{Bptt, act};
use crate::kernels::MulAdd;

impl Bptt {
    /// Forward step `t` (1-based): h_t from h_{t−1} and x_t.
    #[inline(always)]
    pub(super) fn rnn_forward<M: MulAdd>(&mut self, t: usize) {
        let (b, h) = (self.b, self.h);
        let (past, now) = self.hs.split_at_mut(t * b * h);
        let now = &mut now[..b * h];
        Self::recurrent_product(past, &self.rec, now, t, b, h);
        let x = &self.x[(t - 1) * b..t * b];
        for (row, &xv) in now.chunks_exact_mut(h).zip(x) {
            for ((v, &w), &c) in row.iter_mut().zip(&self.wi).zip(&self.bias) {
                *v = act::tanh::<M>(*v + xv * w + c);
            }
        }
    }

    /// Backward step `t`: consumes dL/dh_t in `dh`, leaves dL/dh_{t−1} there.
    #[inline(always)]
    pub(super) fn rnn_backward(&mut self, t: usize) {
        let (b, h) = (self.b, self.h);
        let hn = &self.hs[t * b * h..(t + 1) * b * h];
        let dq = &mut self.dq[..b * self.dq_rs];
        let x = &self.x[(t - 1) * b..t * b];
        for (((dq, hn), dh), &xv) in dq
            .chunks_exact_mut(self.dq_rs)
            .zip(hn.chunks_exact(h))
            .zip(self.dh.chunks_exact(h))
            .zip(x)
        {
            for ((((q, &hv), &d), gw), gb) in dq[..h]
                .iter_mut()
                .zip(hn)
                .zip(dh)
                .zip(self.g_wi.iter_mut())
                .zip(self.g_bias.iter_mut())
            {
                *q = d * (1.0 - hv * hv);
                *gw += xv * *q;
                *gb += *q;
            }
        }
        if t > 1 {
            self.back_through_weights(t, false);
        }
    }
}
