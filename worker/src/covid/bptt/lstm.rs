//! The LSTM step (gates i, f, g, o side by side in the pre-activation row):
//! c' = σ(f)·c + σ(i)·tanh(g), h' = σ(o)·tanh(c'); and its backward.

use super::{Bptt, act, lanes};
use crate::kernels::MulAdd;

impl Bptt {
    /// Forward step `t` (1-based): gates, c_t and h_t from h_{t−1}, c_{t−1} and x_t.
    #[inline(always)]
    pub(super) fn lstm_forward<M: MulAdd>(&mut self, t: usize) {
        let (b, h, gh) = (self.b, self.h, self.gh);
        let a = &mut self.acts[(t - 1) * b * gh..t * b * gh];
        Self::recurrent_product(&self.hs, &self.rec, a, t, b, h);
        let x = &self.x[(t - 1) * b..t * b];
        for (row, &xv) in a.chunks_exact_mut(gh).zip(x) {
            for ((v, &w), &c) in row.iter_mut().zip(&self.wi).zip(&self.bias) {
                *v += xv * w + c;
            }
            let (ifg, o) = row.split_at_mut(3 * h);
            let (i_f, g) = ifg.split_at_mut(2 * h);
            act::sigmoid_in_place::<M>(i_f);
            act::tanh_in_place::<M>(g);
            act::sigmoid_in_place::<M>(o);
        }
        let (cpast, cnow) = self.cs.split_at_mut(t * b * h);
        let cprev = &cpast[(t - 1) * b * h..];
        let cnow = &mut cnow[..b * h];
        let tc = &mut self.aux[(t - 1) * b * h..t * b * h];
        let hnow = &mut self.hs[t * b * h..(t + 1) * b * h];
        for r in 0..b {
            let row = &a[r * gh..(r + 1) * gh];
            let (i, f) = (&row[..h], &row[h..2 * h]);
            let (g, o) = (&row[2 * h..3 * h], &row[3 * h..4 * h]);
            let cp = &cprev[r * h..(r + 1) * h];
            let cn = &mut cnow[r * h..(r + 1) * h];
            let tcr = &mut tc[r * h..(r + 1) * h];
            let hr = &mut hnow[r * h..(r + 1) * h];
            cell_row::<M>([i, f, g, o], cp, cn, tcr, hr);
        }
    }

    /// Backward step `t`: consumes dL/dh_t and dL/dc_t in `dh`, `dc`, leaves those of step
    /// t − 1 there.
    #[inline(always)]
    pub(super) fn lstm_backward(&mut self, t: usize) {
        let (b, h, gh) = (self.b, self.h, self.gh);
        let a = &self.acts[(t - 1) * b * gh..t * b * gh];
        let cprev = &self.cs[(t - 1) * b * h..t * b * h];
        let tc = &self.aux[(t - 1) * b * h..t * b * h];
        let rs = self.dq_rs;
        let dq = &mut self.dq[..b * rs];
        let x = &self.x[(t - 1) * b..t * b];
        for r in 0..b {
            let row = &a[r * gh..(r + 1) * gh];
            let (i, f) = (&row[..h], &row[h..2 * h]);
            let (g, o) = (&row[2 * h..3 * h], &row[3 * h..4 * h]);
            let cp = &cprev[r * h..(r + 1) * h];
            let tcr = &tc[r * h..(r + 1) * h];
            let dh = &self.dh[r * h..(r + 1) * h];
            let dc = &mut self.dc[r * h..(r + 1) * h];
            let q = &mut dq[r * rs..r * rs + gh];
            let (qif, qgo) = q.split_at_mut(2 * h);
            let (qi, qf) = qif.split_at_mut(h);
            let (qg, qo) = qgo.split_at_mut(h);
            back_row([i, f, g, o], cp, tcr, dh, dc, [qi, qf, qg, qo]);
            let xv = x[r];
            for ((&q, gw), gb) in q.iter().zip(&mut self.g_wi).zip(&mut self.g_bias) {
                *gw += xv * q;
                *gb += q;
            }
        }
        if t > 1 {
            self.back_through_weights(t, false);
        }
    }
}

// The forward row loop takes its rows as separate slice arguments: the compiler then knows
// the outputs do not overlap the inputs and vectorises it. The backward one, with a dozen
// arrays, stayed scalar even so (its run-time overlap checks failed), and goes through
// `lanes::map`, which vectorises whatever the arrays.

/// c' = f·c + i·g, tanh(c'), h' = o·tanh(c') for one row.
#[inline(always)]
fn cell_row<M: MulAdd>(
    [i, f, g, o]: [&[f32]; 4],
    cp: &[f32],
    cn: &mut [f32],
    tc: &mut [f32],
    hr: &mut [f32],
) {
    let h = cn.len();
    let (i, f, g, o, cp, tc, hr) = (
        &i[..h],
        &f[..h],
        &g[..h],
        &o[..h],
        &cp[..h],
        &mut tc[..h],
        &mut hr[..h],
    );
    for j in 0..h {
        let c = f[j] * cp[j] + i[j] * g[j];
        cn[j] = c;
        let tv = act::tanh::<M>(c);
        tc[j] = tv;
        hr[j] = o[j] * tv;
    }
}

/// Gradients of one row's gate pre-activations; `dc` goes from dL/dc_t to dL/dc_{t−1}.
#[inline(always)]
fn back_row(
    [i, f, g, o]: [&[f32]; 4],
    cp: &[f32],
    tc: &[f32],
    dh: &[f32],
    dc: &mut [f32],
    [qi, qf, qg, qo]: [&mut [f32]; 4],
) {
    lanes::map(
        [i, f, g, o, cp, tc, dh],
        [dc, qi, qf, qg, qo],
        |[i, f, g, o, cp, tc, dh], [dc, ..]| {
            let dct = dc + dh * o * (1.0 - tc * tc);
            [
                dct * f,
                dct * g * i * (1.0 - i),
                dct * cp * f * (1.0 - f),
                dct * i * (1.0 - g * g),
                dh * tc * o * (1.0 - o),
            ]
        },
    );
}
