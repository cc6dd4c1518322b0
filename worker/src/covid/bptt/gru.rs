//! The GRU step (gates r, z, n side by side): r = σ(x·w_r + b_r + h·W_r), z likewise,
//! n = tanh(x·w_n + b_n + r·(h·W_n + b_hn)), h' = n + z·(h − n); and its backward. The
//! candidate's recurrent term is kept (in `aux`) because the reset gate's gradient needs it.

use super::{Bptt, act, lanes};
use crate::kernels::MulAdd;

impl Bptt {
    /// Forward step `t` (1-based): gates and h_t from h_{t−1} and x_t.
    #[inline(always)]
    pub(super) fn gru_forward<M: MulAdd>(&mut self, t: usize) {
        let (b, h, gh) = (self.b, self.h, self.gh);
        let a = &mut self.acts[(t - 1) * b * gh..t * b * gh];
        Self::recurrent_product(&self.hs, &self.rec, a, t, b, h);
        let x = &self.x[(t - 1) * b..t * b];
        let hn_all = &mut self.aux[(t - 1) * b * h..t * b * h];
        let (past, now) = self.hs.split_at_mut(t * b * h);
        let hprev = &past[(t - 1) * b * h..];
        let (wi, bias) = (&self.wi, &self.bias);
        for r in 0..b {
            let xv = x[r];
            let row = &mut a[r * gh..(r + 1) * gh];
            let (rz, n) = row.split_at_mut(2 * h);
            for ((v, &w), &c) in rz.iter_mut().zip(wi).zip(bias) {
                *v = act::sigmoid::<M>(*v + xv * w + c);
            }
            let rg = &rz[..h];
            let z = &rz[h..];
            let hn = &mut hn_all[r * h..(r + 1) * h];
            let hp = &hprev[r * h..(r + 1) * h];
            let hr = &mut now[r * h..(r + 1) * h];
            // Exact lengths let the compiler drop bounds checks and vectorise the loop.
            let (wn, bn, bhn) = (&wi[2 * h..3 * h], &bias[2 * h..3 * h], &self.bhn[..h]);
            let n = &mut n[..h];
            candidate_row::<M>(xv, [wn, bn, bhn], [rg, z, hp], n, hn, hr);
        }
    }

    /// Backward step `t`: consumes dL/dh_t in `dh`, leaves dL/dh_{t−1} there.
    #[inline(always)]
    pub(super) fn gru_backward(&mut self, t: usize) {
        let (b, h, gh) = (self.b, self.h, self.gh);
        let a = &self.acts[(t - 1) * b * gh..t * b * gh];
        let hn_all = &self.aux[(t - 1) * b * h..t * b * h];
        let hprev = &self.hs[(t - 1) * b * h..t * b * h];
        let rs = self.dq_rs;
        let dq = &mut self.dq[..b * rs];
        let x = &self.x[(t - 1) * b..t * b];
        let (gwr, gwn) = self.g_wi.split_at_mut(2 * h);
        let (gwr, gwz) = gwr.split_at_mut(h);
        let (gbr, gbn) = self.g_bias.split_at_mut(2 * h);
        let (gbr, gbz) = gbr.split_at_mut(h);
        let gbhn = &mut self.g_bhn[..h];
        // Exact lengths let the compiler drop bounds checks and vectorise the loop.
        let (gwn, gbn) = (&mut gwn[..h], &mut gbn[..h]);
        for r in 0..b {
            let xv = x[r];
            let row = &a[r * gh..(r + 1) * gh];
            let (rg, z, n) = (&row[..h], &row[h..2 * h], &row[2 * h..3 * h]);
            let hn = &hn_all[r * h..(r + 1) * h];
            let hp = &hprev[r * h..(r + 1) * h];
            let dh = &mut self.dh[r * h..(r + 1) * h];
            let q = &mut dq[r * rs..r * rs + gh];
            let (qr, qzn) = q.split_at_mut(h);
            let (qz, qn) = qzn.split_at_mut(h);
            let qn = &mut qn[..h];
            back_row(
                xv,
                [rg, z, n, hn, hp],
                dh,
                [qr, qz, qn],
                [&mut *gwr, &mut *gwz, &mut *gwn],
                [&mut *gbr, &mut *gbz, &mut *gbn, &mut *gbhn],
            );
        }
        if t > 1 {
            self.back_through_weights(t, true);
        }
    }
}

// The forward row loop takes its rows as separate slice arguments: the compiler then knows
// the outputs do not overlap the inputs and vectorises it. The backward one, with a dozen
// arrays, stayed scalar even so (its run-time overlap checks failed), and goes through
// `lanes::map`, which vectorises whatever the arrays.

/// The candidate n and the new state of one row; `n` holds h·W_n on entry, `hn` receives
/// h·W_n + b_hn.
#[inline(always)]
fn candidate_row<M: MulAdd>(
    xv: f32,
    [wn, bn, bhn]: [&[f32]; 3],
    [rg, z, hp]: [&[f32]; 3],
    n: &mut [f32],
    hn: &mut [f32],
    hr: &mut [f32],
) {
    let h = n.len();
    let (wn, bn, bhn, rg, z, hp) = (&wn[..h], &bn[..h], &bhn[..h], &rg[..h], &z[..h], &hp[..h]);
    let (hn, hr) = (&mut hn[..h], &mut hr[..h]);
    for j in 0..h {
        let q = n[j] + bhn[j];
        hn[j] = q;
        let nv = act::tanh::<M>(xv * wn[j] + bn[j] + rg[j] * q);
        n[j] = nv;
        hr[j] = nv + z[j] * (hp[j] - nv);
    }
}

/// Gradients of one row: recurrent pre-activations `q`, input weights `gw`, biases `gb`
/// (and b_hn); `dh` goes from dL/dh_t to its direct part in dL/dh_{t−1}.
#[inline(always)]
fn back_row(
    xv: f32,
    [rg, z, n, hn, hp]: [&[f32]; 5],
    dh: &mut [f32],
    [qr, qz, qn]: [&mut [f32]; 3],
    [gwr, gwz, gwn]: [&mut [f32]; 3],
    [gbr, gbz, gbn, gbhn]: [&mut [f32]; 4],
) {
    lanes::map(
        [rg, z, n, hn, hp],
        [dh, qr, qz, qn, gwr, gwz, gwn, gbr, gbz, gbn, gbhn],
        |[rg, z, n, hn, hp], [d, _, _, _, gwr, gwz, gwn, gbr, gbz, gbn, gbhn]| {
            let dn = d * (1.0 - z) * (1.0 - n * n);
            let dr = dn * hn * rg * (1.0 - rg);
            let dz = d * (hp - n) * z * (1.0 - z);
            [
                d * z,
                dr,
                dz,
                dn * rg,
                gwr + xv * dr,
                gwz + xv * dz,
                gwn + xv * dn,
                gbr + dr,
                gbz + dz,
                gbn + dn,
                gbhn + dn * rg,
            ]
        },
    );
}
