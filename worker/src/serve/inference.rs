//! The worker's `Inference` gRPC service: forecasts from a covid trial and images from a
//! VAE trial, answered from the trials `models` keeps loaded. Requests are checked first
//! (sizes, task) so a mistake is named before any work; candle work runs on blocking
//! threads so the server keeps answering meanwhile.

use std::future::Future;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use candle_core::{Device, Tensor};
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server, ServerTlsConfig};
use tonic::{Request, Response, Status};
use tonic_health::pb::health_server::{Health, HealthServer};
use wick_common::store::Store;
use wick_proto::v1::inference_server::{Inference, InferenceServer};
use wick_proto::v1::{
    CountryForecast, ImagesResult, InterpolateParams, PredictParams, PredictResult,
    ReconstructParams, SampleParams,
};
use wick_service::auth::{RequireToken, Token};
use wick_service::metrics::InferenceMetrics;

use crate::covid::artifacts::Forecast;
use crate::serve::data_cache::DataCache;
use crate::serve::models::{Loaded, LoadedVae, Models, blocking};
use crate::serve::shutdown::Shutdown;
use crate::vae;

/// Most images one Sample or Reconstruct call produces.
pub const MAX_IMAGES: u32 = 256;
/// Most interpolation steps in one strip (both ends included; the strip adds the two
/// originals and their reconstructions).
pub const MAX_STEPS: u32 = 64;
/// Largest message in or out: image batches and all-country forecasts fit.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// Images per row of the PNG grids.
const GRID_COLUMNS: usize = 8;

/// The `Inference` service of one worker.
pub struct InferenceService {
    /// Loaded trials.
    models: Models,
    /// Device the models run on.
    device: Device,
    /// Where calls are counted and timed.
    metrics: InferenceMetrics,
}

fn required(trial_id: &str) -> Result<&str, Status> {
    match trial_id.trim() {
        "" => Err(Status::invalid_argument(
            "trial_id is required: a worker answers for a given trial (the coordinator picks the best one)",
        )),
        id => Ok(id),
    }
}

impl InferenceService {
    /// A service reading trials from `store` and their data through `cache`.
    pub fn new(store: Store, cache: Arc<DataCache>, device: Device) -> Self {
        InferenceService {
            models: Models::new(store, cache, device.clone()),
            device,
            metrics: InferenceMetrics::default(),
        }
    }

    /// Records calls in `metrics` (a registered family) instead of a private one.
    pub fn with_metrics(mut self, metrics: InferenceMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Runs `call` and records it as `method`.
    async fn measured<T>(
        &self,
        method: &str,
        call: impl Future<Output = Result<Response<T>, Status>>,
    ) -> Result<Response<T>, Status> {
        let start = Instant::now();
        let result = call.await;
        let code = result
            .as_ref()
            .map_or_else(|e| e.code(), |_| tonic::Code::Ok);
        self.metrics.record(method, code, start.elapsed());
        result
    }

    /// The VAE of trial `id`, or FailedPrecondition for a covid trial.
    async fn vae(&self, id: &str, rpc: &str) -> Result<Arc<LoadedVae>, Status> {
        match &*self.models.load(id).await? {
            Loaded::Vae(v) => Ok(v.clone()),
            Loaded::Covid { .. } => Err(Status::failed_precondition(format!(
                "trial {id} is a covid trial; {rpc} needs a VAE trial (pick one with `client best --task vae`), or use predict"
            ))),
        }
    }
}

fn png(img: &image::RgbImage) -> Result<Vec<u8>, Status> {
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png)
        .map_err(|e| Status::internal(format!("cannot encode PNG: {e}")))?;
    Ok(buf.into_inner())
}

/// Magnification of grid cells: small faces are hard to see at 1× (as in the artifacts).
fn grid_scale(size: u32) -> u32 {
    if size <= 32 { 3 } else { 2 }
}

/// The result for `images` (each channel-major of side `size`) laid out as `rows`.
fn images_result(
    id: &str,
    rows: &[Vec<&[f32]>],
    images: &[Vec<f32>],
    size: u32,
) -> Result<ImagesResult, Status> {
    let viz = |e: wick_viz::VizError| Status::internal(e.to_string());
    let grid = wick_viz::image_grid(rows, size, grid_scale(size)).map_err(viz)?;
    let images_png = images
        .iter()
        .map(|chw| png(&wick_viz::chw_to_rgb(chw, size).map_err(viz)?))
        .collect::<Result<_, _>>()?;
    Ok(ImagesResult {
        trial_id: id.to_string(),
        grid_png: png(&grid)?,
        images_png,
    })
}

/// Decodes an uploaded image for a VAE of side `size`; `which` names it in the error.
fn decode(bytes: &[u8], size: u32, which: &str, device: &Device) -> Result<Tensor, Status> {
    let px = vae::images::decode(bytes, size).map_err(|e| {
        Status::invalid_argument(format!(
            "{which} is not a decodable PNG or JPEG image: {e:#}"
        ))
    })?;
    let dim = px.len();
    Tensor::from_vec(px, (1, dim), device).map_err(|e| Status::internal(e.to_string()))
}

fn internal(e: anyhow::Error) -> Status {
    Status::internal(format!("{e:#}"))
}

#[tonic::async_trait]
impl Inference for InferenceService {
    async fn predict(
        &self,
        req: Request<PredictParams>,
    ) -> Result<Response<PredictResult>, Status> {
        self.measured("predict", self.predict_call(req)).await
    }

    async fn sample(&self, req: Request<SampleParams>) -> Result<Response<ImagesResult>, Status> {
        self.measured("sample", self.sample_call(req)).await
    }

    async fn reconstruct(
        &self,
        req: Request<ReconstructParams>,
    ) -> Result<Response<ImagesResult>, Status> {
        self.measured("reconstruct", self.reconstruct_call(req))
            .await
    }

    async fn interpolate(
        &self,
        req: Request<InterpolateParams>,
    ) -> Result<Response<ImagesResult>, Status> {
        self.measured("interpolate", self.interpolate_call(req))
            .await
    }
}

/// The calls themselves, measured by the trait methods above.
impl InferenceService {
    async fn predict_call(
        &self,
        req: Request<PredictParams>,
    ) -> Result<Response<PredictResult>, Status> {
        let p = req.into_inner();
        let id = required(&p.trial_id)?;
        let loaded = self.models.load(id).await?;
        let Loaded::Covid {
            forecasts,
            table,
            last_date,
        } = &*loaded
        else {
            return Err(Status::failed_precondition(format!(
                "trial {id} is a VAE trial; predict needs a covid trial (pick one with `client best --task covid`), or use sample, reconstruct or interpolate"
            )));
        };
        let chosen: Vec<&Forecast> = if p.all {
            forecasts.iter().collect()
        } else {
            if p.country.trim().is_empty() {
                return Err(Status::invalid_argument(
                    "name a country (as in the data, or its ISO 3166 alpha-2 code such as TW) or ask for all",
                ));
            }
            let i = table
                .find(&p.country)
                .map_err(|e| Status::not_found(e.to_string()))?;
            let name = &table.names[i];
            let one: Vec<&Forecast> = forecasts.iter().filter(|f| &f.country == name).collect();
            if one.is_empty() {
                return Err(Status::failed_precondition(format!(
                    "{name} has fewer daily counts than the trial's window length, so it has no forecast"
                )));
            }
            one
        };
        let forecasts = chosen
            .into_iter()
            .map(|f| CountryForecast {
                country: f.country.clone(),
                iso2: f.iso2.clone().unwrap_or_default(),
                probability: f.probability,
                increase: f.increase,
            })
            .collect();
        Ok(Response::new(PredictResult {
            trial_id: id.to_string(),
            forecasts,
            last_date: last_date.clone(),
        }))
    }

    async fn sample_call(
        &self,
        req: Request<SampleParams>,
    ) -> Result<Response<ImagesResult>, Status> {
        let p = req.into_inner();
        let id = required(&p.trial_id)?.to_string();
        if !(1..=MAX_IMAGES).contains(&p.n) {
            return Err(Status::invalid_argument(format!(
                "n must be between 1 and {MAX_IMAGES}, got {}",
                p.n
            )));
        }
        let loaded = self.vae(&id, "sample").await?;
        let device = self.device.clone();
        let r = blocking(move || {
            let LoadedVae { config, model } = &*loaded;
            let imgs =
                vae::artifacts::sample(model, p.n as usize, p.seed, &device).map_err(internal)?;
            let rows: Vec<Vec<&[f32]>> = imgs
                .chunks(GRID_COLUMNS)
                .map(|c| c.iter().map(Vec::as_slice).collect())
                .collect();
            images_result(&id, &rows, &imgs, config.size)
        })
        .await?;
        Ok(Response::new(r))
    }

    async fn reconstruct_call(
        &self,
        req: Request<ReconstructParams>,
    ) -> Result<Response<ImagesResult>, Status> {
        let p = req.into_inner();
        let id = required(&p.trial_id)?.to_string();
        let n = p.images.len();
        if n == 0 || n > MAX_IMAGES as usize {
            return Err(Status::invalid_argument(format!(
                "send between 1 and {MAX_IMAGES} images, got {n}"
            )));
        }
        let loaded = self.vae(&id, "reconstruct").await?;
        let device = self.device.clone();
        let r = blocking(move || {
            let LoadedVae { config, model } = &*loaded;
            let xs = p
                .images
                .iter()
                .enumerate()
                .map(|(i, b)| decode(b, config.size, &format!("image {} of {n}", i + 1), &device))
                .collect::<Result<Vec<_>, _>>()?;
            let x = Tensor::cat(&xs, 0).map_err(|e| Status::internal(e.to_string()))?;
            let originals = x
                .to_vec2::<f32>()
                .map_err(|e| Status::internal(e.to_string()))?;
            let recon = vae::artifacts::reconstruct(model, &x).map_err(internal)?;
            let mut rows: Vec<Vec<&[f32]>> = Vec::new();
            for (o, r) in originals
                .chunks(GRID_COLUMNS)
                .zip(recon.chunks(GRID_COLUMNS))
            {
                rows.push(o.iter().map(Vec::as_slice).collect());
                rows.push(r.iter().map(Vec::as_slice).collect());
            }
            images_result(&id, &rows, &recon, config.size)
        })
        .await?;
        Ok(Response::new(r))
    }

    async fn interpolate_call(
        &self,
        req: Request<InterpolateParams>,
    ) -> Result<Response<ImagesResult>, Status> {
        let p = req.into_inner();
        let id = required(&p.trial_id)?.to_string();
        if !(2..=MAX_STEPS).contains(&p.steps) {
            return Err(Status::invalid_argument(format!(
                "steps must be between 2 and {MAX_STEPS}, got {}",
                p.steps
            )));
        }
        let loaded = self.vae(&id, "interpolate").await?;
        let device = self.device.clone();
        let r = blocking(move || {
            let LoadedVae { config, model } = &*loaded;
            let a = decode(&p.a, config.size, "image a", &device)?;
            let b = decode(&p.b, config.size, "image b", &device)?;
            // The coursework's strip, in one row: original | reconstruction | steps |
            // reconstruction | original; every tile also comes back as its own PNG.
            let strip = vae::artifacts::strip(model, &a, &b, p.steps as usize).map_err(internal)?;
            let row: Vec<&[f32]> = strip.iter().map(Vec::as_slice).collect();
            images_result(&id, &[row], &strip, config.size)
        })
        .await?;
        Ok(Response::new(r))
    }
}

/// The connections of `listener` with Nagle's algorithm off. With it on, a reply written
/// in more than one piece (an image batch, a response and its trailers) waits for the
/// caller's delayed ACK (about 40 ms on Linux).
fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Serves `service` and the gRPC `health` service on `listener` until `stop` fires, over
/// TLS with `tls`. With `token`, inference calls must carry it; health checks need none
/// (probes have none).
pub async fn serve(
    listener: TcpListener,
    service: InferenceService,
    health: HealthServer<impl Health>,
    token: Option<Token>,
    tls: Option<ServerTlsConfig>,
    stop: Shutdown,
) -> anyhow::Result<()> {
    let inference = InferenceServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    // Calls run on tasks tonic spawns; giving them the caller's span keeps the worker's
    // name on their log lines.
    let parent = tracing::Span::current();
    let mut server = Server::builder();
    if let Some(tls) = tls {
        server = server
            .tls_config(tls)
            .context("cannot serve TLS with --tls-cert and --tls-key")?;
    }
    server
        .trace_fn(move |_| parent.clone())
        .add_service(health)
        .add_service(InterceptedService::new(inference, RequireToken::new(token)))
        .serve_with_incoming_shutdown(incoming(listener), async move { stop.wait().await })
        .await
        .context("the inference server failed")
}
