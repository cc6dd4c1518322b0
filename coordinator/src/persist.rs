//! The coordinator's documents in the object store (layout in `wick_common::store::keys`):
//! sweep specs and records, trial configs, records, data references, per-epoch metrics and
//! summaries, the promotion of a worker's staged artifacts, and `load_all`, which reads
//! everything back after a restart. Every write is one atomic `put`, made before the RPC
//! that caused it answers.

use std::time::Instant;

use wick_common::store::{Store, keys};
use wick_common::trial::TrialConfig;

use crate::error::{Error, Result};
use crate::records::{SpecDoc, SweepRecord, TrialRecord};
use crate::state::{Change, State, SubmitPlan, Sweep};

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

/// Writes a trial's record.
pub async fn save_trial(store: &Store, record: &TrialRecord) -> Result<()> {
    Ok(store
        .put(&keys::trial_state(&record.trial_id), json(record))
        .await?)
}

/// Writes the records of planned changes.
pub async fn save_changes(store: &Store, changes: &[Change]) -> Result<()> {
    for c in changes {
        save_trial(store, &c.trial.record).await?;
    }
    Ok(())
}

/// Writes everything a submission creates: each new trial's config, data and record,
/// each requeued trial's record, then the sweep's spec and record (last, so a sweep on
/// disk always has its trials).
pub async fn save_submit(store: &Store, plan: &SubmitPlan) -> Result<()> {
    for c in &plan.changes {
        let r = &c.trial.record;
        if plan.new_trials.contains(&r.trial_id) {
            let config = serde_json::to_vec(&c.trial.config).expect("configs always serialise");
            store.put(&keys::trial_config(&r.trial_id), config).await?;
        }
        store.put(&data_key(&r.trial_id), json(&r.data)).await?;
        save_trial(store, r).await?;
    }
    let id = &plan.sweep.record.sweep_id;
    store
        .put(
            &keys::sweep_spec(id),
            json(&SpecDoc::from(&plan.sweep.spec)),
        )
        .await?;
    Ok(store
        .put(&keys::sweep_state(id), json(&plan.sweep.record))
        .await?)
}

/// `trials/<id>/data.json`.
fn data_key(trial: &str) -> String {
    format!("{}data.json", keys::trial_dir(trial))
}

/// Appends epochs' metrics (`rows`: epoch and metrics, ascending) to `metrics.jsonl` in
/// one write. Lines of the first row's epoch or later are dropped first: a resumed attempt
/// repeats the epochs after its checkpoint, and the file keeps one line per epoch.
/// `current` is the file's content when the caller remembers it (saving a read per
/// report); returns the new content.
pub async fn append_metrics(
    store: &Store,
    trial: &str,
    rows: &[(u32, serde_json::Value)],
    current: Option<Vec<u8>>,
) -> Result<Vec<u8>> {
    let key = keys::trial_metrics(trial);
    let old = match current {
        Some(c) => c,
        None => store.get(&key).await?.unwrap_or_default().to_vec(),
    };
    let first = rows.first().map_or(u32::MAX, |(e, _)| *e);
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
    for (epoch, metrics) in rows {
        let mut line = metrics.clone();
        if let Some(obj) = line.as_object_mut() {
            obj.insert("epoch".into(), (*epoch).into());
        } else {
            line = serde_json::json!({ "epoch": epoch, "metrics": line });
        }
        out.extend_from_slice(line.to_string().as_bytes());
        out.push(b'\n');
    }
    store.put(&key, out.clone()).await?;
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
pub async fn promote(store: &Store, trial: &str, staging_prefix: &str) -> Result<Vec<String>> {
    let prefix = format!("{}/", staging_prefix.trim_end_matches('/'));
    let staged = store.list(&prefix).await?;
    if !staged
        .iter()
        .any(|(k, _)| k.strip_prefix(&prefix) == Some("model.safetensors"))
    {
        return Err(Error::InvalidArgument(format!(
            "nothing named model.safetensors is staged under '{prefix}'; upload the final artifacts there before calling Complete"
        )));
    }
    // Copies inside the store (no bytes through the coordinator), all at once.
    let copies = staged.iter().map(|(key, _)| {
        let name = key.strip_prefix(&prefix).unwrap_or(key);
        let dest = match name {
            "model.safetensors" => keys::trial_model(trial),
            other => keys::trial_artifact(trial, other),
        };
        async move { store.copy(key, &dest).await.map(|()| dest) }
    });
    Ok(futures::future::try_join_all(copies).await?)
}

/// Deletes every staged file of a trial, once its record says it succeeded: the promoted
/// attempt's, and any an attempt left when its worker died while uploading.
pub async fn clear_staging(store: &Store, trial: &str) -> Result<()> {
    let prefix = format!("{}staging/", keys::trial_dir(trial));
    for (key, _) in store.list(&prefix).await? {
        store.delete(&key).await?;
    }
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
    async fn metrics_keep_one_line_per_epoch() {
        let store = Store::open("memory://").unwrap();
        // Read from the store, and from the remembered content: the same file.
        let mut current = None;
        // Single epochs, a resume that repeats epochs 2 and 3, and a batch of two.
        let reports: [&[u32]; 6] = [&[1], &[2], &[3], &[2], &[3], &[4, 5]];
        for (i, epochs) in reports.into_iter().enumerate() {
            let remembered = current.take().filter(|_| i % 2 == 1);
            let rows: Vec<_> = epochs
                .iter()
                .map(|&e| (e, serde_json::json!({ "loss": e })))
                .collect();
            current = Some(
                append_metrics(&store, "t-1", &rows, remembered)
                    .await
                    .unwrap(),
            );
        }
        let text = store
            .get(&keys::trial_metrics("t-1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(current.unwrap(), text.to_vec());
        let epochs: Vec<u64> = String::from_utf8_lossy(&text)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(epochs, [1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn promotion_moves_model_and_plots_and_clears_staging() {
        let store = Store::open("memory://").unwrap();
        let staging = "trials/t-1/staging/L1/";
        let e = promote(&store, "t-1", staging).await.unwrap_err();
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
        let mut written = promote(&store, "t-1", staging.trim_end_matches('/'))
            .await
            .unwrap();
        // Promoting again (a retried completion) finds the same files.
        assert_eq!(promote(&store, "t-1", staging).await.unwrap().len(), 2);
        // A dead attempt's leftovers go too.
        store
            .put("trials/t-1/staging/L0/plot.png", b"old".to_vec())
            .await
            .unwrap();
        clear_staging(&store, "t-1").await.unwrap();
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
        save_submit(&store, &plan).await.unwrap();
        st.apply_submit(plan);

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
