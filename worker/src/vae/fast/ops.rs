//! The building blocks of the hand-written VAE passes: matrix products through the `gemm`
//! crate on row-major buffers (the plain product, and the two transposed forms a backward
//! pass needs, with the transposes taken by strides rather than copies), and the
//! elementwise loops.

use super::math;
use crate::kernels::matmul as mm;

/// `dst` (m, n) = rows of `bias` (n) + `a` (m, k) · `w` (k, n); m is `dst`'s rows and k
/// follows from `a`.
pub fn affine(dst: &mut [f32], a: &[f32], w: &[f32], bias: &[f32], par: gemm::Parallelism) {
    let n = bias.len();
    let m = dst.len() / n;
    let k = a.len() / m;
    for row in dst.chunks_exact_mut(n) {
        row.copy_from_slice(bias);
    }
    mm(m, n, k, dst, true, a, (k, 1), w, (n, 1), par);
}

/// `dst` (m, n) = `a`ᵀ · `b` for `a` (k, m) and `b` (k, n): a weight's gradient from the
/// layer's inputs and the gradients of its outputs; m is given, k and n follow.
pub fn atb(dst: &mut [f32], a: &[f32], b: &[f32], m: usize, par: gemm::Parallelism) {
    let k = a.len() / m;
    let n = b.len() / k;
    mm(m, n, k, dst, false, a, (1, m), b, (n, 1), par);
}

/// `dst` (m, n) = [`dst` +] `a` · `b`ᵀ for `a` (m, k) and `b` (n, k): the gradient reaching
/// a layer's input through its weight; k is given, m and n follow.
pub fn abt(dst: &mut [f32], acc: bool, a: &[f32], b: &[f32], k: usize, par: gemm::Parallelism) {
    let m = a.len() / k;
    let n = b.len() / k;
    mm(m, n, k, dst, acc, a, (k, 1), b, (1, k), par);
}

/// max(v, 0) in place.
pub fn relu(v: &mut [f32]) {
    for x in v {
        *x = x.max(0.0);
    }
}

/// Zeroes the gradient `g` where the ReLU output `act` is not positive.
pub fn mask(g: &mut [f32], act: &[f32]) {
    for (g, &a) in g.iter_mut().zip(act) {
        *g = if a > 0.0 { *g } else { 0.0 };
    }
}

/// `dst` (n) = the column sums of the row-major `m` (·, n).
pub fn col_sums(dst: &mut [f32], m: &[f32]) {
    dst.fill(0.0);
    for row in m.chunks_exact(dst.len()) {
        for (d, &v) in dst.iter_mut().zip(row) {
            *d += v;
        }
    }
}

/// [`math::bce_row`] over every image, in the AVX2 build when the CPU has it (without
/// fused multiply-adds both builds round identically, so results do not depend on the CPU).
pub fn output_layer(out: &mut [f32], x: &[f32], recon: &mut [f32], gb: &mut [f32], scale: f32) {
    #[inline(always)]
    fn rows(out: &mut [f32], x: &[f32], recon: &mut [f32], gb: &mut [f32], scale: f32) {
        let d = gb.len();
        for ((l, x), r) in out.chunks_exact_mut(d).zip(x.chunks_exact(d)).zip(recon) {
            *r = math::bce_row(l, x, scale, gb);
        }
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn rows_avx2(out: &mut [f32], x: &[f32], recon: &mut [f32], gb: &mut [f32], scale: f32) {
        rows(out, x, recon, gb, scale);
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, the only feature `rows_avx2` is compiled for.
        unsafe { rows_avx2(out, x, recon, gb, scale) };
        return;
    }
    rows(out, x, recon, gb, scale);
}
