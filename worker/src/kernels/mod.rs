//! The CPU kernels the hand-written training passes share (covid's backward through time,
//! the VAE's): one matrix product over the `gemm` crate with its bounds checked up front,
//! a register-tiled one for the covid passes' small repeated products ([`tile`]), and an
//! `exp` written as straight-line arithmetic so that loops over slices vectorise
//! (the library `exp` is a call the compiler cannot widen).
//!
//! `exp` reduces x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two parts so r stays exact),
//! evaluates the degree-7 Taylor polynomial of e^r (truncation ≈ 1e-8 relative) and scales
//! by 2^n built from the exponent bits. covid/bptt/act.rs tests it against f64.
//!
//! The polynomial is mostly multiply-adds. [`MulAdd`] says how they round: [`Separate`]
//! (a product, then a sum: any CPU) or [`Fused`] (one FMA instruction, half the
//! instructions). `Fused` is only for code compiled with the `fma` target feature (see
//! covid/bptt's `wide!`); anywhere else `f32::mul_add` is a slow library call.

pub mod tile;

const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Adding and subtracting 1.5·2^23 rounds an f32 of magnitude < 2^22 to an integer.
const ROUNDER: f32 = 12_582_912.0;

/// How `a·b + c` is computed and rounded (see the module comment).
pub trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// A rounded product, then a rounded sum.
pub struct Separate;

/// One fused multiply-add, rounded once.
pub struct Fused;

impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

/// e^x for x in f32 range; inputs outside [-87, 88] are clamped (giving ≈0 or ≈1.6e38).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    exp_by::<Separate>(x)
}

/// [`exp`] with its multiply-adds computed the `M` way.
#[inline(always)]
pub fn exp_by<M: MulAdd>(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // y's low mantissa bits hold n = round(x / ln2) (integer arithmetic on the bits
    // vectorises where a float-to-int conversion, with its saturation checks, does not).
    let y = M::mul_add(x, std::f32::consts::LOG2_E, ROUNDER);
    let n = y - ROUNDER;
    let ni = (y.to_bits() as i32).wrapping_sub(ROUNDER.to_bits() as i32);
    let r = M::mul_add(-n, LN2_LO, M::mul_add(-n, LN2_HI, x));
    let p = M::mul_add(1.0 / 5040.0, r, 1.0 / 720.0);
    let p = M::mul_add(p, r, 1.0 / 120.0);
    let p = M::mul_add(p, r, 1.0 / 24.0);
    let p = M::mul_add(p, r, 1.0 / 6.0);
    let p = M::mul_add(p, r, 0.5);
    let p = M::mul_add(p, r, 1.0);
    let p = M::mul_add(p, r, 1.0);
    let scale = f32::from_bits((ni.wrapping_add(127) as u32) << 23);
    p * scale
}

/// `dst` (m × n, row-major, contiguous) = [`dst` +] `lhs` (m × k) · `rhs` (k × n), the
/// operands given by their slices and (row, column) strides so that transposes are free.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    acc: bool,
    lhs: &[f32],
    lhs_s: (usize, usize),
    rhs: &[f32],
    rhs_s: (usize, usize),
    par: gemm::Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !acc {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    // Every index gemm touches lies inside the slices.
    assert!(dst.len() >= m * n, "matmul: destination too small");
    assert!(
        (m - 1) * lhs_s.0 + (k - 1) * lhs_s.1 < lhs.len(),
        "matmul: lhs too small"
    );
    assert!(
        (k - 1) * rhs_s.0 + (n - 1) * rhs_s.1 < rhs.len(),
        "matmul: rhs too small"
    );
    // SAFETY: the asserts above keep every access in bounds, `dst` is borrowed mutably and
    // so does not alias the operands, and gemm's own threads only split the destination.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            acc,
            lhs.as_ptr(),
            lhs_s.1 as isize,
            lhs_s.0 as isize,
            rhs.as_ptr(),
            rhs_s.1 as isize,
            rhs_s.0 as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}
