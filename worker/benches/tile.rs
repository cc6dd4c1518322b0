//! Microbenchmark of the tiled product against the `gemm` crate on the covid LSTM's
//! per-step shapes (`cargo bench -p wick-worker --bench tile`): GFLOP/s, best / median.

use std::time::Instant;

use wick_worker::kernels::matmul;
use wick_worker::kernels::tile::{PAD, Product, pack};

fn best(reps: usize, flops: f64, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            for _ in 0..40 {
                f();
            }
            s.elapsed().as_secs_f64() / 40.0
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (flops / t[0] / 1e9, flops / t[reps / 2] / 1e9)
}

fn main() {
    let (b, h) = (64, 64);
    let gh = 4 * h;
    let rs = gh + PAD;
    let v = |n: usize| {
        (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect::<Vec<f32>>()
    };
    let (hp, w, dq) = (v(b * h), v(h * gh), v(b * rs));
    let mut dst = vec![0f32; b * gh];
    let mut g = vec![0f32; h * gh];
    let mut dh = vec![0f32; b * h];
    let none = gemm::Parallelism::None;
    let fl = (2 * b * h * gh) as f64;
    let (mut pw, mut pwt) = (Vec::new(), Vec::new());
    pack(&w, h, gh, (gh, 1), &mut pw);
    pack(&w, gh, h, (1, gh), &mut pwt);
    let r = |name: &str, x: (f64, f64)| println!("{name:<28} {:6.1} / {:6.1}", x.0, x.1);
    for _ in 0..2 {
        r(
            "fwd gemm",
            best(200, fl, || {
                matmul(b, gh, h, &mut dst, false, &hp, (h, 1), &w, (gh, 1), none)
            }),
        );
        r(
            "fwd tile",
            best(200, fl, || {
                Product {
                    m: b,
                    n: gh,
                    k: h,
                    a: &hp,
                    a_s: (h, 1),
                    b: &pw,
                    b_s: (h * 16, 16),
                }
                .run(&mut dst, gh, false)
            }),
        );
        r(
            "dW gemm",
            best(200, fl, || {
                matmul(h, gh, b, &mut g, true, &hp, (1, h), &dq, (rs, 1), none)
            }),
        );
        r(
            "dW tile (padded)",
            best(200, fl, || {
                Product {
                    m: h,
                    n: gh,
                    k: b,
                    a: &hp,
                    a_s: (1, h),
                    b: &dq,
                    b_s: (16, rs),
                }
                .run(&mut g, gh, true)
            }),
        );
        r(
            "dW tile (stride 256)",
            best(200, fl, || {
                Product {
                    m: h,
                    n: gh,
                    k: b,
                    a: &hp,
                    a_s: (1, h),
                    b: &dq,
                    b_s: (16, gh),
                }
                .run(&mut g, gh, true)
            }),
        );
        r(
            "dh gemm",
            best(200, fl, || {
                matmul(b, h, gh, &mut dh, false, &dq, (rs, 1), &w, (1, gh), none)
            }),
        );
        r(
            "dh tile",
            best(200, fl, || {
                Product {
                    m: b,
                    n: h,
                    k: gh,
                    a: &dq,
                    a_s: (rs, 1),
                    b: &pwt,
                    b_s: (gh * 16, 16),
                }
                .run(&mut dh, h, false)
            }),
        );
    }
}
