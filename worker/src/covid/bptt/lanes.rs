//! Elementwise loops over several rows at once, written so that they always vectorise.
//!
//! A plain indexed loop over a dozen slices often stays scalar: after inlining, the
//! compiler can no longer prove that the outputs do not overlap the inputs, and its
//! run-time overlap checks fail on rows cut from one buffer. Here every block of eight
//! elements is first copied into local arrays, computed there (eight identical chains of
//! arithmetic, which the compiler turns into vector instructions) and then stored, so no
//! overlap question arises.

/// Elements per block.
const W: usize = 8;

/// For every index j < `outs[0].len()`: `outs[..][j] = f(ins[..][j], outs[..][j])`; an
/// output that `f` only writes may ignore its second argument. Every slice must be at
/// least as long as `outs[0]`.
#[inline(always)]
pub fn map<const I: usize, const O: usize>(
    ins: [&[f32]; I],
    mut outs: [&mut [f32]; O],
    f: impl Fn([f32; I], [f32; O]) -> [f32; O],
) {
    let n = outs[0].len();
    assert!(ins.iter().all(|s| s.len() >= n) && outs.iter().all(|s| s.len() >= n));
    let mut j = 0;
    while j + W <= n {
        let mut x = [[0f32; W]; I];
        for (x, s) in x.iter_mut().zip(&ins) {
            x.copy_from_slice(&s[j..j + W]);
        }
        let mut y = [[0f32; W]; O];
        for (y, s) in y.iter_mut().zip(&outs) {
            y.copy_from_slice(&s[j..j + W]);
        }
        for k in 0..W {
            let mut a = [0f32; I];
            for i in 0..I {
                a[i] = x[i][k];
            }
            let mut b = [0f32; O];
            for o in 0..O {
                b[o] = y[o][k];
            }
            let r = f(a, b);
            for o in 0..O {
                y[o][k] = r[o];
            }
        }
        for (out, y) in outs.iter_mut().zip(&y) {
            out[j..j + W].copy_from_slice(y);
        }
        j += W;
    }
    for j in j..n {
        let mut a = [0f32; I];
        for i in 0..I {
            a[i] = ins[i][j];
        }
        let mut b = [0f32; O];
        for o in 0..O {
            b[o] = outs[o][j];
        }
        let r = f(a, b);
        for (out, r) in outs.iter_mut().zip(r) {
            out[j] = r;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_element_of_whole_blocks_and_the_tail_is_mapped_once() {
        for n in [0, 3, 8, 19] {
            let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let b: Vec<f32> = (0..n + 5).map(|i| 2.0 * i as f32).collect();
            let mut acc = vec![1.0; n];
            let mut out = vec![-1.0; n];
            super::map([&a, &b], [&mut acc, &mut out], |[a, b], [acc, _]| {
                [acc + a, a * b]
            });
            for i in 0..n {
                let x = i as f32;
                assert_eq!(
                    (acc[i], out[i]),
                    (1.0 + x, 2.0 * x * x),
                    "element {i} of {n}"
                );
            }
        }
    }
}
