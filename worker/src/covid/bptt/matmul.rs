//! The one matrix product of the hand-written passes, over the `gemm` crate with bounds
//! checked up front. (A hand-written AVX2 kernel without packing was measured no faster
//! than `gemm` at 64 × 64 × 256 and slower on the long weight-gradient product.)

/// `dst` (m × n, row-major, contiguous) = [`dst` +] `lhs` (m × k) · `rhs` (k × n), the
/// operands given by their slices and (row, column) strides so that transposes are free.
#[allow(clippy::too_many_arguments)]
pub(super) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    acc: bool,
    lhs: &[f32],
    lhs_s: (usize, usize),
    rhs: &[f32],
    rhs_s: (usize, usize),
) {
    if m == 0 || n == 0 || k == 0 {
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
    // so does not alias the operands, and no other thread touches these buffers.
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
            gemm::Parallelism::None,
        );
    }
}
