//! The coordinator's documents in the object store (layout in `wick_common::store::keys`):
//! sweep specs and records, trial configs, records, data references, per-epoch metrics and
//! summaries, and the promotion of a worker's staged artifacts. The log (`wal`) is what a
//! restart reads; these documents are written when a trial ends or a sweep is submitted,
//! for people and tools. `load_all` reads them back for a store written before the log
//! existed. Every write is one atomic `put`.

use std::time::Instant;

use wick_common::store::{Store, keys};
use wick_common::trial::TrialConfig;

use crate::error::{Error, Result};
use crate::records::{SpecDoc, SweepRecord, TrialRecord, TrialState};
use crate::state::{State, Sweep, Trial};

/// Pretty JSON of a document (they are small, and people read them).
fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(v).expect("records always serialise")
}

/// Parses a document, naming its key when it is corrupt.
fn parse<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::Unavailable(format!(
            "store document '{key}' is corrupt ({e}); fix or remove it"
        ))
    })
}

/// Writes an ended trial's documents: `config.json`, `data.json`, `state.json` and, when
/// the log holds lines of it (`rows`), `metrics.jsonl`; clears the staging area of a
/// succeeded trial (`staged`: its staged keys, when they are known to be all of them).
/// Every write is idempotent, so a settle cut short is simply redone.
pub async fn save_ended(
    store: &Store,
    trial: &Trial,
    rows: &[(u32, String)],
    staged: Option<&[String]>,
) -> Result<()> {
    let id = trial.id();
    let config = serde_json::to_vec(&trial.config).expect("configs always serialise");
    let metrics = async {
        if rows.is_empty() {
            return Ok(());
        }
        let file = metrics_file(store, id, rows).await?;
        Ok::<_, Error>(store.put(&keys::trial_metrics(id), file).await?)
    };
    let (config_key, data, state) = (keys::trial_config(id), data_key(id), keys::trial_state(id));
    let docs = async {
        futures::try_join!(
            store.put(&config_key, config),
            store.put(&data, json(&trial.record.data)),
            store.put(&state, json(&trial.record)),
        )
        .map_err(Error::from)
    };
    // The log holds the outcome, and the model was promoted before it was logged, so
    // the staging area can go while the documents are written.
    let staging = async {
        if trial.record.state == TrialState::Succeeded {
            clear_staging(store, id, staged).await?;
        }
        Ok::<_, Error>(())
    };
    futures::try_join!(docs, metrics, staging)?;
    Ok(())
}

/// Writes a sweep's `spec.json` and `state.json`.
pub async fn save_sweep(store: &Store, sweep: &Sweep) -> Result<()> {
    let id = &sweep.record.sweep_id;
    let (spec, state) = (keys::sweep_spec(id), keys::sweep_state(id));
    futures::try_join!(
        store.put(&spec, json(&SpecDoc::from(&sweep.spec))),
        store.put(&state, json(&sweep.record)),
    )?;
    Ok(())
}

/// `trials/<id>/data.json`.
fn data_key(trial: &str) -> String {
    format!("{}data.json", keys::trial_dir(trial))
}

/// A trial's whole `metrics.jsonl`: the stored file's lines before the first of `rows`
/// (an earlier run's epochs that a resumed one did not repeat), then `rows`. The stored
/// file is only read when `rows` do not start at epoch 1.
pub async fn metrics_file(store: &Store, trial: &str, rows: &[(u32, String)]) -> Result<Vec<u8>> {
    let first = rows.first().map_or(u32::MAX, |(e, _)| *e);
    let old = if first > 1 {
        store
            .get(&keys::trial_metrics(trial))
            .await?
            .unwrap_or_default()
            .to_vec()
    } else {
        Vec::new()
    };
    let mut out = Vec::with_capacity(old.len() + 256 * rows.len());
    for line in String::from_utf8_lossy(&old).lines() {
        let e = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("epoch").and_then(|e| e.as_u64()));
        if e.is_some_and(|e| e < u64::from(first)) {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
    }
    for (_, line) in rows {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}

/// Writes the final summary.
pub async fn save_summary(store: &Store, trial: &str, summary: &serde_json::Value) -> Result<()> {
    Ok(store
        .put(&keys::trial_summary(trial), json(summary))
        .await?)
}

/// Copies a worker's staged artifacts into place: `model.safetensors` to
/// `trials/<id>/model.safetensors`, every other file to `trials/<id>/plots/<name>`.
/// Returns the keys written. Refuses a staging prefix without a model, so a succeeded
/// trial can always serve inference. The staged files stay (see [`clear_staging`]), so a
/// completion that fails half-way (the store went down) can be retried as a whole.
pub async fn promote(
    store: &Store,
    trial: &str,
    staging_prefix: &str,
    staged: &[String],
) -> Result<Vec<String>> {
    let prefix = format!("{}/", staging_prefix.trim_end_matches('/'));
    let names: Vec<String> = if staged.is_empty() {
        store
            .list(&prefix)
            .await?
            .into_iter()
            .map(|(k, _)| k.strip_prefix(&prefix).unwrap_or(&k).to_string())
            .collect()
    } else {
        staged.to_vec()
    };
    if let Some(bad) = names
        .iter()
        .find(|n| n.is_empty() || n.contains('/') || n.starts_with('.'))
    {
        return Err(Error::InvalidArgument(format!(
            "staged file name '{bad}' is not a plain file name; stage files directly under '{prefix}'"
        )));
    }
    if !names.iter().any(|n| n == "model.safetensors") {
        return Err(Error::InvalidArgument(format!(
            "nothing named model.safetensors is staged under '{prefix}'; upload the final artifacts there before calling Complete"
        )));
    }
    // Copies inside the store (no bytes through the coordinator), all at once.
    let copies = names.iter().map(|name| {
        let dest = match name.as_str() {
            "model.safetensors" => keys::trial_model(trial),
            other => keys::trial_artifact(trial, other),
        };
        let key = format!("{prefix}{name}");
        async move { store.copy(&key, &dest).await.map(|()| dest) }
    });
    Ok(futures::future::try_join_all(copies).await?)
}

/// Deletes every staged file of a trial, once its record says it succeeded: the promoted
/// attempt's, and any an attempt left when its worker died while uploading. `known`, the
/// staged keys when they are all there is (one attempt ever, its names given), spares a
/// listing.
pub async fn clear_staging(store: &Store, trial: &str, known: Option<&[String]>) -> Result<()> {
    let keys: Vec<String> = match known {
        Some(k) => k.to_vec(),
        None => {
            let prefix = format!("{}staging/", keys::trial_dir(trial));
            store
                .list(&prefix)
                .await?
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        }
    };
    futures::future::try_join_all(keys.iter().map(|k| store.delete(k))).await?;
    Ok(())
}

/// Reads every sweep and its trials back into `state` (after a restart). A trial whose
/// record is missing (a crash between writes of a submission) comes back queued.
pub async fn load_all(store: &Store, state: &mut State, now: Instant) -> Result<()> {
    let mut sweeps = Vec::new();
    let mut trials = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (key, _) in store.list("sweeps/").await? {
        if !key.ends_with("/state.json") {
            continue;
        }
        let Some(bytes) = store.get(&key).await? else {
            continue;
        };
        let record: SweepRecord = parse(&key, &bytes)?;
        let spec_key = keys::sweep_spec(&record.sweep_id);
        let spec: SpecDoc = match store.get(&spec_key).await? {
            Some(b) => parse(&spec_key, &b)?,
            None => SpecDoc::default(),
        };
        for id in &record.trial_ids {
            if !seen.insert(id.clone()) {
                continue;
            }
            let config_key = keys::trial_config(id);
            let Some(config) = store.get(&config_key).await? else {
                tracing::warn!(trial = %id, sweep = %record.sweep_id, "trial has no config.json; skipped");
                continue;
            };
            let config: TrialConfig = parse(&config_key, &config)?;
            let state_key = keys::trial_state(id);
            let record = match store.get(&state_key).await? {
                Some(b) => parse(&state_key, &b)?,
                None => TrialRecord {
                    trial_id: id.clone(),
                    data: spec.data.clone(),
                    ..Default::default()
                },
            };
            trials.push((config, record));
        }
        sweeps.push(Sweep {
            record,
            spec: spec.into(),
        });
    }
    tracing::info!(
        sweeps = sweeps.len(),
        trials = trials.len(),
        "loaded state from the store"
    );
    // Early stopping compares trials by their per-epoch scores, which only the metrics
    // files hold: read them back for the sweeps that stop trials early.
    let judged: Vec<String> = sweeps
        .iter()
        .filter(|s| !matches!(s.spec.early_stop.trim(), "" | "none"))
        .flat_map(|s| s.record.trial_ids.clone())
        .collect();
    state.load(sweeps, trials, now);
    for id in judged {
        let key = keys::trial_metrics(&id);
        let Some(bytes) = store.get(&key).await? else {
            continue;
        };
        let epochs: Vec<serde_json::Value> = String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        state.restore_scores(&id, &epochs);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wick_proto::v1::{DataRef, SweepSpec};

    use super::*;
    use crate::grid;

    #[tokio::test]
    async fn metrics_file_keeps_earlier_epochs_a_resume_did_not_repeat() {
        let store = Store::open("memory://").unwrap();
        let rows = |epochs: &[u32]| -> Vec<(u32, String)> {
            epochs
                .iter()
                .map(|&e| {
                    (
                        e,
                        crate::records::metrics_line(e, &serde_json::json!({"loss": e})),
                    )
                })
                .collect()
        };
        let first = metrics_file(&store, "t-1", &rows(&[1, 2, 3, 4]))
            .await
            .unwrap();
        store.put(&keys::trial_metrics("t-1"), first).await.unwrap();
        // A resumed run from epoch 2's checkpoint repeats 3 and 4 and goes on to 5.
        let text = metrics_file(&store, "t-1", &rows(&[3, 4, 5]))
            .await
            .unwrap();
        let epochs: Vec<u64> = String::from_utf8_lossy(&text)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(epochs, [1, 2, 3, 4, 5]);
        // A run from scratch replaces the whole file without reading it.
        let fresh = metrics_file(&store, "t-1", &rows(&[1])).await.unwrap();
        assert_eq!(String::from_utf8_lossy(&fresh).lines().count(), 1);
    }

    #[tokio::test]
    async fn promotion_moves_model_and_plots_and_clears_staging() {
        let store = Store::open("memory://").unwrap();
        let staging = "trials/t-1/staging/L1/";
        let e = promote(&store, "t-1", staging, &[]).await.unwrap_err();
        assert!(e.to_string().contains("model.safetensors"), "{e}");
        store
            .put(
                "trials/t-1/staging/L1/model.safetensors",
                b"weights".to_vec(),
            )
            .await
            .unwrap();
        store
            .put("trials/t-1/staging/L1/samples.png", b"png".to_vec())
            .await
            .unwrap();
        let mut written = promote(&store, "t-1", staging.trim_end_matches('/'), &[])
            .await
            .unwrap();
        // Promoting again (a retried completion) finds the same files; named, they are
        // not looked for.
        assert_eq!(promote(&store, "t-1", staging, &[]).await.unwrap().len(), 2);
        let named = ["model.safetensors".to_string()];
        assert_eq!(
            promote(&store, "t-1", staging, &named).await.unwrap(),
            ["trials/t-1/model.safetensors"]
        );
        for bad in ["../x", "a/b", ""] {
            let names = ["model.safetensors".to_string(), bad.to_string()];
            let e = promote(&store, "t-1", staging, &names).await.unwrap_err();
            assert!(e.to_string().contains("plain file name"), "{e}");
        }
        let missing = ["model.safetensors".to_string(), "gone.png".to_string()];
        assert!(promote(&store, "t-1", staging, &missing).await.is_err());
        // Known keys are deleted without a listing, and only they.
        let one = ["trials/t-1/staging/L1/samples.png".to_string()];
        clear_staging(&store, "t-1", Some(&one)).await.unwrap();
        assert_eq!(store.list("trials/t-1/staging/").await.unwrap().len(), 1);
        // A dead attempt's leftovers go too.
        store
            .put("trials/t-1/staging/L0/plot.png", b"old".to_vec())
            .await
            .unwrap();
        clear_staging(&store, "t-1", None).await.unwrap();
        assert!(store.list("trials/t-1/staging/").await.unwrap().is_empty());
        written.sort();
        assert_eq!(
            written,
            [
                "trials/t-1/model.safetensors",
                "trials/t-1/plots/samples.png"
            ]
        );
        assert_eq!(
            store
                .get("trials/t-1/model.safetensors")
                .await
                .unwrap()
                .unwrap()
                .as_ref(),
            b"weights"
        );
        assert!(store.list(staging).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_submission_loads_back() {
        let store = Store::open("memory://").unwrap();
        let spec = SweepSpec {
            l: vec![12],
            kl: vec![1.0],
            data: Some(DataRef {
                covid_csv: "c".into(),
                faces: "f".into(),
            }),
            name: "first".into(),
            ..Default::default()
        };
        let configs = grid::expand(&spec).unwrap();
        let sid = grid::sweep_id(&configs, &spec);
        let mut st = State::new(Duration::from_secs(1), 3);
        let plan = st.submit(&spec, configs, &sid, 7);
        st.apply_submit(plan);
        // The documents of a store written before the log existed.
        save_sweep(&store, st.sweep(&sid).unwrap()).await.unwrap();
        for id in st.sweep(&sid).unwrap().record.trial_ids.clone() {
            save_ended(&store, st.trial(&id).unwrap(), &[], None)
                .await
                .unwrap();
        }

        let mut back = State::new(Duration::from_secs(1), 3);
        load_all(&store, &mut back, Instant::now()).await.unwrap();
        let s = back.sweep(&sid).unwrap();
        assert_eq!(
            (
                s.record.created_ms,
                s.record.name.as_str(),
                s.spec.l.clone()
            ),
            (7, "first", vec![12])
        );
        let ids = s.record.trial_ids.clone();
        assert_eq!(ids.len(), 2);
        for id in &ids {
            let (a, b) = (back.trial(id).unwrap(), st.trial(id).unwrap());
            assert_eq!(
                (&a.config, &a.record, &a.sweeps),
                (&b.config, &b.record, &b.sweeps)
            );
            let d = store
                .get(&format!("trials/{id}/data.json"))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                serde_json::from_slice::<serde_json::Value>(&d).unwrap()["faces"],
                "f"
            );
        }
    }
}
