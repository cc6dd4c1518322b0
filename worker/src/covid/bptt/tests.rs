//! The hand-written passes against candle's autograd through `SeqModel` (loss and every
//! gradient), against central finite differences, and in a short training run.

use candle_core::{Device, Tensor};
use rand::Rng;
use wick_common::trial::Cell;

use super::Bptt;
use crate::adam::Adam;
use crate::covid::model::{SeqModel, batch_time_major};
use crate::params::Params;
use crate::rng::{Purpose, stream};

const CELLS: [(Cell, usize); 3] = [(Cell::Rnn, 6), (Cell::Lstm, 5), (Cell::Gru, 7)];

/// A model with its parameters, spread wider than the default initialisation (when
/// `spread`) so that the gates are away from their linear region, and a random batch of `n`
/// windows of `l` days.
fn setup(
    cell: Cell,
    h: usize,
    (l, n): (usize, usize),
    seed: u64,
    spread: bool,
) -> (SeqModel, Params, Vec<f32>, Vec<u8>) {
    let mut p = Params::new(&Device::Cpu);
    let model = SeqModel::new(cell, h, &mut p, &mut stream(seed, Purpose::Init, 0)).unwrap();
    let mut rng = stream(seed, Purpose::Shuffle, 1);
    for (_, v) in p.vars().iter().filter(|_| spread) {
        let vals: Vec<f32> = (0..v.elem_count())
            .map(|_| rng.random_range(-0.9..0.9))
            .collect();
        v.set(&Tensor::from_vec(vals, v.shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
    let x: Vec<f32> = (0..n * l).map(|_| rng.random_range(-2.0..2.0)).collect();
    let y: Vec<u8> = (0..n).map(|_| u8::from(rng.random_bool(0.5))).collect();
    (model, p, x, y)
}

/// Loss and gradients (in `Params` order) from candle's autograd.
fn autograd(model: &SeqModel, p: &Params, x: &[f32], y: &[u8], l: usize) -> (f32, Vec<Vec<f32>>) {
    let idx: Vec<usize> = (0..y.len()).collect();
    let xt = batch_time_major(x, l, &idx, &Device::Cpu).unwrap();
    let yt: Vec<u32> = y.iter().map(|&v| u32::from(v)).collect();
    let yt = Tensor::new(yt.as_slice(), &Device::Cpu).unwrap();
    let loss = candle_nn::loss::cross_entropy(&model.forward(&xt).unwrap(), &yt).unwrap();
    let grads = loss.backward().unwrap();
    let g = p
        .vars()
        .iter()
        .map(|(_, v)| match grads.get(v.as_tensor()) {
            Some(g) => g.flatten_all().unwrap().to_vec1().unwrap(),
            // Unused (the recurrent weights when L = 1): the gradient is zero.
            None => vec![0.0; v.elem_count()],
        })
        .collect();
    (loss.to_scalar().unwrap(), g)
}

/// Loss and gradients from the hand-written passes.
fn by_hand(bp: &mut Bptt, p: &Params, x: &[f32], y: &[u8], l: usize) -> (f32, Vec<Vec<f32>>) {
    let idx: Vec<usize> = (0..y.len()).collect();
    let xt = batch_time_major(x, l, &idx, &Device::Cpu).unwrap();
    let xt: Vec<f32> = xt.flatten_all().unwrap().to_vec1().unwrap();
    bp.load(p).unwrap();
    let loss = bp.loss_and_grads(&xt, y, l);
    (loss, bp.grads().to_vec())
}

/// Asserts that `bp` gives autograd's loss and gradients for a `cell` model of `h` units on
/// every (L, B) of `shapes`, through one `Bptt`: buffers sized for a long batch must serve
/// a short one. `spread` as for [`setup`].
fn assert_matches_autograd(
    bp: &mut Bptt,
    (cell, h): (Cell, usize),
    shapes: &[(usize, usize)],
    spread: bool,
) {
    for (k, &(l, n)) in shapes.iter().enumerate() {
        let (model, p, x, y) = setup(cell, h, (l, n), 10 + k as u64, spread);
        let (la, ga) = autograd(&model, &p, &x, &y, l);
        let (lb, gb) = by_hand(bp, &p, &x, &y, l);
        assert!(
            (la - lb).abs() <= 1e-5 * la.abs().max(1.0),
            "{cell} L={l}: loss {la} vs {lb}"
        );
        assert_eq!(ga.len(), gb.len());
        for ((name, _), (a, b)) in p.vars().iter().zip(ga.iter().zip(&gb)) {
            let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-4);
            let diff = a.iter().zip(b).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                diff <= 1e-5 * scale,
                "{cell} H={h} L={l} B={n} {name}: max diff {diff} (scale {scale})\n{a:?}\n{b:?}"
            );
        }
    }
}

#[test]
fn gradients_equal_autograd_for_every_cell_and_shape() {
    for (cell, h) in CELLS {
        let mut bp = Bptt::new(cell, h);
        let shapes = [(1, 1), (3, 5), (12, 9), (40, 4), (2, 17)];
        assert_matches_autograd(&mut bp, (cell, h), &shapes, true);
    }
}

#[test]
fn register_tiles_give_autograds_gradients() {
    // H a multiple of 16: the recurrent products run on `kernels::tile` where the CPU
    // allows, with batches that fill whole tiles of six rows (66), leave a remainder (64,
    // 7) or fill none (1, 5); and the general product on the same shapes. The weights are
    // the usual initial ones: spread as wide as above, 16 units over 40 steps are chaotic
    // enough that any two summation orders differ by more than the tolerance.
    let shapes = [(1, 1), (3, 5), (12, 64), (40, 7), (5, 66)];
    for (cell, h) in [(Cell::Rnn, 16), (Cell::Lstm, 32), (Cell::Gru, 16)] {
        for tiles in [true, false] {
            let mut bp = Bptt::new(cell, h);
            bp.use_tiles(tiles);
            assert_eq!(bp.uses_tiles(), tiles && crate::kernels::tile::available());
            assert_matches_autograd(&mut bp, (cell, h), &shapes, false);
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    for (cell, h) in CELLS {
        let (l, n) = (6, 5);
        let (_, p, x, y) = setup(cell, h, (l, n), 3, true);
        let mut bp = Bptt::new(cell, h);
        let (_, g) = by_hand(&mut bp, &p, &x, &y, l);
        let mut checked = 0;
        for (k, (name, var)) in p.vars().iter().enumerate() {
            // The largest entry of each tensor: a wrong formula shows there first.
            let (j, &gj) = g[k]
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                .unwrap();
            let base: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            let eps = 1e-2f32;
            let mut at = |d: f32| {
                let mut v = base.clone();
                v[j] += d;
                var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
                    .unwrap();
                by_hand(&mut bp, &p, &x, &y, l).0
            };
            let fd = (f64::from(at(eps)) - f64::from(at(-eps))) / (2.0 * f64::from(eps));
            at(0.0);
            let tol = 2e-2 * f64::from(gj.abs()) + 2e-4;
            assert!(
                (fd - f64::from(gj)).abs() <= tol,
                "{cell} {name}[{j}]: fd {fd} vs {gj}"
            );
            checked += usize::from(gj.abs() > 1e-3);
        }
        assert!(
            checked >= p.vars().len() - 1,
            "{cell}: most checks were on real gradients"
        );
    }
}

#[test]
fn training_by_hand_learns() {
    // Class 1 when the window ends higher than it starts: learnable by every cell.
    for (cell, h) in CELLS {
        let (l, n) = (8, 32);
        let (_, p, _, _) = setup(cell, h, (l, n), 5, false);
        let mut rng = stream(9, Purpose::Shuffle, 2);
        let mut bp = Bptt::new(cell, h);
        let mut adam = Adam::new(&p, 0.02).unwrap();
        let mut losses = Vec::new();
        for _ in 0..300 {
            let x: Vec<f32> = (0..n * l).map(|_| rng.random_range(-1.0..1.0)).collect();
            let y: Vec<u8> = x.chunks(l).map(|w| u8::from(w[l - 1] > w[0])).collect();
            let (loss, g) = by_hand(&mut bp, &p, &x, &y, l);
            adam.step_values(&p, &g).unwrap();
            losses.push(loss);
        }
        let first: f32 = losses[..10].iter().sum::<f32>() / 10.0;
        let last: f32 = losses[290..].iter().sum::<f32>() / 10.0;
        assert!(last < 0.4 * first, "{cell}: loss {first} -> {last}");
    }
}

#[test]
fn probabilities_by_hand_equal_the_models() {
    // The forecast (artifacts, serving) takes P(increase) from the hand-written forward
    // on the CPU; it must be the model's own answer.
    for (cell, h) in CELLS {
        let (model, p, x, _) = setup(cell, h, (9, 11), 3, true);
        let idx: Vec<usize> = (0..11).collect();
        let want = model
            .prob_increase(&batch_time_major(&x, 9, &idx, &Device::Cpu).unwrap())
            .unwrap();
        let mut bp = Bptt::new(cell, h);
        bp.load(&p).unwrap();
        let mut xt = Vec::new();
        super::time_major(&x, 9, &idx, &mut xt);
        let got: Vec<f32> = bp
            .forward(&xt, 9, 11)
            .chunks_exact(2)
            .map(|z| 1.0 / (1.0 + (z[0] - z[1]).exp()))
            .collect();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{cell}: {g} vs {w}");
        }
    }
}
