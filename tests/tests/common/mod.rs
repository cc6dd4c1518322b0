//! Shared setup of the cross-process tests: the real binaries (built by `cargo test` next
//! to this test executable), a real S3-compatible server (`s3s-fs`, installed by
//! `.ci/run`), loopback ports chosen at run time, and processes that are killed when the
//! test ends, whatever happens.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `../shared/data`, or `None` (skip) outside CI when it is missing; under `CI=true` a
/// missing folder fails the test.
pub fn shared_data() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data"));
    if dir.join("covid/covid_19.csv").exists() {
        return Some(dir);
    }
    assert!(
        !in_ci(),
        "CI=true but the shared data is missing at {}",
        dir.display()
    );
    eprintln!("note: {} is missing; skipping this test", dir.display());
    None
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Path of a workspace binary (`coordinator`, `worker`, `client`): the test executable
/// lives in target/<profile>/deps, the binaries one level up.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed (SIGKILL) when dropped, with its stderr collected in a file.
pub struct Proc {
    /// The process.
    pub child: Child,
    /// What it printed on stderr so far.
    pub log: PathBuf,
    /// Name for messages.
    pub name: String,
}

impl Proc {
    /// Starts `cmd`, capturing stderr into `dir/<name>.log`, and waits until a stderr line
    /// contains `ready` (returns that line), failing after `timeout`.
    pub fn start(
        mut cmd: Command,
        name: &str,
        dir: &Path,
        ready: &str,
        timeout: Duration,
    ) -> (Proc, String) {
        let log = dir.join(format!("{name}.log"));
        cmd.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let (ready, log2) = (ready.to_string(), log.clone());
        std::thread::spawn(move || {
            let mut out = std::fs::File::create(&log2).unwrap();
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                use std::io::Write;
                let _ = writeln!(out, "{line}");
                if !sent && line.contains(&ready) {
                    let _ = tx.send(line);
                    sent = true;
                }
            }
        });
        let line = rx.recv_timeout(timeout).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!(
                "{name} did not become ready in {timeout:?}; its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        (
            Proc {
                child,
                log,
                name: name.to_string(),
            },
            line,
        )
    }

    /// Starts `cmd` with stdout and stderr into `dir/<name>.log`, and waits until `port`
    /// on 127.0.0.1 accepts connections.
    pub fn start_on_port(
        mut cmd: Command,
        name: &str,
        dir: &Path,
        port: u16,
        timeout: Duration,
    ) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        cmd.stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let proc = Proc {
            child,
            log,
            name: name.to_string(),
        };
        wait_for(timeout, &format!("{name} to listen on port {port}"), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        proc
    }

    /// Everything it printed on stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, now.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal by number (e.g. 15 TERM, 19 STOP, 18 CONT).
    pub fn signal(&self, sig: i32) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address after the first `marker` (e.g. "metrics on ") in `log`.
pub fn addr_after(log: &str, marker: &str) -> Option<String> {
    let at = log.find(marker)? + marker.len();
    log[at..].split_whitespace().next().map(str::to_string)
}

/// The body of `GET http://addr/path` (HTTP/1.1, connection closed after), or an error.
pub fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if !head.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!("GET {path}: {head}")));
    }
    Ok(body.to_string())
}

/// The address printed after "listening on " in a ready line.
pub fn addr_in(line: &str) -> String {
    let at = line
        .find("listening on ")
        .expect("a 'listening on ADDR' line")
        + "listening on ".len();
    line[at..].split_whitespace().next().unwrap().to_string()
}

/// A running S3-compatible server on a loopback port, serving one bucket.
pub struct S3 {
    /// The server process.
    pub proc: Proc,
    /// Folder holding the buckets (each bucket is a subfolder).
    pub root: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Bucket name.
    pub bucket: String,
}

/// Access key of the test S3 server.
pub const S3_KEY: &str = "wicktest";
/// Secret key of the test S3 server.
pub const S3_SECRET: &str = "wicktestsecret";

fn find_s3s_fs() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("s3s-fs"))
                .collect()
        })
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cargo/bin/s3s-fs"));
    }
    candidates.into_iter().find(|p| p.exists())
}

impl S3 {
    /// Starts `s3s-fs` on a free port with a bucket `wick`; `None` (skip) outside CI when the
    /// server is not installed (`.ci/run` installs it; a CI run without it fails).
    pub fn start(dir: &Path) -> Option<S3> {
        let Some(bin) = find_s3s_fs() else {
            assert!(
                !in_ci(),
                "CI=true but s3s-fs is not installed (see .ci/run)"
            );
            eprintln!(
                "note: s3s-fs is not installed (cargo install s3s-fs --version 0.14.1 --features binary --locked); skipping"
            );
            return None;
        };
        let root = dir.join("s3-root");
        let bucket = "wick".to_string();
        std::fs::create_dir_all(root.join(&bucket)).unwrap();
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", S3_KEY, "--secret-key", S3_SECRET])
            .arg(&root)
            .env("RUST_LOG", "info");
        let proc = Proc::start_on_port(cmd, "s3s-fs", dir, port, Duration::from_secs(30));
        Some(S3 {
            proc,
            root,
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket,
        })
    }

    /// Kills the server (SIGKILL), as an outage would; its folder stays.
    pub fn stop(&mut self) {
        self.proc.kill9();
    }

    /// Starts the server again on the same port and folder, after [`S3::stop`].
    pub fn restart(&mut self) {
        self.proc.kill9();
        let bin = find_s3s_fs().expect("s3s-fs ran before");
        let port: u16 = self
            .endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the endpoint ends with its port");
        let dir = self
            .root
            .parent()
            .expect("the root sits in the scratch folder");
        let mut cmd = Command::new(bin);
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", S3_KEY, "--secret-key", S3_SECRET])
            .arg(&self.root)
            .env("RUST_LOG", "info");
        // A new log name, so the first run's log is kept for reading.
        let name = format!("s3s-fs-{}", unix_ms());
        self.proc = Proc::start_on_port(cmd, &name, dir, port, Duration::from_secs(30));
    }

    /// The `epoch` fields of a trial's `metrics.jsonl` under `prefix`, in file order.
    pub fn metric_epochs(&self, prefix: &str, trial: &str) -> Vec<u64> {
        let path = self
            .root
            .join(&self.bucket)
            .join(format!("{prefix}trials/{trial}/metrics.jsonl"));
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("{}: bad line {l:?}: {e}", path.display()));
                v["epoch"].as_u64().expect("every line names its epoch")
            })
            .collect()
    }

    /// The environment every wick process needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", S3_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET.into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// `s3://wick/<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }

    /// Every object key under `prefix` in the bucket, read from the server's folder.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let base = self.root.join(&self.bucket);
        let mut out = Vec::new();
        let mut stack = vec![base.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let k = p.strip_prefix(&base).unwrap().to_string_lossy().to_string();
                    if k.starts_with(prefix) && !k.contains(".tmp") {
                        out.push(k);
                    }
                }
            }
        }
        out.sort();
        out
    }
}

/// Polls `f` until it returns `Some`, failing with `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `--token-file FILE` flags, writing `token` to `dir/token` (for coordinators and workers).
pub fn token_flags(dir: &Path, token: &str) -> Vec<String> {
    let file = dir.join("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    vec![
        "--token-file".to_string(),
        file.to_string_lossy().into_owned(),
    ]
}

/// The smallest sweep over both tasks: one RNN covid trial (L = 12) and one VAE trial
/// (KL weight 1), 8 hidden units, one epoch on 200 rows or images, submitted without
/// waiting (`--detach`).
pub fn tiny_sweep(data: &str) -> [&str; 18] {
    [
        "sweep",
        "--data",
        data,
        "--l",
        "12",
        "--kl",
        "1",
        "--cell",
        "rnn",
        "--hidden",
        "8",
        "--vae-hidden",
        "8",
        "--epochs",
        "1",
        "--limit",
        "200",
        "--detach",
    ]
}

/// A coordinator, its workers and an S3 server, all real processes on loopback.
pub struct Cluster {
    /// Scratch folder: logs, S3 root, worker caches.
    pub dir: tempfile::TempDir,
    /// The S3-compatible server.
    pub s3: S3,
    /// Store URL every process uses.
    pub store: String,
    /// The coordinator's fixed port (kept across restarts).
    pub port: u16,
    /// The coordinator process.
    pub coordinator: Option<Proc>,
    /// Worker processes by name.
    pub workers: Vec<Proc>,
    /// Extra flags of every coordinator start (e.g. --token-file).
    pub coordinator_args: Vec<String>,
    /// Extra flags of every worker start.
    pub worker_args: Vec<String>,
    /// Extra environment of every client run.
    pub client_env: Vec<(String, String)>,
    /// Whether the client is given the store (`--store` and the S3 credentials); without
    /// it, data goes through the coordinator.
    pub client_store: bool,
    /// `http`, or `https` for a coordinator serving TLS.
    pub scheme: &'static str,
}

/// Lease timing of the tests: short, so a dead worker's trial moves on quickly.
pub const LEASE_TTL_MS: u64 = 2000;
/// Heartbeat interval of the tests.
pub const HEARTBEAT_MS: u64 = 300;

impl Cluster {
    /// An S3 server and a coordinator; `None` when s3s-fs is missing outside CI.
    pub fn start() -> Option<Cluster> {
        Cluster::start_with(|_| vec![])
    }

    /// Like [`Cluster::start`], with extra coordinator flags made from the scratch folder.
    pub fn start_with(coordinator_args: impl FnOnce(&Path) -> Vec<String>) -> Option<Cluster> {
        let dir = tempfile::tempdir().unwrap();
        let coordinator_args = coordinator_args(dir.path());
        let s3 = S3::start(dir.path())?;
        let store = s3.url("cluster");
        let mut c = Cluster {
            dir,
            s3,
            store,
            port: free_port(),
            coordinator: None,
            workers: vec![],
            coordinator_args,
            worker_args: vec![],
            client_env: vec![],
            client_store: true,
            scheme: "http",
        };
        c.start_coordinator();
        Some(c)
    }

    fn env(&self, cmd: &mut Command) {
        for (k, v) in self.s3.env() {
            cmd.env(k, v);
        }
        cmd.env("RUST_LOG", "info");
        // The tests say everything on the command line; a developer's settings must not leak in.
        for var in [
            "WICK_COORDINATOR",
            "WICK_STORE",
            "WICK_TOKEN",
            "WICK_TOKEN_FILE",
        ] {
            cmd.env_remove(var);
        }
    }

    /// Starts (or restarts) the coordinator on the cluster's port.
    pub fn start_coordinator(&mut self) {
        let mut cmd = Command::new(binary("coordinator"));
        cmd.args([
            "--listen",
            &format!("127.0.0.1:{}", self.port),
            "--store",
            &self.store,
        ])
        .args([
            "--lease-ttl-ms",
            &LEASE_TTL_MS.to_string(),
            "--heartbeat-ms",
            &HEARTBEAT_MS.to_string(),
        ])
        .args(&self.coordinator_args);
        self.env(&mut cmd);
        let n = self.workers.len();
        let name = format!(
            "coordinator-{n}-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        );
        let (p, _) = Proc::start(
            cmd,
            &name,
            self.dir.path(),
            "listening on",
            Duration::from_secs(60),
        );
        self.coordinator = Some(p);
    }

    /// `http://127.0.0.1:PORT` (`https` when the cluster serves TLS).
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// Starts a worker named `name`; returns its index in `workers`.
    pub fn start_worker(&mut self, name: &str) -> usize {
        let mut cmd = Command::new(binary("worker"));
        cmd.args([
            "serve",
            "--coordinator",
            &self.url(),
            "--store",
            &self.store,
        ])
        .args(["--listen", "127.0.0.1:0", "--name", name, "--device", "cpu"])
        // A checkpoint after every epoch: the fault tests resume trials mid-run.
        .args(["--checkpoint-every-ms", "0"])
        .arg("--cache")
        .arg(self.dir.path().join(format!("cache-{name}")))
        .args(&self.worker_args);
        self.env(&mut cmd);
        let (p, _) = Proc::start(
            cmd,
            name,
            self.dir.path(),
            "listening on",
            Duration::from_secs(60),
        );
        self.workers.push(p);
        self.workers.len() - 1
    }

    /// Runs `client --coordinator URL [--store STORE] --json ARGS` and returns its JSON.
    pub fn client(&self, args: &[&str]) -> serde_json::Value {
        let out = self.client_raw(args);
        assert!(
            out.status.success(),
            "client {args:?} failed: {}\ncoordinator log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.coordinator
                .as_ref()
                .map(Proc::log_text)
                .unwrap_or_default()
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "client {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Runs the client and returns its raw output, whatever the exit status.
    pub fn client_raw(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(binary("client"));
        cmd.args(["--coordinator", &self.url(), "--json"]);
        self.env(&mut cmd);
        if self.client_store {
            cmd.args(["--store", &self.store]);
        } else {
            for (k, _) in self.s3.env() {
                cmd.env_remove(k);
            }
        }
        cmd.args(args);
        cmd.envs(self.client_env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null()).output().unwrap()
    }

    /// The `status --json` trials of `sweep`.
    pub fn trials(&self, sweep: &str) -> Vec<serde_json::Value> {
        self.client(&["status", sweep])["trials"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Waits until every trial of `sweep` is in a final state; returns the trials.
    pub fn wait_done(&self, sweep: &str, timeout: Duration) -> Vec<serde_json::Value> {
        wait_for(timeout, &format!("sweep {sweep} to finish"), || {
            let t = self.trials(sweep);
            let done = t.iter().all(|t| {
                ["succeeded", "failed", "cancelled", "stopped_early"]
                    .contains(&t["state"].as_str().unwrap_or(""))
            });
            done.then_some(t)
        })
    }

    /// Waits (up to 20 s each) until each of `trials` has `files` in the store and its
    /// staging area cleared. Status shows a trial ended once the change is recorded; its
    /// documents and the clean-up settle right after (the ending RPC answers once they have).
    pub fn wait_settled<'a>(&self, trials: impl IntoIterator<Item = &'a str>, files: &[&str]) {
        for id in trials {
            let dir = format!("cluster/trials/{id}/");
            wait_for(
                Duration::from_secs(20),
                &format!("{id}'s {files:?} written and its staging area cleared"),
                || {
                    let keys = self.s3.keys(&dir);
                    let settled = files.iter().all(|f| keys.contains(&format!("{dir}{f}")))
                        && !keys.iter().any(|k| k.contains("/staging/"));
                    settled.then_some(())
                },
            );
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Milliseconds since the Unix epoch of the RFC 3339 UTC timestamp that starts a text log
/// line (`2025-01-02T03:04:05.678901Z  INFO ...`), as the services print them.
pub fn log_line_ms(line: &str) -> Option<i64> {
    let stamp = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    let ms: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    // Days from the civil date (proleptic Gregorian), after H. Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + min) * 60_000 + s * 1000 + ms)
}

/// The metrics a clean run and a faulted one must agree on exactly.
pub const FINAL_METRICS: [&str; 6] = [
    "final_train_acc",
    "final_test_acc",
    "best_test_acc",
    "best_epoch",
    "final_train_loss",
    "final_test_loss",
];

/// The summary of `worker train --task covid --json --data DATA ARGS`: an uninterrupted
/// run through the same training code, to compare a cluster's results with.
pub fn train_locally(data: &Path, args: &[&str]) -> serde_json::Value {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(binary("worker"))
        .args(["train", "--task", "covid", "--json", "--data"])
        .arg(data)
        .args(args)
        .arg("--out")
        .arg(out.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "worker train {args:?}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    serde_json::from_slice(&run.stdout).unwrap()
}
