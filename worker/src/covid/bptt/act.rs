//! Activations written as straight-line arithmetic so that loops over slices vectorise:
//! the library `exp`/`tanh` are calls the compiler cannot widen, and at the covid models'
//! sizes they cost more than the matrix products.
//!
//! `exp` is the shared one of `crate::kernels`; each function takes the `MulAdd` its caller
//! was compiled for. `tanh` is 1 − 2/(1 + e^{2x}), exact to a few 1e-8
//! in absolute terms (its relative error grows only as the value nears zero, where a
//! gradient never sees the difference). The tests check both against f64.

pub use crate::kernels::MulAdd;
use crate::kernels::exp_by;

/// The logistic function 1 / (1 + e^{−x}).
#[inline(always)]
pub fn sigmoid<M: MulAdd>(x: f32) -> f32 {
    1.0 / (1.0 + exp_by::<M>(-x))
}

/// The hyperbolic tangent, 1 − 2 / (1 + e^{2x}): absolute error a few 1e-8, relative
/// error larger only near zero where the value itself is tiny.
#[inline(always)]
pub fn tanh<M: MulAdd>(x: f32) -> f32 {
    1.0 - 2.0 / (1.0 + exp_by::<M>(2.0 * x))
}

/// `v[i] = sigmoid(v[i])` for every element.
#[inline(always)]
pub fn sigmoid_in_place<M: MulAdd>(v: &mut [f32]) {
    for x in v {
        *x = sigmoid::<M>(*x);
    }
}

/// `v[i] = tanh(v[i])` for every element.
#[inline(always)]
pub fn tanh_in_place<M: MulAdd>(v: &mut [f32]) {
    for x in v {
        *x = tanh::<M>(*x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative error against f64, with an absolute floor for values near zero.
    fn err(got: f32, want: f64) -> f64 {
        (f64::from(got) - want).abs() / want.abs().max(1e-30)
    }

    /// Both roundings (`Fused` runs here as a library call: slow, but rounded the same as
    /// the FMA instruction).
    #[test]
    fn activations_match_the_library_functions() {
        check::<crate::kernels::Separate>();
        check::<crate::kernels::Fused>();
    }

    fn check<M: MulAdd>() {
        let (mut e_max, mut s_max, mut t_max) = (0f64, 0f64, 0f64);
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4 * (1.0 + (i as f32 * 0.37).sin() * 0.001);
            let xd = f64::from(x);
            e_max = e_max.max(err(exp_by::<M>(x), xd.exp()));
            s_max = s_max.max(err(sigmoid::<M>(x), 1.0 / (1.0 + (-xd).exp())));
            // Absolute error for tanh (see its comment).
            t_max = t_max.max((f64::from(tanh::<M>(x)) - xd.tanh()).abs());
        }
        assert!(e_max < 5e-7, "exp relative error {e_max}");
        assert!(s_max < 5e-7, "sigmoid relative error {s_max}");
        assert!(t_max < 2e-7, "tanh absolute error {t_max}");
        // Saturation and the far ends stay finite and exact enough.
        assert_eq!(tanh::<M>(100.0), 1.0);
        assert_eq!(tanh::<M>(-100.0), -1.0);
        assert!(sigmoid::<M>(-200.0) >= 0.0 && sigmoid::<M>(-200.0) < 1e-37);
        assert_eq!(sigmoid::<M>(200.0), 1.0);
        assert!(tanh::<M>(1e-3) > 0.0 && tanh::<M>(-1e-3) < 0.0);
        assert!(err(exp_by::<M>(-80.0), (-80f64).exp()) < 1e-6);
    }
}
