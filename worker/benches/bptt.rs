//! Microbenchmark of the hand-written covid passes (`cargo bench -p wick-worker --bench
//! bptt`): time per batch of 64 windows for every cell at L = 12 and 40, forward alone and
//! forward + backward, single-threaded, on random data, with the recurrent products on
//! register tiles and on the gemm crate. It isolates the kernels that
//! `bench/train.sh` measures end to end, so a change to them can be judged in seconds.

use std::time::Instant;

use candle_core::Device;
use rand::Rng;
use wick_common::trial::Cell;
use wick_worker::covid::bptt::Bptt;
use wick_worker::covid::model::SeqModel;
use wick_worker::params::Params;
use wick_worker::rng::{Purpose, stream};

/// Fastest and median of `reps` timings of each of `fs`, in microseconds, after two
/// warm-up calls; the functions take turns, so that a change of load on a shared machine
/// hits them all (and the fastest run is the one least disturbed by others).
fn best_us<const N: usize>(reps: usize, mut fs: [&mut dyn FnMut(); N]) -> [(f64, f64); N] {
    for f in fs.iter_mut() {
        f();
        f();
    }
    let mut t = [(); N].map(|_| Vec::with_capacity(reps));
    for _ in 0..reps {
        for (f, t) in fs.iter_mut().zip(t.iter_mut()) {
            let s = Instant::now();
            f();
            t.push(s.elapsed().as_secs_f64() * 1e6);
        }
    }
    t.map(|mut t| {
        t.sort_by(f64::total_cmp);
        (t[0], t[reps / 2])
    })
}

fn main() {
    let b = 64;
    println!(
        "µs per batch of {b}, best / median; `tiles`: the recurrent products on register tiles, `gemm`: on the gemm crate"
    );
    println!(
        "| cell | H | L | forward, tiles | forward, gemm | forward+backward, tiles | forward+backward, gemm |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (cell, h) in [(Cell::Rnn, 32), (Cell::Lstm, 64), (Cell::Gru, 64)] {
        for l in [12, 40] {
            let mut p = Params::new(&Device::Cpu);
            SeqModel::new(cell, h, &mut p, &mut stream(1, Purpose::Init, 0)).unwrap();
            let mut rng = stream(1, Purpose::Shuffle, 1);
            let x: Vec<f32> = (0..l * b).map(|_| rng.random_range(-1.0..1.0)).collect();
            let y: Vec<u8> = (0..b).map(|_| u8::from(rng.random_bool(0.5))).collect();
            let mut tiles = Bptt::new(cell, h);
            tiles.load(&p).unwrap();
            let mut plain = Bptt::new(cell, h);
            plain.use_tiles(false);
            plain.load(&p).unwrap();
            let [ft, fp] = best_us(
                300,
                [
                    &mut || {
                        std::hint::black_box(tiles.forward(&x, l, b));
                    },
                    &mut || {
                        std::hint::black_box(plain.forward(&x, l, b));
                    },
                ],
            );
            let [bt, bp] = best_us(
                300,
                [
                    &mut || {
                        std::hint::black_box(tiles.loss_and_grads(&x, &y, l));
                    },
                    &mut || {
                        std::hint::black_box(plain.loss_and_grads(&x, &y, l));
                    },
                ],
            );
            let cols: Vec<String> = [ft, fp, bt, bp]
                .iter()
                .map(|(best, med)| format!("{best:.1} / {med:.1}"))
                .collect();
            println!("| {cell} | {h} | {l} | {} |", cols.join(" | "));
        }
    }
}
