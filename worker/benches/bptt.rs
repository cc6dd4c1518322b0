//! Microbenchmark of the hand-written covid passes (`cargo bench -p wick-worker --bench
//! bptt`): time per batch of 64 windows for every cell at L = 12 and 40, forward alone and
//! forward + backward, single-threaded, on random data, with the recurrent products on
//! register tiles and on the gemm crate. It isolates the kernels that
//! `bench/train.sh` measures end to end, so a change to them can be judged in seconds.

use candle_core::Device;
use rand::Rng;
use wick_common::trial::Cell;
use wick_worker::covid::bptt::Bptt;
use wick_worker::covid::model::SeqModel;
use wick_worker::params::Params;
use wick_worker::rng::{Purpose, stream};

mod common;
use common::best_us;

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
