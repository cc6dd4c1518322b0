//! Trials loaded for inference, kept in a small in-memory LRU: a covid trial as its
//! forecasts for every country (computed once from the trial's final model and its data,
//! fetched through the data cache), a VAE trial as its model. Loading reads
//! `trials/<id>/model.safetensors` (and, for covid, `trials/<id>/data.json`) from the store
//! and runs candle on a blocking thread.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use candle_core::Device;
use tonic::Status;
use wick_common::covid::CaseTable;
use wick_common::store::{Store, keys};
use wick_common::trial::{TrialConfig, VaeConfig};

use crate::covid::artifacts::{Forecast, forecast};
use crate::serve::data_cache::{DataCache, DataError};
use crate::vae::model::Vae;
use crate::{covid, train, vae};

/// Trials kept loaded; the least recently used is dropped beyond this.
pub const CACHED_TRIALS: usize = 8;

/// A trial ready to answer.
pub enum Loaded {
    /// A covid trial.
    Covid {
        /// P(increase) of every country with enough days.
        forecasts: Vec<Forecast>,
        /// The trial's case table, to resolve country names and codes.
        table: CaseTable,
        /// Last day of the data.
        last_date: String,
    },
    /// A VAE trial.
    Vae(Arc<LoadedVae>),
}

/// A loaded VAE trial.
pub struct LoadedVae {
    /// Its configuration (image size).
    pub config: VaeConfig,
    /// The model.
    pub model: Vae,
}

/// Loaded trials, most recently used first.
#[derive(Default)]
struct Lru {
    /// (trial id, loaded trial), at most [`CACHED_TRIALS`].
    items: VecDeque<(String, Arc<Loaded>)>,
}

impl Lru {
    fn get(&mut self, id: &str) -> Option<Arc<Loaded>> {
        let i = self.items.iter().position(|(k, _)| k == id)?;
        let item = self.items.remove(i)?;
        let loaded = item.1.clone();
        self.items.push_front(item);
        Some(loaded)
    }

    fn insert(&mut self, id: &str, loaded: Arc<Loaded>) {
        self.items.retain(|(k, _)| k != id);
        self.items.push_front((id.to_string(), loaded));
        self.items.truncate(CACHED_TRIALS);
    }
}

/// Loaded trials and what loading needs.
pub struct Models {
    /// Where trials' models and data references are.
    store: Store,
    /// Local copies of the datasets (shared with training).
    cache: Arc<DataCache>,
    /// Device the models run on.
    device: Device,
    /// Loaded trials.
    loaded: Mutex<Lru>,
}

/// A data-cache failure as the status an inference caller sees.
fn data_status(e: DataError) -> Status {
    match e {
        DataError::Invalid(m) => Status::failed_precondition(m),
        DataError::Unavailable(m) => Status::unavailable(m),
    }
}

/// Runs `f` on a blocking thread, turning its panic into an internal error.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("inference crashed: {e}")))?
}

impl Models {
    /// Trials read from `store`, their data through `cache`, run on `device`.
    pub fn new(store: Store, cache: Arc<DataCache>, device: Device) -> Self {
        Models {
            store,
            cache,
            device,
            loaded: Mutex::default(),
        }
    }

    fn cached(&self, id: &str) -> Option<Arc<Loaded>> {
        self.loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
    }

    /// The trial `id`, from memory or loaded from the store.
    pub async fn load(&self, id: &str) -> Result<Arc<Loaded>, Status> {
        if let Some(l) = self.cached(id) {
            return Ok(l);
        }
        let key = keys::trial_model(id);
        let bytes = self.store.get(&key).await.map_err(|e| Status::unavailable(e.to_string()))?.ok_or_else(|| {
            Status::not_found(format!(
                "trial {id} has no final model in the store ({key}); wait for it to succeed or pick another trial (`client best`)"
            ))
        })?;
        let config = model_config(&bytes, &key)?;
        let device = self.device.clone();
        let loaded = match config {
            TrialConfig::Covid(c) => {
                let csv = self.covid_data(id).await?;
                blocking(move || {
                    let load = || -> anyhow::Result<Loaded> {
                        let m = covid::train::load_model(&bytes, &key, &device)?;
                        let (table, data) = train::load_covid(&csv, &c)?;
                        let forecasts =
                            forecast(&m.model, &m.params, m.temperature, &table, &data, &device)?;
                        let last_date = data
                            .new_dates
                            .last()
                            .map(|d| d.to_string())
                            .unwrap_or_default();
                        Ok(Loaded::Covid {
                            forecasts,
                            table,
                            last_date,
                        })
                    };
                    load().map_err(|e| {
                        Status::internal(format!("cannot load covid trial {key}: {e:#}"))
                    })
                })
                .await?
            }
            TrialConfig::Vae(_) => {
                blocking(
                    move || match vae::train::load_model(&bytes, &key, &device) {
                        Ok((config, model, _)) => {
                            Ok(Loaded::Vae(Arc::new(LoadedVae { config, model })))
                        }
                        Err(e) => Err(Status::internal(format!(
                            "cannot load VAE trial {key}: {e:#}"
                        ))),
                    },
                )
                .await?
            }
        };
        let loaded = Arc::new(loaded);
        self.loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, loaded.clone());
        tracing::info!(trial = %id, "trial loaded for inference");
        Ok(loaded)
    }

    /// The local path of a covid trial's CSV, from its `data.json`.
    async fn covid_data(&self, id: &str) -> Result<std::path::PathBuf, Status> {
        let key = format!("trials/{id}/data.json");
        let doc = self
            .store
            .get(&key)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?
            .ok_or_else(|| {
                Status::failed_precondition(format!(
                    "trial {id} has no data reference ({key}); submit its sweep again"
                ))
            })?;
        let doc: serde_json::Value = serde_json::from_slice(&doc)
            .map_err(|e| Status::failed_precondition(format!("{key} is not JSON: {e}")))?;
        let csv = doc
            .get("covid_csv")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        self.cache.covid_csv(csv).await.map_err(data_status)
    }
}

/// The trial configuration in a model file's metadata, without decoding its tensors.
fn model_config(bytes: &[u8], key: &str) -> Result<TrialConfig, Status> {
    // The request is fine; the stored file is not, so the way out is another trial.
    let bad = |why: String| {
        Status::failed_precondition(format!(
            "{key} is not a readable wick model ({why}): the stored file is damaged; pick another trial (`client best`) or train this one again"
        ))
    };
    let (_, header) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
    let config = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get("config"))
        .ok_or_else(|| bad("no configuration in its metadata".into()))?;
    serde_json::from_str(config).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covid(date: &str) -> Arc<Loaded> {
        let table =
            CaseTable::parse("Date,Country,Confirmed\n2020-01-01,France,1\n2020-01-02,France,2\n")
                .unwrap();
        Arc::new(Loaded::Covid {
            forecasts: Vec::new(),
            table,
            last_date: date.into(),
        })
    }

    #[test]
    fn the_least_recently_used_trial_is_dropped() {
        let mut lru = Lru::default();
        for i in 0..CACHED_TRIALS {
            lru.insert(&format!("t-{i}"), covid(&i.to_string()));
        }
        assert!(lru.get("t-0").is_some(), "t-0 becomes the most recent");
        lru.insert("t-new", covid("new"));
        assert!(lru.get("t-1").is_none(), "t-1 was the least recently used");
        assert!(lru.get("t-0").is_some() && lru.get("t-new").is_some());
        assert_eq!(lru.items.len(), CACHED_TRIALS);
    }
}
