//! Renders one of every wick-viz picture from made-up but realistically sized data into a
//! folder (default `/tmp/vizdemo`), for looking at them by eye:
//! `cargo run -p wick-viz --example demo -- /tmp/vizdemo`.

use std::path::PathBuf;

/// A small xorshift generator: the demo needs noise, not a dependency.
struct Rng(u64);

impl Rng {
    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn main() -> wick_viz::Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or("/tmp/vizdemo".into()));
    std::fs::create_dir_all(&out).expect("create the output folder");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);

    // 185 country names and a correlation matrix built from random unit vectors, so it
    // has the blocks of a real one; two countries get NaN as constant series would.
    let mut names: Vec<String> = world_names();
    names.truncate(185);
    let vecs: Vec<[f64; 3]> = names
        .iter()
        .map(|_| {
            let v = [rng.next() - 0.5, rng.next() - 0.3, rng.next() - 0.5];
            let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
            [v[0] / n, v[1] / n, v[2] / n]
        })
        .collect();
    let matrix: Vec<Vec<f64>> = (0..names.len())
        .map(|i| {
            (0..names.len())
                .map(|j| match (i, j) {
                    _ if i == 17 || j == 17 || i == 90 || j == 90 => f64::NAN,
                    _ => (0..3).map(|k| vecs[i][k] * vecs[j][k]).sum(),
                })
                .collect()
        })
        .collect();
    wick_viz::heatmap(
        &out.join("heatmap.png"),
        &names,
        &matrix,
        "Correlation of daily new cases",
    )?;

    // A 500-epoch classifier run that overfits a little, and a 1-epoch one.
    let n = 500;
    let noise = |rng: &mut Rng, s: f64| (rng.next() - 0.5) * s;
    let train_loss: Vec<f64> = (0..n)
        .map(|e| 0.35 + 0.35 * (-(e as f64) / 60.0).exp() + noise(&mut rng, 0.01))
        .collect();
    let test_loss: Vec<f64> = (0..n)
        .map(|e| 0.45 + 0.25 * (-(e as f64) / 40.0).exp() + e as f64 * 1e-4 + noise(&mut rng, 0.03))
        .collect();
    let train_acc: Vec<f64> = train_loss
        .iter()
        .map(|l| 1.05 - l + noise(&mut rng, 0.01))
        .collect();
    let test_acc: Vec<f64> = test_loss
        .iter()
        .map(|l| 1.02 - l + noise(&mut rng, 0.02))
        .collect();
    let curves = wick_viz::Curves {
        train_loss: &train_loss,
        test_loss: &test_loss,
        train_acc: &train_acc,
        test_acc: &test_acc,
        val_loss: &[],
        val_acc: &[],
        baseline_acc: Some(0.52),
    };
    wick_viz::learning_curves(
        &out.join("curves-500.png"),
        &curves,
        "LSTM, L = 40, 64 units",
    )?;
    let one = wick_viz::Curves {
        train_loss: &train_loss[..1],
        test_loss: &test_loss[..1],
        train_acc: &train_acc[..1],
        test_acc: &test_acc[..1],
        val_loss: &[],
        val_acc: &[],
        baseline_acc: Some(0.52),
    };
    wick_viz::learning_curves(&out.join("curves-1.png"), &one, "GRU, one epoch")?;

    // VAE terms per image at 28 x 28: reconstruction in the hundreds, KL a few tens.
    let recon: Vec<f64> = (0..100)
        .map(|e| 1650.0 + 300.0 * (-(e as f64) / 8.0).exp() + noise(&mut rng, 4.0))
        .collect();
    let kl: Vec<f64> = (0..100)
        .map(|e| 28.0 - 10.0 * (-(e as f64) / 5.0).exp() + noise(&mut rng, 0.5))
        .collect();
    let elbo: Vec<f64> = recon.iter().zip(&kl).map(|(r, k)| r + k).collect();
    // Validation: close to training early, then rising as the model overfits.
    let val: Vec<f64> = elbo
        .iter()
        .enumerate()
        .map(|(e, v)| v + 5.0 + 0.02 * (e as f64).powi(2) + noise(&mut rng, 4.0))
        .collect();
    wick_viz::vae_curves(
        &out.join("vae-curves.png"),
        &wick_viz::VaeCurves {
            neg_elbo: &elbo,
            val_neg_elbo: &val,
            recon: &recon,
            kl: &kl,
        },
        "VAE, kl_weight = 1",
    )?;
    let series = [
        wick_viz::SeriesSpec {
            name: "-ELBO",
            values: &elbo,
        },
        wick_viz::SeriesSpec {
            name: "reconstruction",
            values: &recon,
        },
        wick_viz::SeriesSpec {
            name: "KL",
            values: &kl,
        },
    ];
    wick_viz::line_chart(
        &out.join("line-chart.png"),
        &series,
        "VAE, one axis",
        "epoch",
        "nats per image",
    )?;
    wick_viz::confusion_matrix(
        &out.join("confusion.png"),
        [[1834, 612], [701, 1521]],
        ["no increase", "increase"],
        "GRU test set",
    )?;

    // Probabilities for about 150 countries, plus the codes the COVID data maps to that
    // the shapes lack (Taiwan) or that do not exist, which must be ignored.
    let mut values: Vec<(String, f64)> = world_codes()
        .into_iter()
        .filter_map(|c| {
            let keep = rng.next() < 0.65;
            keep.then(|| (c, rng.next()))
        })
        .collect();
    values.push(("TW".into(), 0.9));
    values.push(("XX".into(), 0.1));
    println!("{} map values", values.len());
    let legend = "P(new cases increase tomorrow)";
    let title = "GRU forecast for the day after the last window";
    wick_viz::world_map_png(&out.join("map.png"), &values, title, legend)?;
    wick_viz::world_map_svg(&out.join("map.svg"), &values, title, legend)?;

    // An interpolation-strip-like sheet: 28 x 28 colour blobs, 11 per row, a short last row.
    let size = 28usize;
    let images: Vec<Vec<f32>> = (0..27)
        .map(|k| {
            let t = k as f32 / 26.0;
            let mut chw = vec![0f32; 3 * size * size];
            for y in 0..size {
                for x in 0..size {
                    let (dx, dy) = (x as f32 - 13.5, y as f32 - 13.5);
                    let blob = (-(dx * dx + dy * dy) / (60.0 + 100.0 * t)).exp();
                    let i = y * size + x;
                    chw[i] = blob * (1.0 - t) + 0.1;
                    chw[size * size + i] = blob * 0.8;
                    chw[2 * size * size + i] = blob * t + 0.1;
                }
            }
            chw
        })
        .collect();
    let rows: Vec<Vec<&[f32]>> = images
        .chunks(11)
        .map(|r| r.iter().map(Vec::as_slice).collect())
        .collect();
    let sheet = wick_viz::image_grid(&rows, size as u32, 3)?;
    wick_viz::save_png(&sheet, &out.join("grid.png"))?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Every ISO alpha-2 code the bundled shapes know, sorted.
fn world_codes() -> Vec<String> {
    let mut codes: Vec<String> = world_data::load().countries.into_keys().collect();
    codes.sort();
    codes
}

/// Country names from the bundled world data, sorted, as the COVID data would list them.
fn world_names() -> Vec<String> {
    let mut names: Vec<String> = world_data::load()
        .countries
        .into_values()
        .map(|c| c.common_name)
        .collect();
    names.sort();
    names
}
