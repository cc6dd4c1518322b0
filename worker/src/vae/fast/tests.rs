//! The hand-written passes against candle's autograd through `Vae::loss_terms`, against
//! central finite differences, and in a short training run.

use candle_core::{Device, Tensor};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::FastVae;
use crate::adam::Adam;
use crate::params::Params;
use crate::rng::{Purpose, stream};
use crate::vae::model::Vae;

const D: usize = 12;
const H: usize = 9;
const Z: usize = 4;
const N: usize = 11;

/// A VAE with random weights, random pixels (N, D) in [0, 1] and noise for `b` rows.
fn setup(seed: u64, b: usize) -> (Params, Vae, Vec<f32>, Vec<f32>) {
    let mut p = Params::new(&Device::Cpu);
    let mut rng = stream(seed, Purpose::Init, 0);
    let vae = Vae::new(D, H, Z, &mut p, &mut rng).unwrap();
    let pixels: Vec<f32> = (0..N * D).map(|_| rng.random_range(0.0..=1.0)).collect();
    let eps: Vec<f32> = (0..b * Z)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    (p, vae, pixels, eps)
}

fn rows(pixels: &[f32], idx: &[u32]) -> Tensor {
    let v: Vec<f32> = idx
        .iter()
        .flat_map(|&i| pixels[i as usize * D..(i as usize + 1) * D].to_vec())
        .collect();
    Tensor::from_vec(v, (idx.len(), D), &Device::Cpu).unwrap()
}

/// Largest difference relative to the largest magnitude of `want`.
fn rel(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
        / scale
}

#[test]
fn loss_and_gradients_equal_autograd() {
    let batches: [&[u32]; 3] = [&[3], &[0, 5, 2, 9, 7], &[10, 1, 4, 6, 8, 0, 2, 3, 5, 9, 7]];
    for (seed, idx) in batches.iter().enumerate() {
        for kl_weight in [0.0, 1.0, 100.0] {
            let (p, vae, pixels, eps) = setup(seed as u64, idx.len());
            let x = rows(&pixels, idx);
            let e = Tensor::from_slice(&eps, (idx.len(), Z), &Device::Cpu).unwrap();
            let t = vae.loss_terms(&x, &e).unwrap();
            let loss = (&t.recon + (&t.kl * kl_weight).unwrap())
                .unwrap()
                .mean_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            let mut fast = FastVae::new(D, H, Z);
            let (r, k) = fast.step(&p, &pixels, idx, &eps, kl_weight).unwrap();
            let what = format!("batch {} kl_weight {kl_weight}", idx.len());
            let (recon, kl) = fast.terms();
            let want_r: Vec<f32> = t.recon.to_vec1().unwrap();
            let want_k: Vec<f32> = t.kl.to_vec1().unwrap();
            assert!(rel(recon, &want_r) < 1e-5, "recon, {what}");
            assert!(rel(kl, &want_k) < 1e-5, "kl, {what}");
            let sum = |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>();
            assert!((r - sum(&want_r)).abs() < 1e-4 * r.abs(), "{what}");
            assert!(
                (k - sum(&want_k)).abs() < 1e-4 * k.abs().max(1e-3),
                "{what}"
            );
            for ((name, var), got) in p.vars().iter().zip(fast.grads()) {
                let want: Vec<f32> = grads
                    .get(var.as_tensor())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                let err = rel(got, &want);
                assert!(err < 1e-4, "{name}: relative error {err}, {what}");
            }
        }
    }
}

#[test]
fn gradients_match_central_differences() {
    let idx: Vec<u32> = (0..6).collect();
    let kl_weight = 2.0;
    let (p, _, pixels, eps) = setup(7, idx.len());
    let mut fast = FastVae::new(D, H, Z);
    fast.step(&p, &pixels, &idx, &eps, kl_weight).unwrap();
    let grads = fast.grads().to_vec();
    let mut loss_at = |p: &Params| {
        let (r, k) = fast.step(p, &pixels, &idx, &eps, kl_weight).unwrap();
        (r + kl_weight * k) / idx.len() as f64
    };
    let mut checked = 0;
    for (t, g) in grads.iter().enumerate() {
        let var = &p.vars()[t].1;
        let orig: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        for j in [0, g.len() / 2, g.len() - 1] {
            let step = 1e-2f32;
            let mut moved = |delta: f32| {
                let mut v = orig.clone();
                v[j] += delta;
                var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
                    .unwrap();
                loss_at(&p)
            };
            let fd = (moved(step) - moved(-step)) / (2.0 * f64::from(step));
            let got = f64::from(g[j]);
            assert!(
                (fd - got).abs() < 2e-3 + 1e-2 * got.abs(),
                "tensor {t} entry {j}: finite difference {fd}, analytic {got}"
            );
            checked += usize::from(got.abs() > 1e-3);
        }
        var.set(&Tensor::from_vec(orig, var.shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
    assert!(
        checked >= 15,
        "only {checked} entries had a visible gradient"
    );
}

#[test]
fn training_with_the_fast_pass_lowers_the_loss() {
    // Black-and-white pixels: a loss that can fall far, unlike uniform noise's entropy.
    let (p, _, pixels, _) = setup(3, 0);
    let pixels: Vec<f32> = pixels.iter().map(|v| v.round()).collect();
    let mut adam = Adam::new(&p, 1e-2).unwrap();
    let mut fast = FastVae::new(D, H, Z);
    let mut noise = stream(3, Purpose::Noise, 0);
    let idx: Vec<u32> = (0..N as u32).collect();
    let mut losses = Vec::new();
    for _ in 0..1000 {
        let eps: Vec<f32> = (0..N * Z)
            .map(|_| StandardNormal.sample(&mut noise))
            .collect();
        let (r, k) = fast.step(&p, &pixels, &idx, &eps, 1.0).unwrap();
        losses.push((r + k) / N as f64);
        adam.step_values(&p, fast.grads()).unwrap();
    }
    let first: f64 = losses[..10].iter().sum::<f64>() / 10.0;
    let last: f64 = losses[990..].iter().sum::<f64>() / 10.0;
    assert!(last < 0.7 * first, "loss {first} -> {last}");
}
