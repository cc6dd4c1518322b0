//! The client pointed at the wrong place, and raw gRPC calls a client would never make:
//! messages over the size limit, required fields left out.

use tonic::Code;
use wick_proto::v1::{
    GetArtifactParams, GetSweepParams, PredictParams, ReconstructParams, SubmitSweepParams,
    SweepSpec,
};

use super::{grpc, s};
use crate::harness::{Act, Case, Ctx, Seen, Want, Writes};
use crate::inputs::HUGE;

/// Where the client is pointed, wrongly.
pub fn connection_cases(ctx: &Ctx) -> Vec<Case> {
    let closed = format!("http://127.0.0.1:{}", crate::common::free_port());
    vec![
        Case {
            name: "--coordinator: closed port",
            act: Act::Bare(s(&["--coordinator", &closed, "--json", "list"])),
            want: Want::Exit(1),
            says: s(&[
                &format!("cannot reach the coordinator at {closed}"),
                "coordinator --listen",
            ]),
            logs: vec![],
            writes: Writes::Nothing,
        },
        Case {
            name: "--coordinator: not a URL",
            act: Act::Bare(s(&["--coordinator", "http://exa mple:1", "--json", "list"])),
            want: Want::Exit(1),
            says: s(&["is not a coordinator URL", "http://HOST:PORT"]),
            logs: vec![],
            writes: Writes::Nothing,
        },
        Case {
            name: "--store ftp://x",
            act: Act::Bare(s(&[
                "--coordinator",
                &ctx.c.url(),
                "--store",
                "ftp://x",
                "--json",
                "list",
            ])),
            want: Want::Exit(1),
            says: s(&[
                "cannot open store 'ftp://x'",
                "unknown scheme",
                "s3://bucket/prefix",
                "file:///",
            ]),
            logs: vec![],
            writes: Writes::Nothing,
        },
    ]
}

/// Calls only a program can make: messages too large, fields left out.
pub fn grpc_cases(ctx: &Ctx) -> Vec<Case> {
    let (covid, vae) = (ctx.covid.clone(), ctx.vae.clone());
    vec![
        grpc(
            "SubmitSweep: 100 MB name",
            Code::OutOfRange,
            &[
                "message length too large",
                "found 1048576",
                "limit is: 67108864",
            ],
            |ctx| {
                let spec = SweepSpec {
                    tasks: vec!["covid".into()],
                    name: "x".repeat(HUGE),
                    ..Default::default()
                };
                let mut c = ctx.sweeps();
                Seen::from_status(
                    ctx.rt
                        .block_on(c.submit_sweep(SubmitSweepParams { spec: Some(spec) })),
                )
            },
        ),
        grpc(
            "Reconstruct: 100 MB image",
            Code::OutOfRange,
            &[
                "message length too large",
                "found 1048576",
                "limit is: 67108864",
            ],
            move |ctx| {
                let mut c = ctx.sweeps();
                let p = ReconstructParams {
                    trial_id: vae.clone(),
                    images: vec![vec![0u8; HUGE]],
                };
                Seen::from_status(ctx.rt.block_on(c.reconstruct(p)))
            },
        ),
        grpc(
            "SubmitSweep: no spec",
            Code::InvalidArgument,
            &["SubmitSweep needs a spec"],
            |ctx| {
                let mut c = ctx.sweeps();
                Seen::from_status(
                    ctx.rt
                        .block_on(c.submit_sweep(SubmitSweepParams { spec: None })),
                )
            },
        ),
        grpc(
            "SubmitSweep: unknown task",
            Code::InvalidArgument,
            &["unknown task 'tcn'", "use covid, vae or both"],
            |ctx| {
                let spec = SweepSpec {
                    tasks: vec!["tcn".into()],
                    ..Default::default()
                };
                let mut c = ctx.sweeps();
                Seen::from_status(
                    ctx.rt
                        .block_on(c.submit_sweep(SubmitSweepParams { spec: Some(spec) })),
                )
            },
        ),
        grpc(
            "SubmitSweep: covid without data",
            Code::InvalidArgument,
            &["covid trials need data", "--covid-csv"],
            |ctx| {
                let spec = SweepSpec {
                    tasks: vec!["covid".into()],
                    ..Default::default()
                };
                let mut c = ctx.sweeps();
                Seen::from_status(
                    ctx.rt
                        .block_on(c.submit_sweep(SubmitSweepParams { spec: Some(spec) })),
                )
            },
        ),
        grpc(
            "GetSweep: empty id",
            Code::InvalidArgument,
            &["no sweep id given", "client list"],
            |ctx| {
                let mut c = ctx.sweeps();
                Seen::from_status(ctx.rt.block_on(c.get_sweep(GetSweepParams::default())))
            },
        ),
        grpc(
            "Predict: no country",
            Code::InvalidArgument,
            &["name a country", "ISO 3166 alpha-2"],
            move |ctx| {
                let mut c = ctx.sweeps();
                let p = PredictParams {
                    trial_id: covid.clone(),
                    country: String::new(),
                    all: false,
                };
                Seen::from_status(ctx.rt.block_on(c.predict(p)))
            },
        ),
        grpc(
            "GetArtifact: empty name",
            Code::InvalidArgument,
            &["artifact name '' is not a path"],
            {
                let covid = ctx.covid.clone();
                move |ctx| {
                    let mut c = ctx.sweeps();
                    let p = GetArtifactParams {
                        trial_id: covid.clone(),
                        name: String::new(),
                    };
                    Seen::from_status(ctx.rt.block_on(c.get_artifact(p)))
                }
            },
        ),
    ]
}
