//! Model selection of the VAE on real faces from the shared data: with images held out,
//! the run ends with (and `model.safetensors` holds) the weights of the epoch with the
//! lowest validation negative ELBO, and the interpolation picture is the coursework's
//! strip of 15 tiles: original | reconstruction | 11 steps | reconstruction | original.

mod common;

use candle_core::{Device, Tensor};
use wick_common::trial::{TrialConfig, VaeConfig};
use wick_worker::ckpt::{self, MODEL_PREFIX};
use wick_worker::vae;
use wick_worker::vae::images::ImageSet;

/// 200 faces, 30 of them held out. The learning rate and small batches make the model
/// overfit its 170 training faces within a few dozen epochs, so the validation −ELBO turns
/// up before the last epoch and the selection has something to choose.
fn cfg(epochs: usize) -> VaeConfig {
    VaeConfig {
        kl_weight: 1.0,
        size: 28,
        epochs,
        lr: 3e-3,
        batch: 16,
        seed: 0,
        hidden: 400,
        latent: 50,
        limit: 200,
        val: 0.15,
    }
}

const EPOCHS: usize = 40;

fn faces() -> Option<ImageSet> {
    let data = common::shared_data()?;
    Some(vae::images::load_folder(&data.join("anime-faces"), 28, 200).unwrap())
}

/// The values of `t`, flattened.
fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn the_served_model_is_the_epoch_with_the_lowest_validation_neg_elbo() {
    let Some(images) = faces() else {
        return;
    };
    let dev = Device::Cpu;
    let run = vae::train::train(&cfg(EPOCHS), &images, &dev, None, &mut |_| Ok(())).unwrap();
    assert_eq!((run.images_train, run.images_val), (170, 30));
    let val: Vec<f64> = run
        .history
        .iter()
        .map(|e| e.val_neg_elbo.expect("every epoch is validated"))
        .collect();
    for e in &run.history {
        eprintln!(
            "epoch {:>2}: train -ELBO {:.1}, val -ELBO {:.1} (recon {:.1} + KL {:.1})",
            e.epoch,
            e.neg_elbo,
            e.val_neg_elbo.unwrap(),
            e.val_recon.unwrap(),
            e.val_kl.unwrap()
        );
        let (r, k) = (e.val_recon.unwrap(), e.val_kl.unwrap());
        assert!((e.val_neg_elbo.unwrap() - (r + k)).abs() < 1e-9);
    }
    // The first epoch with the lowest validation −ELBO.
    let argmin = val
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1).then(a.0.cmp(&b.0)))
        .map(|(i, _)| i + 1)
        .unwrap();
    assert_eq!(run.selected_epoch, argmin, "{val:?}");
    assert!(
        run.selected_epoch < EPOCHS,
        "validation −ELBO never rose, so this test selects nothing: {val:?}"
    );
    let selected = &run.history[argmin - 1];
    let last = run.history.last().unwrap();
    assert!(
        last.neg_elbo < selected.neg_elbo,
        "training −ELBO kept falling after the selected epoch"
    );

    let out = tempfile::tempdir().unwrap();
    let config = TrialConfig::Vae(cfg(EPOCHS));
    vae::artifacts::write_all(out.path(), &config, &images, &run, &dev).unwrap();

    // model.safetensors holds exactly the weights of a run stopped at the selected epoch.
    let bytes = std::fs::read(out.path().join("model.safetensors")).unwrap();
    let served = ckpt::from_bytes(&bytes, "model.safetensors", &dev).unwrap();
    let short = vae::train::train(&cfg(argmin), &images, &dev, None, &mut |_| Ok(())).unwrap();
    // Everything but the wall times.
    let numbers = |h: &[vae::train::EpochStats]| {
        h.iter()
            .map(|e| (e.epoch, e.neg_elbo, e.recon, e.kl, e.val_neg_elbo))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        numbers(&short.history),
        numbers(&run.history[..argmin]),
        "same first epochs"
    );
    assert_eq!(short.selected_epoch, argmin);
    let want = short.params.tensors(MODEL_PREFIX);
    assert_eq!(want.len(), 10);
    for (name, t) in &want {
        assert_eq!(
            values(&served.tensors[name]),
            values(t),
            "{name} of model.safetensors is not the selected epoch's"
        );
    }
    let (_, model, _) = vae::train::load_model(&bytes, "model.safetensors", &dev).unwrap();

    // The interpolation strip: 15 tiles of 28 px at scale 3 with 2 px grey gaps, in one row.
    let strip = image::open(out.path().join("interpolation.png"))
        .unwrap()
        .to_rgb8();
    let (cell, gap) = (28 * 3, 2);
    assert_eq!(
        (strip.width(), strip.height()),
        (gap + 15 * (cell + gap), gap + cell + gap)
    );
    let x =
        Tensor::from_slice(&images.pixels[..2 * images.dim()], (2, images.dim()), &dev).unwrap();
    let (a, b) = (x.narrow(0, 0, 1).unwrap(), x.narrow(0, 1, 1).unwrap());
    let recon = vae::artifacts::reconstruct(&model, &x).unwrap();
    let steps = vae::artifacts::interpolate(&model, &a, &b, 11).unwrap();
    let mut tiles: Vec<&[f32]> = vec![images.image(0), &recon[0]];
    tiles.extend(steps.iter().map(Vec::as_slice));
    tiles.extend([recon[1].as_slice(), images.image(1)]);
    assert_eq!(tiles.len(), 15);
    for (k, want) in tiles.iter().enumerate() {
        let x0 = gap + k as u32 * (cell + gap);
        let mut worst = 0i32;
        for y in 0..28u32 {
            for x in 0..28u32 {
                let px = strip.get_pixel(x0 + 3 * x, gap + 3 * y).0;
                for (c, &got) in px.iter().enumerate() {
                    let v = want[c * 784 + (y * 28 + x) as usize];
                    let byte = (v.clamp(0.0, 1.0) * 255.0).round() as i32;
                    worst = worst.max((i32::from(got) - byte).abs());
                }
            }
        }
        assert!(worst <= 1, "tile {k} differs by {worst} levels");
    }
    // The ends are the two faces themselves, not the same picture twice.
    assert_ne!(images.image(0), images.image(1));
}

#[test]
fn too_few_images_for_a_validation_set_fail_clearly() {
    let one = ImageSet {
        size: 4,
        pixels: vec![0.5; 48],
        names: vec!["1.png".into()],
        skipped: vec![],
    };
    let mut c = cfg(1);
    c.size = 4;
    let e = format!(
        "{:#}",
        vae::train::train(&c, &one, &Device::Cpu, None, &mut |_| Ok(()))
            .err()
            .unwrap()
    );
    assert!(e.contains("only 1 image") && e.contains("--val 0"), "{e}");
    c.val = 0.0;
    let run = vae::train::train(&c, &one, &Device::Cpu, None, &mut |_| Ok(())).unwrap();
    assert_eq!(
        (run.images_train, run.images_val, run.selected_epoch),
        (1, 0, 1)
    );
}
