//! Shared setup of the `serve_*` tests: a small generated COVID-19 table and face folder,
//! tiny trial configurations, and final model files trained from them.
#![allow(dead_code)]

use std::path::Path;

use candle_core::Device;
use wick_common::trial::{Cell, CovidConfig, TrialConfig, VaeConfig};
use wick_worker::ckpt::{self, MODEL_PREFIX};
use wick_worker::{covid, train, vae};

/// Six countries over 50 days in the long layout: two families of curves (so set C is not
/// empty) with irregular daily increments.
pub fn covid_csv() -> String {
    let mut csv = String::from("Date,Country,Confirmed\n");
    let start = chrono::NaiveDate::from_ymd_opt(2020, 2, 1).unwrap();
    for (ci, name) in ["France", "Germany", "Italy", "Spain", "Japan", "Chile"]
        .iter()
        .enumerate()
    {
        let mut cum = 0.0;
        for d in 0..50u32 {
            let family = if ci % 2 == 0 {
                (d * 3 % 7) as f64 * (1.0 + f64::from(d) / 5.0)
            } else {
                ((d * 5 % 9) as f64 + 2.0) * f64::from(d % 4 + 1)
            };
            cum += family * (ci as f64 + 1.0) + f64::from((d * (ci as u32 + 1)) % 3);
            let date = start + chrono::Days::new(u64::from(d));
            csv.push_str(&format!("{date},{name},{cum}\n"));
        }
    }
    csv
}

/// A GRU trial on [`covid_csv`] small enough to train in a blink.
pub fn covid_cfg(epochs: usize) -> CovidConfig {
    CovidConfig {
        cell: Cell::Gru,
        hidden: 6,
        l: 5,
        epochs,
        lr: 1e-2,
        batch: 16,
        seed: 3,
        threshold: 0.7,
        start: "2020-02-02".into(),
        split: "random".into(),
        val: 0.0,
    }
}

/// An 8×8 VAE with a tiny MLP.
pub fn vae_cfg(epochs: usize) -> VaeConfig {
    VaeConfig {
        kl_weight: 1.0,
        size: 8,
        epochs,
        lr: 1e-3,
        batch: 4,
        seed: 0,
        hidden: 16,
        latent: 4,
        limit: 0,
        val: 0.0,
    }
}

/// A PNG of `w`×`h` pixels whose colour depends on `i`.
pub fn png(i: u8, w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([i.wrapping_mul(40), (x * 20) as u8, (y * 30) as u8])
    });
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png).unwrap();
    buf.into_inner()
}

/// Six small face images in `dir`.
pub fn write_faces(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..6u8 {
        std::fs::write(dir.join(format!("{i}.png")), png(i, 12, 10)).unwrap();
    }
}

/// A tar archive of the six face images at its root, as the client uploads it.
pub fn faces_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..6u8 {
        let bytes = png(i, 12, 10);
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, format!("{i}.png"), bytes.as_slice())
            .unwrap();
    }
    b.into_inner().unwrap()
}

/// The final `model.safetensors` bytes of a covid trial trained on the CSV at `csv`.
pub fn covid_model(csv: &Path, c: &CovidConfig) -> Vec<u8> {
    let (_, data) = train::load_covid(csv, c).unwrap();
    let run = covid::train::train(c, &data, &Device::Cpu, None, &mut |_| Ok(())).unwrap();
    let meta = ckpt::metadata(&TrialConfig::Covid(c.clone()), c.epochs);
    ckpt::to_bytes(&run.params.tensors(MODEL_PREFIX), meta).unwrap()
}

/// The final `model.safetensors` bytes of a VAE trained on the images in `dir`.
pub fn vae_model(dir: &Path, c: &VaeConfig) -> Vec<u8> {
    let images = vae::images::load_folder(dir, c.size, 0).unwrap();
    let run = vae::train::train(c, &images, &Device::Cpu, None, &mut |_| Ok(())).unwrap();
    let meta = ckpt::metadata(&TrialConfig::Vae(c.clone()), c.epochs);
    ckpt::to_bytes(&run.params.tensors(MODEL_PREFIX), meta).unwrap()
}
