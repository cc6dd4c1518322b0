//! Microbenchmark of the register-tiled product (`kernels::tile`) against the `gemm` crate
//! on the three per-step products of the covid LSTM64 (`cargo bench -p wick-worker --bench
//! tile`): GFLOP/s, best / median of 300 timings of 40 products each, the two in
//! alternation. The weights are packed once, as the training passes pack them once a batch.

use wick_worker::kernels::matmul;
use wick_worker::kernels::tile::{NR, PAD, Product, pack};

mod common;
use common::best_us;

fn main() {
    let (b, h) = (64, 64);
    let gh = 4 * h;
    let rs = gh + PAD;
    let v = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect()
    };
    let (hp, w, dq) = (v(b * h), v(h * gh), v(b * rs));
    let (mut pw, mut pwt) = (Vec::new(), Vec::new());
    pack(&w, h, gh, (gh, 1), &mut pw);
    pack(&w, gh, h, (1, gh), &mut pwt);
    // One destination per side: the two closures are alive at once.
    let (mut q, mut g, mut dh) = (vec![0f32; b * gh], vec![0f32; h * gh], vec![0f32; b * h]);
    let (mut q2, mut g2, mut dh2) = (q.clone(), g.clone(), dh.clone());
    let none = gemm::Parallelism::None;
    let gflops = |(best, med): (f64, f64)| {
        let flop = 40.0 * (2 * b * h * gh) as f64;
        format!("{:.1} / {:.1}", flop / best / 1e3, flop / med / 1e3)
    };
    let forty = |f: &mut dyn FnMut()| {
        for _ in 0..40 {
            f();
        }
    };
    println!("GFLOP/s, best / median; one thread");
    println!("| product | shape | gemm crate | register tiles |");
    println!("|---|---|---|---|");
    let [a, t] = best_us(
        300,
        [
            &mut || forty(&mut || matmul(b, gh, h, &mut q, false, &hp, (h, 1), &w, (gh, 1), none)),
            &mut || {
                let p = Product {
                    m: b,
                    n: gh,
                    k: h,
                    a: &hp,
                    a_s: (h, 1),
                    b: &pw,
                    b_s: (h * NR, NR),
                };
                forty(&mut || p.run(&mut q2, gh, false))
            },
        ],
    );
    println!(
        "| forward h·W | {b}×{h} · {h}×{gh} | {} | {} |",
        gflops(a),
        gflops(t)
    );
    let [a, t] = best_us(
        300,
        [
            &mut || forty(&mut || matmul(h, gh, b, &mut g, true, &hp, (1, h), &dq, (rs, 1), none)),
            &mut || {
                let p = Product {
                    m: h,
                    n: gh,
                    k: b,
                    a: &hp,
                    a_s: (1, h),
                    b: &dq,
                    b_s: (NR, rs),
                };
                forty(&mut || p.run(&mut g2, gh, true))
            },
        ],
    );
    println!(
        "| weight gradient hᵀ·dq | {h}×{b} · {b}×{gh} | {} | {} |",
        gflops(a),
        gflops(t)
    );
    let [a, t] = best_us(
        300,
        [
            &mut || {
                forty(&mut || matmul(b, h, gh, &mut dh, false, &dq, (rs, 1), &w, (1, gh), none))
            },
            &mut || {
                let p = Product {
                    m: b,
                    n: h,
                    k: gh,
                    a: &dq,
                    a_s: (rs, 1),
                    b: &pwt,
                    b_s: (gh * NR, NR),
                };
                forty(&mut || p.run(&mut dh2, h, false))
            },
        ],
    );
    println!(
        "| state gradient dq·Wᵀ | {b}×{gh} · {gh}×{h} | {} | {} |",
        gflops(a),
        gflops(t)
    );
}
