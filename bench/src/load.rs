//! The load generator: groups of concurrent clients, each on its own HTTP/2 connection to
//! the coordinator, call `Predict`, `Sample` or `WatchSweep` back to back until the run's
//! time is up or its request budget is spent, whichever comes first; every call is also
//! cut off after a timeout, so a run always ends. Each answer is checked (a probability in
//! [0, 1] for the country asked, the number of PNG images asked, a watch that ends with at
//! least one event) and a wrong one counts as an `Invalid` failure, so "zero errors"
//! means every answer was right, not only that every call returned.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tonic::Status;
use tonic::transport::Endpoint;
use wick_proto::v1::sweeps_client::SweepsClient;
use wick_proto::v1::{PredictParams, SampleParams, WatchSweepParams};
use wick_service::auth::{AuthChannel, Token, with_token};
use wick_service::tls::Tls;

use crate::report::{GroupReport, Report, Tally};

/// Largest answer taken: 256 sampled 64 x 64 images with their grid fit.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// How long connecting may take before the run gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The eight bytes every PNG file starts with.
const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// One kind of request and its parameters.
#[derive(Debug, Clone)]
pub enum Call {
    /// P(increase) of one country (name or ISO code) from a covid trial ("" = the best).
    Predict {
        /// Trial id or unique prefix; empty lets the coordinator pick the best.
        trial: String,
        /// Country name or ISO 3166 alpha-2 code.
        country: String,
    },
    /// `n` images from a VAE trial's prior ("" = the best VAE trial).
    Sample {
        /// Trial id or unique prefix; empty lets the coordinator pick the best.
        trial: String,
        /// Images per call.
        n: u32,
        /// Seed of the latent draws.
        seed: u64,
    },
    /// A watch of a sweep, read to its end (a finished sweep's watch sends one snapshot
    /// event per trial, then ends).
    Watch {
        /// Sweep id.
        sweep: String,
    },
}

impl Call {
    /// The method's name in reports.
    pub fn method(&self) -> &'static str {
        match self {
            Call::Predict { .. } => "predict",
            Call::Sample { .. } => "sample",
            Call::Watch { .. } => "watch",
        }
    }
}

/// `clients` concurrent clients making the same call.
#[derive(Debug, Clone)]
pub struct Group {
    /// The call each client repeats.
    pub call: Call,
    /// How many clients make it at once.
    pub clients: usize,
}

/// What to run against which coordinator.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `http://HOST:PORT` (`https://` with TLS); a bare `HOST:PORT` gets the scheme
    /// `tls` implies.
    pub coordinator: String,
    /// Bearer token every call carries, when the cluster requires one.
    pub token: Option<Token>,
    /// How the coordinator is dialled (its CA for https, or plain).
    pub tls: Tls,
    /// The groups of clients, all running at once.
    pub groups: Vec<Group>,
    /// How long clients keep starting requests.
    pub duration: Duration,
    /// Most requests started by all clients together.
    pub max_requests: u64,
    /// Longest one call may take before it counts as `DeadlineExceeded`.
    pub call_timeout: Duration,
    /// Make one untimed call per group first (loads the models on the worker), and stop
    /// with its error if it fails.
    pub warmup: bool,
}

impl Plan {
    /// A plan against `coordinator` with no groups yet: 10 s, at most a million requests,
    /// 30 s per call, with a warm-up, no token, no TLS.
    pub fn new(coordinator: &str) -> Plan {
        Plan {
            coordinator: coordinator.to_string(),
            token: None,
            tls: Tls::default(),
            groups: Vec::new(),
            duration: Duration::from_secs(10),
            max_requests: 1_000_000,
            call_timeout: Duration::from_secs(30),
            warmup: true,
        }
    }

    /// Adds `clients` clients repeating `call`.
    pub fn with(mut self, call: Call, clients: usize) -> Plan {
        self.groups.push(Group { call, clients });
        self
    }

    /// The coordinator's URL with its scheme.
    fn url(&self) -> String {
        match self.coordinator.contains("://") {
            true => self.coordinator.trim_end_matches('/').to_string(),
            false => format!("{}://{}", self.tls.scheme(), self.coordinator),
        }
    }

    /// A client on a connection of its own.
    async fn connect(&self) -> Result<SweepsClient<AuthChannel>> {
        let url = self.url();
        let endpoint = Endpoint::from_shared(url.clone())
            .with_context(|| format!("'{url}' is not a coordinator URL; use http://HOST:PORT"))?;
        let channel = self
            .tls
            .endpoint(endpoint)?
            .connect_timeout(CONNECT_TIMEOUT)
            .connect()
            .await
            .with_context(|| format!("cannot reach the coordinator at {url}"))?;
        Ok(SweepsClient::new(with_token(channel, self.token.as_ref()))
            .max_decoding_message_size(MAX_MESSAGE))
    }
}

/// A failure as (code name, message).
type Failure = (String, String);

fn status(s: Status) -> Failure {
    (format!("{:?}", s.code()), s.message().to_string())
}

fn invalid(why: String) -> Failure {
    ("Invalid".into(), why)
}

/// Makes `call` once and checks the answer; returns its one-line summary.
async fn once(c: &mut SweepsClient<AuthChannel>, call: &Call) -> Result<String, Failure> {
    match call {
        Call::Predict { trial, country } => {
            let r = c
                .predict(PredictParams {
                    trial_id: trial.clone(),
                    country: country.clone(),
                    all: false,
                })
                .await
                .map_err(status)?
                .into_inner();
            let [f] = r.forecasts.as_slice() else {
                return Err(invalid(format!(
                    "{} forecasts for one country",
                    r.forecasts.len()
                )));
            };
            let asked = country.trim();
            if !(f.iso2.eq_ignore_ascii_case(asked) || f.country.eq_ignore_ascii_case(asked)) {
                return Err(invalid(format!(
                    "asked for {asked}, got {} ({})",
                    f.country, f.iso2
                )));
            }
            if !(0.0..=1.0).contains(&f.probability) || f.increase != (f.probability > 0.5) {
                return Err(invalid(format!(
                    "{}: probability {} with increase {}",
                    f.country, f.probability, f.increase
                )));
            }
            if !r.trial_id.starts_with(trial.as_str()) {
                return Err(invalid(format!(
                    "asked trial {trial}, answered {}",
                    r.trial_id
                )));
            }
            Ok(format!("{} ({}) p={}", f.country, f.iso2, f.probability))
        }
        Call::Sample { trial, n, seed } => {
            let r = c
                .sample(SampleParams {
                    trial_id: trial.clone(),
                    n: *n,
                    seed: *seed,
                })
                .await
                .map_err(status)?
                .into_inner();
            let pngs = r.images_png.iter().all(|p| p.starts_with(PNG_MAGIC));
            if r.images_png.len() != *n as usize || !pngs || !r.grid_png.starts_with(PNG_MAGIC) {
                return Err(invalid(format!(
                    "asked {n} images, got {} (all PNG: {pngs}) and a grid of {} bytes",
                    r.images_png.len(),
                    r.grid_png.len()
                )));
            }
            Ok(format!(
                "{n} PNG images, grid of {} bytes",
                r.grid_png.len()
            ))
        }
        Call::Watch { sweep } => {
            let mut stream = c
                .watch_sweep(WatchSweepParams {
                    sweep_id: sweep.clone(),
                })
                .await
                .map_err(status)?
                .into_inner();
            let mut events = 0;
            while let Some(e) = stream.message().await.map_err(status)? {
                if e.trial.is_none() || e.kind.is_empty() {
                    return Err(invalid(format!("event {events} has no trial or kind")));
                }
                events += 1;
            }
            if events == 0 {
                return Err(invalid("the watch ended with no event".into()));
            }
            Ok(format!("{events} events"))
        }
    }
}

/// One client's loop: calls until the deadline or the shared budget runs out.
async fn client(
    mut c: SweepsClient<AuthChannel>,
    call: Call,
    deadline: Instant,
    started: Arc<AtomicU64>,
    plan: Arc<Plan>,
) -> Tally {
    let mut tally = Tally::default();
    while Instant::now() < deadline && started.fetch_add(1, Ordering::Relaxed) < plan.max_requests {
        let start = Instant::now();
        let outcome = match tokio::time::timeout(plan.call_timeout, once(&mut c, &call)).await {
            Ok(o) => o,
            Err(_) => Err((
                "DeadlineExceeded".into(),
                format!("no answer within {:?}", plan.call_timeout),
            )),
        };
        tally.record(start.elapsed(), outcome);
    }
    tally
}

/// Runs `plan` and reports what happened. Fails only when the plan is empty, the
/// coordinator cannot be reached, or a warm-up call fails; failures during the timed run
/// are counted in the report instead.
pub async fn run(plan: Plan) -> Result<Report> {
    if plan.groups.iter().all(|g| g.clients == 0) {
        bail!("nothing to run: give at least one group of one client or more");
    }
    if plan.warmup {
        for g in &plan.groups {
            let mut c = plan.connect().await?;
            let answer = tokio::time::timeout(plan.call_timeout, once(&mut c, &g.call)).await;
            match answer {
                Ok(Ok(_)) => {}
                Ok(Err((code, message))) => {
                    bail!(
                        "the warm-up {} call failed: {code}: {message}",
                        g.call.method()
                    )
                }
                Err(_) => bail!(
                    "the warm-up {} call got no answer within {:?}",
                    g.call.method(),
                    plan.call_timeout
                ),
            }
        }
    }
    let mut clients = Vec::new();
    for g in &plan.groups {
        for _ in 0..g.clients {
            clients.push(plan.connect().await?);
        }
    }
    let plan = Arc::new(plan);
    let started = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + plan.duration;
    let mut clients = clients.into_iter();
    let mut tasks = Vec::new();
    for (i, g) in plan.groups.iter().enumerate() {
        for c in clients.by_ref().take(g.clients) {
            let task = client(c, g.call.clone(), deadline, started.clone(), plan.clone());
            tasks.push((i, tokio::spawn(task)));
        }
    }
    let mut tallies: Vec<Tally> = plan.groups.iter().map(|_| Tally::default()).collect();
    for (i, t) in tasks {
        tallies[i].merge(t.await.context("a load client crashed")?);
    }
    let elapsed = start.elapsed();
    let groups = plan
        .groups
        .iter()
        .zip(tallies)
        .map(|(g, t)| GroupReport::new(g.call.method(), g.clients, t, elapsed))
        .collect();
    Ok(Report::new(groups, elapsed))
}
