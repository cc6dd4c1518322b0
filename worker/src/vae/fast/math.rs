//! The elementwise work of the VAE's output layer written as straight-line arithmetic, so
//! that the loops over a row of pixels vectorise (the library `exp` and `ln` are calls the
//! compiler cannot widen, and at 64×64 the output layer has 1.5 M of them per batch).
//!
//! `exp` is the shared one of `crate::kernels`. `ln_1p_unit` takes ln(1 + e) for e in [0, 1] from the
//! series 2·atanh(s), s = e/(2 + e) ≤ 1/3, to s^15 (truncation below 1e-9).

pub use crate::kernels::exp;

/// ln(1 + e) for e in [0, 1].
#[inline(always)]
pub fn ln_1p_unit(e: f32) -> f32 {
    let s = e / (2.0 + e);
    let s2 = s * s;
    let mut p = 1.0 / 15.0;
    for c in [
        1.0 / 13.0,
        1.0 / 11.0,
        1.0 / 9.0,
        1.0 / 7.0,
        0.2,
        1.0 / 3.0,
        1.0,
    ] {
        p = p * s2 + c;
    }
    2.0 * s * p
}

/// One image's output layer: `l` holds the logits and leaves with d loss / d logit =
/// (sigmoid(l) − x)·`scale`, which is also added to the bias gradient `gb`; returns the
/// BCE summed over the row, max(l, 0) − l·x + ln(1 + e^−|l|).
#[inline(always)]
pub fn bce_row(l: &mut [f32], x: &[f32], scale: f32, gb: &mut [f32]) -> f32 {
    #[inline(always)]
    fn one(l: &mut f32, x: f32, scale: f32, gb: &mut f32) -> f32 {
        let v = *l;
        let e = exp(-v.abs());
        let inv = 1.0 / (1.0 + e);
        let sig = if v >= 0.0 { inv } else { e * inv };
        let g = (sig - x) * scale;
        *l = g;
        *gb += g;
        v.max(0.0) - v * x + ln_1p_unit(e)
    }
    // Eight partial sums, so that the sum does not serialise the loop.
    let mut acc = [0f32; 8];
    let (mut lc, mut xc, mut gc) = (
        l.chunks_exact_mut(8),
        x.chunks_exact(8),
        gb.chunks_exact_mut(8),
    );
    for ((l, x), g) in (&mut lc).zip(&mut xc).zip(&mut gc) {
        for i in 0..8 {
            acc[i] += one(&mut l[i], x[i], scale, &mut g[i]);
        }
    }
    let mut tail = 0.0;
    for ((l, &x), g) in lc
        .into_remainder()
        .iter_mut()
        .zip(xc.remainder())
        .zip(gc.into_remainder())
    {
        tail += one(l, x, scale, g);
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_ln_1p_match_f64() {
        let mut worst = (0f64, 0f64);
        for i in -100_000..=20_000 {
            let x = i as f32 * 8.7e-4;
            let want = f64::from(x).exp();
            worst.0 = worst.0.max((f64::from(exp(x)) - want).abs() / want);
        }
        for i in 0..=100_000 {
            let e = i as f32 * 1e-5;
            let want = f64::from(e).ln_1p();
            worst.1 = worst
                .1
                .max((f64::from(ln_1p_unit(e)) - want).abs() / want.max(1e-30));
        }
        assert!(worst.0 < 5e-7 && worst.1 < 5e-7, "{worst:?}");
    }

    #[test]
    fn bce_row_matches_the_definition() {
        let l: Vec<f32> = (0..21).map(|i| (i as f32 - 10.0) * 1.7).collect();
        let x: Vec<f32> = (0..21).map(|i| (i % 5) as f32 / 4.0).collect();
        let (mut got_l, mut gb) = (l.clone(), vec![1.0; 21]);
        let sum = bce_row(&mut got_l, &x, 0.5, &mut gb);
        let mut want = 0f64;
        for i in 0..21 {
            let (v, t) = (f64::from(l[i]), f64::from(x[i]));
            want += v.max(0.0) - v * t + (-v.abs()).exp().ln_1p();
            let g = (1.0 / (1.0 + (-v).exp()) - t) * 0.5;
            assert!((f64::from(got_l[i]) - g).abs() < 1e-6, "{i}");
            assert!((f64::from(gb[i]) - 1.0 - g).abs() < 1e-6, "{i}");
        }
        assert!(
            (f64::from(sum) - want).abs() < 1e-4 * want,
            "{sum} vs {want}"
        );
    }
}
