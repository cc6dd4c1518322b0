//! Every public drawing function, through the public API only: each writes a file into a
//! temporary folder, the file decodes at the expected size, and something specific to the
//! picture is on it (a colour where a feature draws it), so a feature that breaks fails here.

use std::path::{Path, PathBuf};

use image::RgbImage;
use tempfile::TempDir;
use wick_viz::{Curves, SeriesSpec, VizError};

/// Colours the pictures are known to use: tab10 blue (first series), the dashed baseline's
/// grey, the viridis top, the diverging ends.
const SERIES_0: [u8; 3] = [31, 119, 180];
const SERIES_2: [u8; 3] = [44, 160, 44];
const SERIES_3: [u8; 3] = [214, 39, 40];
const BASELINE: [u8; 3] = [100, 100, 100];
const VIRIDIS_TOP: [u8; 3] = [253, 231, 37];
const RED_END: [u8; 3] = [178, 24, 43];
const BLUE_END: [u8; 3] = [33, 102, 172];

fn tmp() -> TempDir {
    tempfile::tempdir().expect("temporary folder")
}

fn open(path: &Path) -> RgbImage {
    image::open(path).expect("PNG decodes").to_rgb8()
}

/// Pixels of exactly `colour` whose x lies in `xs`.
fn count(img: &RgbImage, colour: [u8; 3], xs: std::ops::Range<u32>) -> usize {
    img.enumerate_pixels()
        .filter(|(x, _, p)| xs.contains(x) && p.0 == colour)
        .count()
}

fn labels(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("Country number {i}")).collect()
}

#[test]
fn heatmap_of_185_countries_is_large_and_diverging() {
    let dir = tmp();
    let path = dir.path().join("heatmap.png");
    let n = 185;
    // +1 on the diagonal, -1 on the anti-diagonal, NaN in one row.
    let matrix: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| match () {
                    _ if i == j => 1.0,
                    _ if i + j == n - 1 => -1.0,
                    _ if i == 3 => f64::NAN,
                    _ => 0.0,
                })
                .collect()
        })
        .collect();
    wick_viz::heatmap(&path, &labels(n), &matrix, "correlation").unwrap();
    let img = open(&path);
    let (w, h) = img.dimensions();
    assert!(
        w > 2100 && h > 2100,
        "{w}x{h} is too small for 185 readable rows"
    );
    // About 11 x 11 px per cell: 184 red and 184 blue cells (they share the centre one).
    let red = count(&img, RED_END, 0..w);
    let blue = count(&img, BLUE_END, 0..w);
    assert!(red > 184 * 100, "only {red} red pixels");
    assert!(blue > 184 * 100, "only {blue} blue pixels");
}

#[test]
fn heatmap_rejects_bad_shapes_naming_the_file() {
    let dir = tmp();
    let path = dir.path().join("bad.png");
    let square = vec![vec![1.0, 0.5], vec![0.5, 1.0]];
    let err = wick_viz::heatmap(&path, &labels(3), &square, "t").unwrap_err();
    assert!(matches!(err, VizError::BadInput { .. }));
    assert!(err.to_string().contains("bad.png"), "{err}");
    let ragged = vec![vec![1.0, 0.5], vec![0.5]];
    assert!(wick_viz::heatmap(&path, &labels(2), &ragged, "t").is_err());
    assert!(wick_viz::heatmap(&path, &[], &[], "t").is_err());
    assert!(!path.exists());
}

fn curves_png(
    dir: &TempDir,
    name: &str,
    epochs: usize,
    baseline: Option<f64>,
) -> (PathBuf, RgbImage) {
    let loss: Vec<f64> = (0..epochs).map(|e| 0.7 / (1.0 + e as f64)).collect();
    let acc: Vec<f64> = (0..epochs)
        .map(|e| 0.5 + 0.4 * (e as f64 / epochs as f64))
        .collect();
    let test_acc: Vec<f64> = acc.iter().map(|a| a - 0.05).collect();
    let test_loss: Vec<f64> = loss.iter().map(|l| l + 0.05).collect();
    let curves = Curves {
        train_loss: &loss,
        test_loss: &test_loss,
        train_acc: &acc,
        test_acc: &test_acc,
        val_loss: &[],
        val_acc: &[],
        baseline_acc: baseline,
    };
    let path = dir.path().join(name);
    wick_viz::learning_curves(&path, &curves, "LSTM").unwrap();
    let img = open(&path);
    (path, img)
}

#[test]
fn learning_curves_draw_both_panels_for_500_epochs() {
    let dir = tmp();
    let (_, img) = curves_png(&dir, "c.png", 500, Some(0.55));
    assert_eq!(img.dimensions(), (1400, 560));
    // Train lines are the first series colour, in both panels (legend swatches are ~100 px).
    assert!(count(&img, SERIES_0, 0..700) > 400, "no train loss line");
    assert!(
        count(&img, SERIES_0, 700..1400) > 400,
        "no train accuracy line"
    );
    let with = count(&img, BASELINE, 700..1400);
    let (_, plain) = curves_png(&dir, "p.png", 500, None);
    let without = count(&plain, BASELINE, 700..1400);
    assert!(
        with > without + 300,
        "no dashed baseline: {with} vs {without}"
    );
}

#[test]
fn learning_curves_show_a_single_epoch() {
    let dir = tmp();
    let (_, img) = curves_png(&dir, "one.png", 1, Some(0.5));
    assert_eq!(img.dimensions(), (1400, 560));
    // A lone point still gets a marker in each panel, beyond its legend swatch.
    let swatch_only = 3 * 28;
    assert!(count(&img, SERIES_0, 0..700) > swatch_only + 10);
    assert!(count(&img, SERIES_0, 700..1400) > swatch_only + 10);
}

#[test]
fn learning_curves_need_some_epoch() {
    let dir = tmp();
    let empty = Curves {
        train_loss: &[],
        test_loss: &[],
        train_acc: &[],
        test_acc: &[],
        val_loss: &[],
        val_acc: &[],
        baseline_acc: None,
    };
    let err = wick_viz::learning_curves(&dir.path().join("e.png"), &empty, "t").unwrap_err();
    assert!(err.to_string().contains("e.png"), "{err}");
}

#[test]
fn line_chart_and_vae_curves_draw_every_series() {
    let dir = tmp();
    let elbo: Vec<f64> = (0..50).map(|e| 200.0 + 100.0 / (1.0 + e as f64)).collect();
    let recon: Vec<f64> = elbo.iter().map(|v| v - 20.0).collect();
    let kl: Vec<f64> = (0..50).map(|e| 0.01 * e as f64).collect();
    let path = dir.path().join("line.png");
    let series = [
        SeriesSpec {
            name: "-ELBO",
            values: &elbo,
        },
        SeriesSpec {
            name: "reconstruction",
            values: &recon,
        },
    ];
    wick_viz::line_chart(&path, &series, "VAE", "epoch", "nats").unwrap();
    let img = open(&path);
    assert_eq!(img.dimensions(), (1000, 600));
    assert!(count(&img, SERIES_0, 0..1000) > 500);
    assert!(wick_viz::line_chart(&path, &[], "VAE", "epoch", "nats").is_err());

    let path = dir.path().join("vae.png");
    let curves = wick_viz::VaeCurves {
        neg_elbo: &elbo,
        val_neg_elbo: &[],
        recon: &recon,
        kl: &kl,
    };
    wick_viz::vae_curves(&path, &curves, "VAE").unwrap();
    let img = open(&path);
    assert_eq!(img.dimensions(), (1000, 600));
    // KL is tiny next to the rest, but on its own axis it still spans the plot: its
    // colour covers much more than its legend swatch.
    assert!(
        count(&img, SERIES_3, 0..1000) > 800,
        "KL line squashed or missing"
    );
    // Without a validation curve there is no trace of its colour, not even a swatch.
    assert_eq!(count(&img, SERIES_2, 0..1000), 0);

    // With one, its line is drawn beside the training curve.
    let val: Vec<f64> = elbo.iter().map(|v| v + 15.0).collect();
    let with_val = dir.path().join("vae-val.png");
    let curves = wick_viz::VaeCurves {
        val_neg_elbo: &val,
        ..curves
    };
    wick_viz::vae_curves(&with_val, &curves, "VAE").unwrap();
    let img = open(&with_val);
    assert!(
        count(&img, SERIES_2, 0..1000) > 500,
        "validation line missing"
    );
    assert!(
        count(&img, SERIES_0, 0..1000) > 500,
        "training line missing"
    );
    let empty = wick_viz::VaeCurves {
        neg_elbo: &[],
        val_neg_elbo: &[],
        recon: &[],
        kl: &[],
    };
    assert!(wick_viz::vae_curves(&with_val, &empty, "VAE").is_err());
}

#[test]
fn confusion_matrix_is_written() {
    let dir = tmp();
    let path = dir.path().join("cm.png");
    wick_viz::confusion_matrix(&path, [[50, 10], [5, 35]], ["down", "up"], "GRU").unwrap();
    let img = open(&path);
    let (w, h) = img.dimensions();
    assert!(
        (600..900).contains(&w) && (550..700).contains(&h),
        "{w}x{h}"
    );
    // The largest count's cell is the darkest blue.
    assert!(count(&img, [8, 48, 107], 0..w) > 150 * 150);
}

fn values(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
    pairs.iter().map(|(c, v)| (c.to_string(), *v)).collect()
}

#[test]
fn world_map_png_fills_countries_with_values() {
    let dir = tmp();
    let path = dir.path().join("map.png");
    let vals = values(&[("AU", 1.0), ("BR", 0.2), ("QQ", 1.0)]);
    wick_viz::world_map_png(&path, &vals, "forecast", "P(increase)").unwrap();
    let img = open(&path);
    assert_eq!(img.dimensions(), (1600, 810));
    // Australia is ~150 x 130 px at this scale; the legend bar's top end is a few dozen.
    let top = count(&img, VIRIDIS_TOP, 0..1600);
    assert!(top > 10_000, "Australia not in the top colour ({top} px)");
    let empty = dir.path().join("empty.png");
    wick_viz::world_map_png(&empty, &[], "forecast", "P(increase)").unwrap();
    let none = count(&open(&empty), VIRIDIS_TOP, 0..1600);
    assert!(none < 200, "top colour without any value: {none} px");
}

#[test]
fn world_map_svg_has_a_shape_per_country() {
    let dir = tmp();
    let path = dir.path().join("map.svg");
    let vals = values(&[("AU", 1.0), ("US", 0.0), ("FR", 0.5)]);
    wick_viz::world_map_svg(&path, &vals, "forecast", "P(increase)").unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("width=\"1600\""));
    // Some 230 countries, most with many islands.
    let shapes = svg.matches("<polygon").count();
    assert!(shapes > 1000, "only {shapes} polygons");
    assert!(
        svg.contains("fill=\"#FDE725\""),
        "no country in the top colour"
    );
    assert!(svg.contains("P(increase)") && svg.contains("forecast"));
}

/// A `size` x `size` image of one colour, channel-major.
fn solid(rgb: [f32; 3], size: usize) -> Vec<f32> {
    rgb.iter()
        .flat_map(|&c| std::iter::repeat_n(c, size * size))
        .collect()
}

#[test]
fn image_grid_scales_and_frames_cells() {
    let red = solid([1.0, 0.0, 0.0], 2);
    let grid = wick_viz::image_grid(&[vec![&red[..]]], 2, 3).unwrap();
    // 2 px gap + 6 px cell + 2 px gap.
    assert_eq!(grid.dimensions(), (10, 10));
    for (x, y) in [(2, 2), (7, 7), (4, 5)] {
        assert_eq!(grid.get_pixel(x, y).0, [255, 0, 0], "cell pixel {x},{y}");
    }
    for (x, y) in [(0, 0), (1, 5), (8, 8), (9, 3)] {
        assert_eq!(grid.get_pixel(x, y).0, [128, 128, 128], "gap pixel {x},{y}");
    }
}

#[test]
fn image_grid_pads_short_rows_and_saves() {
    let red = solid([1.0, 0.0, 0.0], 2);
    let blue = solid([0.0, 0.0, 1.0], 2);
    let rows = vec![vec![&red[..], &blue[..]], vec![&blue[..]]];
    let grid = wick_viz::image_grid(&rows, 2, 3).unwrap();
    assert_eq!(grid.dimensions(), (18, 18));
    assert_eq!(grid.get_pixel(12, 4).0, [0, 0, 255], "row 0, column 1");
    assert_eq!(grid.get_pixel(4, 12).0, [0, 0, 255], "row 1, column 0");
    assert_eq!(grid.get_pixel(12, 12).0, [128, 128, 128], "padding");

    let dir = tmp();
    let path = dir.path().join("grid.png");
    wick_viz::save_png(&grid, &path).unwrap();
    assert_eq!(open(&path), grid);
}

#[test]
fn wrong_lengths_are_errors() {
    let short = vec![0.5f32; 11];
    let err = wick_viz::chw_to_rgb(&short, 2).unwrap_err();
    assert!(err.to_string().contains("expected 12"), "{err}");
    let ok = solid([0.5, 0.5, 0.5], 2);
    let err = wick_viz::image_grid(&[vec![&ok[..], &short[..]]], 2, 1).unwrap_err();
    assert!(err.to_string().contains("row 0, image 1"), "{err}");
    assert!(wick_viz::image_grid(&[], 2, 1).is_err());
    assert!(wick_viz::image_grid(&[vec![&ok[..]]], 2, 0).is_err());
}

#[test]
fn chw_to_rgb_clamps_and_rounds() {
    let img = wick_viz::chw_to_rgb(&[1.5, -1.0, 0.5], 1).unwrap();
    assert_eq!(img.get_pixel(0, 0).0, [255, 0, 128]);
}

#[test]
fn save_png_names_the_file_it_could_not_write() {
    let img = RgbImage::new(1, 1);
    let path = Path::new("/nonexistent-folder/x.png");
    let err = wick_viz::save_png(&img, path).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent-folder/x.png"),
        "{err}"
    );
}
