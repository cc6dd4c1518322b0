//! Bad inputs that were once answered wrongly, each with what it got then and the answer
//! it gets now; the catalogue's main test runs them with the others, so none comes back.
//! (Two more were closed in place, in data.rs: a URL's parse error names the URL, and a
//! skipped face is named in the trial's summary.)

use tonic::Code;
use wick_proto::v1::{PredictParams, SubmitSweepParams, SweepSpec};

use crate::cases::s;
use crate::harness::{Act, Case, Ctx, Seen, Want, Writes};

/// Gaps that were closed: kept with their history, and run by the main catalogue.
pub fn fixed(ctx: &Ctx) -> Vec<Case> {
    let covid_key = ctx.covid_csv.clone();
    vec![
        // Was: "trial … is failed and has no final model; wait for it to succeed or
        // pick another (`client best`)": a failed trial will not succeed by waiting.
        // Expected: for a failed trial, the way to run it again, submitting its sweep again
        // (which requeues failed trials) (coordinator: inference_trial).
        Case {
            name: "predict on a failed trial",
            act: Act::Custom(Box::new(|ctx: &Ctx| {
                let failed = ctx.last_failed.borrow().clone();
                let out = ctx
                    .c
                    .client_raw(&["predict", "--country", "TW", "--trial", &failed]);
                Seen::from_output(&out)
            })),
            want: Want::Exit(1),
            says: s(&["is failed", "submit", "client best"]),
            logs: vec![],
            writes: Writes::Nothing,
        },
        // Was: INTERNAL "trials/<id>/model.safetensors is not a readable wick model:
        // …", which reads as a server bug and offers no way out. Expected: FAILED_PRECONDITION
        // (the trial cannot answer, as for a trial without a model) with a way out: pick
        // another trial (`client best`) (worker: serve/models.rs).
        Case {
            name: "Predict: truncated model",
            act: Act::Custom(Box::new(|ctx: &Ctx| {
                let model = ctx
                    .c
                    .s3
                    .root
                    .join(&ctx.c.s3.bucket)
                    .join(format!("cluster/trials/{}/model.safetensors", ctx.spare));
                std::fs::write(&model, b"0123456789").unwrap();
                let mut c = ctx.sweeps();
                let p = PredictParams {
                    trial_id: ctx.spare.clone(),
                    country: "TW".into(),
                    all: false,
                };
                Seen::from_status(ctx.rt.block_on(c.predict(p)))
            })),
            want: Want::Code(Code::FailedPrecondition),
            says: s(&["model.safetensors", "client best"]),
            logs: vec![],
            writes: Writes::Nothing,
        },
        // Was: a sweep named with 1 MB of text is accepted, stored in its spec and
        // state, and sent back in full by every ListSweeps. Expected: INVALID_ARGUMENT
        // naming the name's length limit, nothing stored (coordinator: grid.rs validates
        // every other field of the spec).
        Case {
            name: "SubmitSweep: 1 MB name",
            act: Act::Custom(Box::new(move |ctx: &Ctx| {
                let spec = SweepSpec {
                    tasks: vec!["covid".into()],
                    l: vec![12],
                    cell: vec!["rnn".into()],
                    hidden: vec![8],
                    epochs: vec![1],
                    data: Some(wick_proto::v1::DataRef {
                        covid_csv: covid_key.clone(),
                        faces: String::new(),
                    }),
                    name: "n".repeat(1 << 20),
                    ..Default::default()
                };
                let mut c = ctx.sweeps();
                Seen::from_status(
                    ctx.rt
                        .block_on(c.submit_sweep(SubmitSweepParams { spec: Some(spec) })),
                )
            })),
            want: Want::Code(Code::InvalidArgument),
            says: s(&["name"]),
            logs: vec![],
            writes: Writes::Nothing,
        },
    ]
}
