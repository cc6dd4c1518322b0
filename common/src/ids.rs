//! Ids derived from content: a trial's id from its configuration (task, hyperparameters,
//! seed, epochs), a sweep's from its spec, a dataset's from its bytes. Submitting the same
//! thing twice names the same object, which is what lets a resubmitted sweep reuse
//! finished trials and an uploaded dataset be stored once.

use sha2::{Digest, Sha256};

use crate::trial::TrialConfig;

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `t-` + 16 hex digits of the SHA-256 of the configuration's canonical JSON and the
/// reference of the data it trains on (`data`: the content-addressed store key or URL the
/// task reads). The data is part of the id so that the same grid run on another dataset is
/// a new trial, not a reuse of results computed on the first one.
pub fn trial_id(config: &TrialConfig, data: &str) -> String {
    let json = serde_json::to_string(config).expect("a config always serialises");
    let input = format!("{json}\n{data}");
    format!("t-{}", &sha256_hex(input.as_bytes())[..16])
}

/// `s-` + 12 hex digits of the SHA-256 of a sweep's canonical description (the sorted
/// list of its trial ids and data references is a good input).
pub fn sweep_id(canonical: &str) -> String {
    format!("s-{}", &sha256_hex(canonical.as_bytes())[..12])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trial::VaeConfig;

    #[test]
    fn ids_are_stable_and_content_derived() {
        let mut c = VaeConfig {
            kl_weight: 1.0,
            size: 28,
            epochs: 30,
            lr: 1e-3,
            batch: 128,
            seed: 0,
            hidden: 400,
            latent: 50,
            limit: 0,
            val: 0.0,
        };
        let a = trial_id(&TrialConfig::Vae(c.clone()), "data/sha256-aa/faces.tar");
        assert_eq!(
            a,
            trial_id(&TrialConfig::Vae(c.clone()), "data/sha256-aa/faces.tar")
        );
        assert!(a.starts_with("t-") && a.len() == 18);
        assert_ne!(
            a,
            trial_id(&TrialConfig::Vae(c.clone()), "data/sha256-bb/faces.tar")
        );
        c.seed = 1;
        assert_ne!(
            a,
            trial_id(&TrialConfig::Vae(c), "data/sha256-aa/faces.tar")
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sweep_id("x"), sweep_id("x"));
    }
}
