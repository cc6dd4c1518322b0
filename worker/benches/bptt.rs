//! Microbenchmark of the hand-written covid passes (`cargo bench -p wick-worker --bench
//! bptt`): time per batch of 64 windows for every cell at L = 12 and 40, forward alone and
//! forward + backward, single-threaded, on random data. It isolates the kernels that
//! `bench/train.sh` measures end to end, so a change to them can be judged in seconds.

use std::time::Instant;

use candle_core::Device;
use rand::Rng;
use wick_common::trial::Cell;
use wick_worker::covid::bptt::Bptt;
use wick_worker::covid::model::SeqModel;
use wick_worker::params::Params;
use wick_worker::rng::{Purpose, stream};

/// Fastest and median of `reps` timings of `f`, in microseconds, after two warm-up calls
/// (on a shared machine the fastest run is the one least disturbed by others).
fn best_us(reps: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[0], t[reps / 2])
}

fn main() {
    let b = 64;
    println!(
        "| cell | H | L | forward µs/batch, best / median | forward+backward µs/batch, best / median |"
    );
    println!("|---|---|---|---|---|");
    for (cell, h) in [(Cell::Rnn, 32), (Cell::Lstm, 64), (Cell::Gru, 64)] {
        for l in [12, 40] {
            let mut p = Params::new(&Device::Cpu);
            SeqModel::new(cell, h, &mut p, &mut stream(1, Purpose::Init, 0)).unwrap();
            let mut rng = stream(1, Purpose::Shuffle, 1);
            let x: Vec<f32> = (0..l * b).map(|_| rng.random_range(-1.0..1.0)).collect();
            let y: Vec<u8> = (0..b).map(|_| u8::from(rng.random_bool(0.5))).collect();
            let mut bp = Bptt::new(cell, h);
            bp.load(&p).unwrap();
            let fwd = best_us(300, || {
                std::hint::black_box(bp.forward(&x, l, b));
            });
            let both = best_us(300, || {
                std::hint::black_box(bp.loss_and_grads(&x, &y, l));
            });
            println!(
                "| {cell} | {h} | {l} | {:.1} / {:.1} | {:.1} / {:.1} |",
                fwd.0, fwd.1, both.0, both.1
            );
        }
    }
}
