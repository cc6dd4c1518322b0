//! Where a trial's data is. `--data DIR` names a folder laid out like the shared data
//! (`covid/covid_19.csv`, `anime-faces/`); `--covid-csv FILE` and `--faces DIR` override
//! each part; `WICK_DATA` gives the default folder. Missing data is an error that says what
//! to pass and where to get it.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// The COVID-19 file inside a data folder.
pub const COVID_CSV: &str = "covid/covid_19.csv";
/// The face images inside a data folder.
pub const FACES_DIR: &str = "anime-faces";

/// Public source of the JHU CSSE time series (one of the accepted layouts).
const JHU_URL: &str = "https://github.com/CSSEGISandData/COVID-19 (csse_covid_19_data/csse_covid_19_time_series/time_series_covid19_confirmed_global.csv)";

/// The path of one dataset part: the override if given, else `<data>/<default>`.
fn resolve(
    data: Option<&Path>,
    over: Option<&Path>,
    default: &str,
    flag: &str,
    what: &str,
) -> Result<PathBuf> {
    let path = match (over, data) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(d)) => d.join(default),
        (None, None) => bail!(
            "no {what} given: pass --data DIR (a folder holding {COVID_CSV} and {FACES_DIR}/), set WICK_DATA, or pass {flag}"
        ),
    };
    if !path.exists() {
        bail!(
            "{what} not found at {}: pass {flag} or a --data folder that holds {default}",
            path.display()
        );
    }
    Ok(path)
}

/// The COVID-19 CSV to read.
pub fn covid_csv(data: Option<&Path>, over: Option<&Path>) -> Result<PathBuf> {
    resolve(
        data,
        over,
        COVID_CSV,
        "--covid-csv FILE",
        "COVID-19 case file",
    )
    .map_err(|e| {
        e.context(format!(
            "any JHU CSSE cumulative-cases CSV works, e.g. the public {JHU_URL}"
        ))
    })
}

/// The folder of face images to read.
pub fn faces_dir(data: Option<&Path>, over: Option<&Path>) -> Result<PathBuf> {
    resolve(data, over, FACES_DIR, "--faces DIR", "image folder")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_data_says_what_to_pass() {
        let e = format!("{:#}", covid_csv(None, None).unwrap_err());
        assert!(e.contains("--data DIR") && e.contains("--covid-csv"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = format!("{:#}", faces_dir(Some(dir.path()), None).unwrap_err());
        assert!(e.contains("anime-faces") && e.contains("not found"), "{e}");
        std::fs::create_dir(dir.path().join(FACES_DIR)).unwrap();
        assert_eq!(
            faces_dir(Some(dir.path()), None).unwrap(),
            dir.path().join(FACES_DIR)
        );
    }
}
