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
    wick_viz::heatmap(&out.join("heatmap.png"), &names, &matrix, "Correlation of daily new cases")?;
    println!("wrote {}", out.display());
    Ok(())
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
