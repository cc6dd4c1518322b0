//! The catalogue's vocabulary: the cluster a case runs against (`Ctx`), what a case does
//! (a client command, a detached sweep whose trial must end a certain way, a raw gRPC
//! call), what it must answer (exit status, gRPC code or trial state, plus message
//! fragments) and what it may leave in the store. `check` runs and judges cases.

use std::cell::RefCell;
use std::process::{Command, Output, Stdio};

use tonic::transport::Channel;
use tonic::{Code, Status};
use wick_proto::v1::sweeps_client::SweepsClient;

use crate::common::{self, Cluster};
use crate::inputs::Inputs;

/// Largest message the test's gRPC client takes or sends.
const MAX_MESSAGE: usize = 1 << 30;

/// The running cluster and what the good sweep at the start produced.
pub struct Ctx {
    /// Coordinator, worker and S3 server.
    pub c: Cluster,
    /// Runtime of the test's own gRPC calls.
    pub rt: tokio::runtime::Runtime,
    /// The shared data folder.
    pub data: String,
    /// The bad (and a few good) input files.
    pub inputs: Inputs,
    /// The good sweep: every trial succeeded.
    pub good_sweep: String,
    /// Its covid trial with L = 12 (answers predict throughout).
    pub covid: String,
    /// Its covid trial with L = 13 (its model gets truncated; never loaded before).
    pub spare: String,
    /// Its VAE trial.
    pub vae: String,
    /// `store:KEY` of the face bundle the good sweep uploaded.
    pub faces: String,
    /// Store key of the COVID-19 file the good sweep uploaded.
    pub covid_csv: String,
    /// The last trial a case's sweep ended with.
    pub last_trial: RefCell<String>,
    /// The last trial that failed (a later case asks it for a forecast).
    pub last_failed: RefCell<String>,
}

impl Ctx {
    /// A client of the coordinator's Sweeps service.
    pub fn sweeps(&self) -> SweepsClient<Channel> {
        let url = self.c.url();
        self.rt
            .block_on(SweepsClient::connect(url))
            .expect("the coordinator accepts connections")
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// The shared COVID-19 file (its upload is already in the store).
    pub fn data_csv(&self) -> String {
        format!("{}/covid/covid_19.csv", self.data)
    }

    /// A path under the output folder (which must stay empty after a refusal).
    pub fn out(&self, name: &str) -> String {
        self.inputs.out.join(name).to_string_lossy().into_owned()
    }

    /// The client binary with the cluster's store credentials but none of the harness's
    /// global flags (the case gives its own).
    pub fn bare_client(&self, args: &[String]) -> Output {
        let mut cmd = Command::new(common::binary("client"));
        for (k, v) in self.c.s3.env() {
            cmd.env(k, v);
        }
        for var in [
            "WICK_COORDINATOR",
            "WICK_STORE",
            "WICK_TOKEN",
            "WICK_TOKEN_FILE",
            "WICK_TLS_CA",
        ] {
            cmd.env_remove(var);
        }
        cmd.args(args).stdin(Stdio::null()).output().unwrap()
    }

    /// What the worker logged so far.
    pub fn worker_log(&self) -> String {
        self.c.workers[0].log_text()
    }
}

/// What a case must answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Want {
    /// The client exits with this status.
    Exit(i32),
    /// The gRPC call ends with this code.
    Code(Code),
    /// The sweep is accepted and its one trial ends in this state after one attempt.
    Trial(&'static str),
}

/// What a case did answer.
pub struct Seen {
    /// Status, code or trial state (a trial's attempts are checked separately).
    pub got: Want,
    /// What it answered: stderr, the status message, or the trial's message and metrics.
    pub text: String,
    /// The worker's log lines written meanwhile (trial cases only).
    pub log: String,
    /// What the client printed on stdout.
    pub stdout: String,
    /// Leases the trial took, for trial cases.
    pub attempts: Option<u64>,
}

impl Seen {
    /// The outcome of a client run.
    pub fn from_output(out: &Output) -> Seen {
        Seen {
            got: Want::Exit(out.status.code().unwrap_or(-1)),
            text: String::from_utf8_lossy(&out.stderr).into_owned(),
            log: String::new(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            attempts: None,
        }
    }

    /// The outcome of a gRPC call.
    pub fn from_status<T>(r: Result<T, Status>) -> Seen {
        let (got, text) = match r {
            Ok(_) => (Want::Code(Code::Ok), String::new()),
            Err(s) => (Want::Code(s.code()), s.message().to_string()),
        };
        Seen {
            got,
            text,
            log: String::new(),
            stdout: String::new(),
            attempts: None,
        }
    }
}

/// How a case is carried out.
pub enum Act {
    /// `client --coordinator URL --store STORE --json ARGS`.
    Cli(Vec<String>),
    /// `client ARGS`, the case giving every global flag itself.
    Bare(Vec<String>),
    /// `client ... --json sweep ARGS --detach`, then wait for its one trial to end.
    Sweep(Vec<String>),
    /// Anything else (gRPC calls, tampering with the store first).
    Custom(Box<dyn Fn(&Ctx) -> Seen>),
}

/// What a case may leave in the store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Writes {
    /// Nothing at all: the store's keys are the same before and after.
    Nothing,
    /// A sweep and its trial's records, but no model, summary or plot of that trial.
    FailedTrial,
    /// A whole succeeded trial.
    Trial,
}

/// One bad input and the answer it must get.
pub struct Case {
    /// Short name, for the report.
    pub name: &'static str,
    /// What to do.
    pub act: Act,
    /// The answer's kind.
    pub want: Want,
    /// Fragments the answer must hold: the problem, and what to do.
    pub says: Vec<String>,
    /// Fragments the worker's log must hold meanwhile.
    pub logs: Vec<String>,
    /// What it may leave in the store.
    pub writes: Writes,
}
