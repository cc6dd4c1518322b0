//! Data through the coordinator on a real cluster: a client that has only the
//! coordinator's address and token (no store URL, no S3 credentials) runs a sweep on its
//! own files. An upload broken off before a coordinator crash resumes after the bytes that
//! arrived, the files land under their content-addressed keys in the bucket, the staging
//! parts are gone, and the trials train on them.

mod common;

use std::time::Duration;

use common::Cluster;
use tonic::metadata::MetadataValue;
use wick_common::ids::sha256_hex;
use wick_proto::v1::sweeps_client::SweepsClient;
use wick_proto::v1::upload_data_chunk::Part;
use wick_proto::v1::{UploadDataChunk, UploadDataHeader};

const TOKEN: &str = "upload-test-token";

/// Sends the header and the first `n` bytes of `bytes` as `name`, then ends the stream, as
/// a client that stopped would; returns the bytes the coordinator says it holds.
fn send_part(url: &str, name: &str, bytes: &[u8], n: usize) -> u64 {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(url.to_string())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let bearer: MetadataValue<_> = format!("Bearer {TOKEN}").parse().unwrap();
        let mut client =
            SweepsClient::with_interceptor(channel, move |mut req: tonic::Request<()>| {
                req.metadata_mut().insert("authorization", bearer.clone());
                Ok(req)
            });
        let header = UploadDataChunk {
            part: Some(Part::Header(UploadDataHeader {
                name: name.into(),
                sha256: sha256_hex(bytes),
                size: bytes.len() as u64,
                offset: 0,
            })),
        };
        let data = bytes[..n].chunks(1 << 20).map(|c| UploadDataChunk {
            part: Some(Part::Data(c.to_vec())),
        });
        let msgs: Vec<_> = std::iter::once(header).chain(data).collect();
        let r = client
            .upload_data(tokio_stream::iter(msgs))
            .await
            .unwrap()
            .into_inner();
        assert!(!r.complete, "{r:?}");
        r.received
    })
}

#[test]
fn a_client_without_the_store_sends_data_through_the_coordinator_and_resumes() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let token_flags = |dir: &std::path::Path| common::token_flags(dir, TOKEN);
    let Some(mut c) = Cluster::start_with(token_flags) else {
        return;
    };
    c.worker_args = token_flags(c.dir.path());
    c.client_store = false;
    c.client_env = vec![("WICK_TOKEN".into(), TOKEN.into())];

    // Half the case table arrives, then the coordinator dies and comes back.
    let csv = std::fs::read(data.join("covid/covid_19.csv")).unwrap();
    let half = csv.len() / 2;
    assert_eq!(send_part(&c.url(), "covid.csv", &csv, half), half as u64);
    c.coordinator.as_mut().unwrap().kill9();
    c.start_coordinator();
    c.start_worker("w1");

    let d = data.to_string_lossy().to_string();
    let grid = common::tiny_sweep(&d);
    let submitted = c.client(&grid);
    let parts = submitted["data"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{submitted}");
    let covid = &parts[0];
    assert_eq!(covid["file"], "covid.csv", "{submitted}");
    assert_eq!(covid["via"], "coordinator", "{submitted}");
    assert_eq!(covid["resumed_from"], half as u64, "{submitted}");
    assert_eq!(covid["bytes"], csv.len() as u64);
    let covid_key = format!("data/sha256-{}/covid.csv", sha256_hex(&csv));
    assert_eq!(covid["key"], covid_key.as_str());
    let faces = &parts[1];
    assert_eq!(
        (faces["file"].as_str(), faces["via"].as_str()),
        (Some("faces.tar"), Some("coordinator")),
        "{submitted}"
    );
    assert_eq!(faces["resumed_from"], 0);

    let keys = c.s3.keys("cluster/");
    assert!(
        keys.contains(&format!("cluster/{covid_key}")),
        "the case table is in the bucket under its content key: {keys:?}"
    );
    assert!(
        keys.iter()
            .any(|k| k.starts_with("cluster/data/sha256-") && k.ends_with("/faces.tar")),
        "{keys:?}"
    );
    assert!(
        !keys.iter().any(|k| k.starts_with("cluster/uploads/")),
        "upload parts are removed once joined: {keys:?}"
    );

    let sweep = submitted["sweep"].as_str().unwrap().to_string();
    let trials = c.wait_done(&sweep, Duration::from_secs(240));
    assert_eq!(trials.len(), 2);
    for t in &trials {
        assert_eq!(t["state"], "succeeded", "{t}");
    }

    // The same files again: nothing is sent, the sweep is the same.
    let again = c.client(&grid);
    assert_eq!(again["sweep"].as_str(), Some(sweep.as_str()));
    for p in again["data"].as_array().unwrap() {
        assert_eq!(p["existed"], true, "{again}");
    }

    // A file above the coordinator's limit is refused before any byte is sent, saying
    // which flag sets it and what else to do.
    c.coordinator_args
        .extend(["--max-upload-mib", "1"].map(String::from));
    c.coordinator.as_mut().unwrap().kill9();
    c.start_coordinator();
    let faces = c.dir.path().join("big-faces");
    std::fs::create_dir_all(&faces).unwrap();
    for i in 0..3 {
        let noise: Vec<u8> = (0..600_000u32)
            .map(|j| (j.wrapping_mul(2654435761) >> (i + 7)) as u8)
            .collect();
        std::fs::write(faces.join(format!("{i}.png")), noise).unwrap();
    }
    let out = c.client_raw(&[
        "sweep",
        "--task",
        "vae",
        "--faces",
        faces.to_str().unwrap(),
        "--kl",
        "1",
        "--detach",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--max-upload-mib") && err.contains("store:KEY"),
        "{err}"
    );
    assert!(
        !c.s3
            .keys("cluster/")
            .iter()
            .any(|k| k.starts_with("cluster/uploads/")),
        "nothing of the refused file is stored"
    );

    // A store URL without the store's settings is refused with what to do instead.
    let out = c.client_raw(&["sweep", "--data", &c.store, "--l", "12", "--detach"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("--store URL") && err.contains("through the coordinator"),
        "{err}"
    );
}
