//! Asking trials what they cannot answer: the wrong task, sizes out of range, images that
//! are not images, a failed trial, a truncated model; unknown sweeps, trials and artifacts.

use super::{cli, s};
use crate::harness::{Act, Case, Ctx, Seen, Want, Writes};

/// Asking trained (and untrained) trials for what they cannot give.
pub fn trial_cases(ctx: &Ctx) -> Vec<Case> {
    let (covid, vae) = (ctx.covid.clone(), ctx.vae.clone());
    let face = ctx.inputs.face.to_string_lossy().into_owned();
    let garbage = ctx.inputs.garbage_jpg.to_string_lossy().into_owned();
    let huge = ctx.inputs.huge_png.to_string_lossy().into_owned();
    let png = ctx.out("out.png");
    let spare = ctx.spare.clone();
    vec![
        cli(
            "predict: unknown code XX",
            s(&["predict", "--country", "XX", "--trial", &covid]),
            1,
            &["unknown country 'XX'", "ISO 3166 alpha-2 code"],
        ),
        cli(
            "predict: misspelt country",
            s(&["predict", "--country", "Germny", "--trial", &covid]),
            1,
            &["unknown country 'Germny'", "did you mean", "Germany (DE)"],
        ),
        cli(
            "predict on a VAE trial",
            s(&["predict", "--country", "TW", "--trial", &vae]),
            1,
            &["is a vae trial", "Predict needs a covid trial"],
        ),
        cli(
            "predict: unknown trial",
            s(&["predict", "--country", "TW", "--trial", "t-nope"]),
            1,
            &["no trial 't-nope'", "client status SWEEP"],
        ),
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
            says: s(&["is failed and has no final model", "client best"]),
            logs: vec![],
            writes: Writes::Nothing,
        },
        Case {
            name: "predict: truncated model",
            act: Act::Custom(Box::new(move |ctx: &Ctx| {
                let model = ctx
                    .c
                    .s3
                    .root
                    .join(&ctx.c.s3.bucket)
                    .join(format!("cluster/trials/{spare}/model.safetensors"));
                assert!(model.is_file(), "no model at {}", model.display());
                std::fs::write(&model, b"0123456789").unwrap();
                let out = ctx
                    .c
                    .client_raw(&["predict", "--country", "TW", "--trial", &spare]);
                Seen::from_output(&out)
            })),
            want: Want::Exit(1),
            says: s(&["model.safetensors", "not a readable wick model"]),
            logs: vec![],
            writes: Writes::Nothing,
        },
        cli(
            "sample from a covid trial",
            s(&["sample", "--trial", &covid, "--out", &png]),
            1,
            &["is a covid trial", "Sample needs a vae trial"],
        ),
        cli(
            "sample --n 0",
            s(&["sample", "--n", "0", "--trial", &vae, "--out", &png]),
            1,
            &["n must be between 1 and 256, got 0"],
        ),
        cli(
            "sample --n 100000",
            s(&["sample", "--n", "100000", "--trial", &vae, "--out", &png]),
            1,
            &["n must be between 1 and 256, got 100000"],
        ),
        cli(
            "interpolate --steps 1000",
            s(&["interpolate", "--a", &face, "--b", &face, "--steps", "1000"])
                .into_iter()
                .chain(s(&["--trial", &vae, "--out", &png]))
                .collect(),
            1,
            &["steps must be between 2 and 64, got 1000"],
        ),
        cli(
            "reconstruct: corrupt image",
            s(&["reconstruct", &garbage, "--trial", &vae, "--out", &png]),
            1,
            &[
                "garbage.jpg is not a PNG or JPEG image",
                "pass PNG or JPEG files",
            ],
        ),
        cli(
            "reconstruct: missing file",
            s(&[
                "reconstruct",
                "/no/such/face.png",
                "--trial",
                &vae,
                "--out",
                &png,
            ]),
            1,
            &["cannot read /no/such/face.png"],
        ),
        cli(
            "reconstruct: 100 MB image",
            s(&["reconstruct", &huge, "--trial", &vae, "--out", &png]),
            1,
            &["huge.png is 100.0 MB", "64.0 MB", "send smaller files"],
        ),
        cli(
            "status: unknown sweep",
            s(&["status", "s-nope"]),
            1,
            &["no sweep 's-nope'", "client list"],
        ),
        cli(
            "status: ambiguous prefix",
            s(&["status", "s-"]),
            1,
            &["'s-' names", "sweeps (s-", "give more characters"],
        ),
        cli(
            "watch: unknown sweep",
            s(&["watch", "s-nope"]),
            1,
            &["no sweep 's-nope'", "client list"],
        ),
        cli(
            "cancel: unknown sweep",
            s(&["cancel", "s-nope"]),
            1,
            &["no sweep 's-nope'", "client list"],
        ),
        cli(
            "artifacts get: no such file",
            s(&["artifacts", "get", &covid, "no/such/file", "--out", &png]),
            1,
            &["has no artifact 'no/such/file'", "client artifacts ls"],
        ),
        cli(
            "artifacts get: path escape",
            s(&["artifacts", "get", &covid, "../../sweeps/x", "--out", &png]),
            1,
            &["'../../sweeps/x' is not a path under trials/<id>/"],
        ),
        cli(
            "artifacts ls: unknown trial",
            s(&["artifacts", "ls", "t-nope"]),
            1,
            &["no trial 't-nope'"],
        ),
    ]
}
