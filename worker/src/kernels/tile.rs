//! A register-tiled matrix product for the small, repeated products of the covid passes
//! (64 × 64 by 64 × 256 and the like, forty times a batch), where the `gemm` crate spends
//! a fifth of its time packing operands that do not change between steps.
//!
//! The right operand comes as 16-column panels: panel j's row k is 16 contiguous floats at
//! `b + j·b_js + k·b_ks`. Weights are packed into panels once a batch ([`pack`]); a
//! row-major matrix is its own panels (b_js = 16, b_ks = its row stride) and needs no copy,
//! provided its row stride is not a multiple of 1 KiB's worth of cache sets (see
//! [`PAD`]). The left operand is read element by element through any two strides, so a
//! transpose costs nothing. Each 6 × 16 tile of the destination lives in twelve AVX
//! registers for the whole sum over k: per k, two loads of the panel, six broadcasts and
//! twelve fused multiply-adds, which is what two FMA pipes can sustain.
//!
//! x86_64 with AVX2 and FMA only; callers check [`available`] and use `super::matmul`
//! otherwise, or when a width is not a multiple of 16.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Panel width, in columns.
pub const NR: usize = 16;
/// Rows of one register tile.
const MR: usize = 6;
/// Extra floats to add to a row stride so that consecutive rows of a row-major operand
/// used as panels fall into different L1 sets (a stride of 256 floats maps every row of a
/// panel onto the same four sets, and the panel no longer fits the cache).
pub const PAD: usize = 16;

/// Whether this CPU runs the tiled product.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Packs the (k × n) matrix `src[r·rs + c·cs]` into n/16 panels of k rows, into `out`.
pub fn pack(src: &[f32], k: usize, n: usize, (rs, cs): (usize, usize), out: &mut Vec<f32>) {
    assert_eq!(n % NR, 0, "pack: width {n} is not a multiple of {NR}");
    out.clear();
    out.reserve(k * n);
    for j in 0..n / NR {
        for r in 0..k {
            out.extend((0..NR).map(|c| src[r * rs + (j * NR + c) * cs]));
        }
    }
}

/// The operands of one tiled product: `dst` (m × n, row stride `c_rs`) [+]= A (m × k) · B.
#[derive(Clone, Copy)]
pub struct Product<'a> {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// A[i, kk] = a[i·rs + kk·ks].
    pub a: &'a [f32],
    pub a_s: (usize, usize),
    /// Panel j's row kk starts at b[j·js + kk·ks].
    pub b: &'a [f32],
    pub b_s: (usize, usize),
}

impl Product<'_> {
    /// Runs the product into `dst` (row stride `c_rs`), adding to it when `acc`.
    ///
    /// # Panics
    /// When n is not a multiple of 16, an operand is too short for its strides, or the CPU
    /// lacks AVX2 or FMA.
    pub fn run(&self, dst: &mut [f32], c_rs: usize, acc: bool) {
        let Product {
            m,
            n,
            k,
            a,
            a_s,
            b,
            b_s,
        } = *self;
        if m == 0 || n == 0 {
            return;
        }
        assert_eq!(n % NR, 0, "tile: width {n} is not a multiple of {NR}");
        assert!(available(), "tile: this CPU lacks AVX2 or FMA");
        assert!(
            dst.len() >= (m - 1) * c_rs + n,
            "tile: destination too small"
        );
        if k == 0 {
            if !acc {
                dst.chunks_mut(c_rs).take(m).for_each(|r| r[..n].fill(0.0));
            }
            return;
        }
        assert!(
            (m - 1) * a_s.0 + (k - 1) * a_s.1 < a.len(),
            "tile: A too small"
        );
        assert!(
            (n / NR - 1) * b_s.0 + (k - 1) * b_s.1 + NR <= b.len(),
            "tile: B too small"
        );
        // SAFETY: the asserts keep every access in bounds, and the CPU has the features.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            run_avx2(self, dst.as_mut_ptr(), c_rs, acc);
        }
    }
}

/// Every tile of the product, panel by panel (a panel stays in L1 while the rows of A
/// stream past it).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2(p: &Product, c: *mut f32, c_rs: usize, acc: bool) {
    let (a, b) = (p.a.as_ptr(), p.b.as_ptr());
    for j in 0..p.n / NR {
        // SAFETY (all offsets below): `Product::run` checked the extents of every operand.
        unsafe {
            let bj = b.add(j * p.b_s.0);
            let cj = c.add(j * NR);
            // Rows i.. of A against panel j.
            let tile = |i: usize| Tile {
                k: p.k,
                a: a.add(i * p.a_s.0),
                a_s: p.a_s,
                b: bj,
                b_ks: p.b_s.1,
            };
            let mut i = 0;
            while i + MR <= p.m {
                tile(i).run::<MR>(cj.add(i * c_rs), c_rs, acc);
                i += MR;
            }
            let t = tile(i);
            let ci = cj.add(i * c_rs);
            match p.m - i {
                1 => t.run::<1>(ci, c_rs, acc),
                2 => t.run::<2>(ci, c_rs, acc),
                3 => t.run::<3>(ci, c_rs, acc),
                4 => t.run::<4>(ci, c_rs, acc),
                5 => t.run::<5>(ci, c_rs, acc),
                _ => {}
            }
        }
    }
}

/// R rows of A against one panel.
#[cfg(target_arch = "x86_64")]
struct Tile {
    k: usize,
    a: *const f32,
    a_s: (usize, usize),
    b: *const f32,
    b_ks: usize,
}

#[cfg(target_arch = "x86_64")]
impl Tile {
    /// The R × 16 tile at `c`, its sums held in registers over all of k.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn run<const R: usize>(&self, c: *mut f32, c_rs: usize, acc: bool) {
        let mut lo = [_mm256_setzero_ps(); R];
        let mut hi = [_mm256_setzero_ps(); R];
        // SAFETY: `Product::run` checked that every address below is inside its operand.
        unsafe {
            for kk in 0..self.k {
                let bp = self.b.add(kk * self.b_ks);
                let (b0, b1) = (_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8)));
                let ap = self.a.add(kk * self.a_s.1);
                for r in 0..R {
                    let av = _mm256_broadcast_ss(&*ap.add(r * self.a_s.0));
                    lo[r] = _mm256_fmadd_ps(av, b0, lo[r]);
                    hi[r] = _mm256_fmadd_ps(av, b1, hi[r]);
                }
            }
            for r in 0..R {
                let cp = c.add(r * c_rs);
                if acc {
                    lo[r] = _mm256_add_ps(lo[r], _mm256_loadu_ps(cp));
                    hi[r] = _mm256_add_ps(hi[r], _mm256_loadu_ps(cp.add(8)));
                }
                _mm256_storeu_ps(cp, lo[r]);
                _mm256_storeu_ps(cp.add(8), hi[r]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + seed * 104_729) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    #[test]
    fn products_equal_a_plain_sum_for_every_shape_layout_and_remainder() {
        if !available() {
            eprintln!("skipped: this CPU lacks AVX2 or FMA");
            return;
        }
        for m in [1, 5, 6, 7, 13, 64] {
            for n in [16, 48] {
                for k in [0, 1, 7, 64] {
                    for (transposed, packed, acc) in [
                        (false, true, false),
                        (true, false, true),
                        (false, false, true),
                    ] {
                        // A (m × k), row-major or stored transposed; B (k × n) row-major with
                        // a padded stride, used as panels directly or packed first.
                        let a = values(m * k.max(1), 1);
                        let a_s = if transposed { (1, m) } else { (k, 1) };
                        let rs = n + PAD;
                        let b = values(k.max(1) * rs, 2);
                        let mut panels = Vec::new();
                        pack(&b, k, n, (rs, 1), &mut panels);
                        let (bb, b_s) = if packed {
                            (&panels, (k * NR, NR))
                        } else {
                            (&b, (NR, rs))
                        };
                        // The destination has a wider row stride than n, whose extra columns
                        // must stay untouched.
                        let c_rs = n + 3;
                        let before = values(m * c_rs, 3);
                        let mut c = before.clone();
                        Product {
                            m,
                            n,
                            k,
                            a: &a,
                            a_s,
                            b: bb,
                            b_s,
                        }
                        .run(&mut c, c_rs, acc);
                        for i in 0..m {
                            for j in 0..c_rs {
                                let got = c[i * c_rs + j];
                                let want = if j >= n {
                                    f64::from(before[i * c_rs + j])
                                } else {
                                    let sum: f64 = (0..k)
                                        .map(|kk| {
                                            f64::from(a[i * a_s.0 + kk * a_s.1])
                                                * f64::from(b[kk * rs + j])
                                        })
                                        .sum();
                                    sum + if acc {
                                        f64::from(before[i * c_rs + j])
                                    } else {
                                        0.0
                                    }
                                };
                                assert!(
                                    (f64::from(got) - want).abs() <= 1e-5 * (1.0 + want.abs()),
                                    "m {m} n {n} k {k} t {transposed} p {packed} acc {acc} [{i},{j}]: {got} vs {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "not a multiple of 16")]
    fn a_width_that_is_not_whole_panels_is_refused() {
        let v = vec![0.0; 64];
        Product {
            m: 2,
            n: 8,
            k: 2,
            a: &v,
            a_s: (2, 1),
            b: &v,
            b_s: (16, 8),
        }
        .run(&mut [0.0; 16], 8, false);
    }
}
