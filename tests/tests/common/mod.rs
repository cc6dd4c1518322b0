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
    assert!(!in_ci(), "CI=true but the shared data is missing at {}", dir.display());
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
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let path = dir.join(name);
    assert!(path.exists(), "{} is not built; run the tests with `cargo test --workspace`", path.display());
    path
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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
    pub fn start(mut cmd: Command, name: &str, dir: &Path, ready: &str, timeout: Duration) -> (Proc, String) {
        let log = dir.join(format!("{name}.log"));
        cmd.stdout(Stdio::null()).stderr(Stdio::piped()).stdin(Stdio::null());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
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
            panic!("{name} did not become ready in {timeout:?}; its log:\n{}", std::fs::read_to_string(&log).unwrap_or_default())
        });
        (Proc { child, log, name: name.to_string() }, line)
    }

    /// Starts `cmd` with stdout and stderr into `dir/<name>.log`, and waits until `port`
    /// on 127.0.0.1 accepts connections.
    pub fn start_on_port(mut cmd: Command, name: &str, dir: &Path, port: u16, timeout: Duration) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        cmd.stdout(file.try_clone().unwrap()).stderr(file).stdin(Stdio::null());
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let proc = Proc { child, log, name: name.to_string() };
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
        let _ = Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address printed after "listening on " in a ready line.
pub fn addr_in(line: &str) -> String {
    let at = line.find("listening on ").expect("a 'listening on ADDR' line") + "listening on ".len();
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
        .map(|p| std::env::split_paths(&p).map(|d| d.join("s3s-fs")).collect())
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
            assert!(!in_ci(), "CI=true but s3s-fs is not installed (see .ci/run)");
            eprintln!("note: s3s-fs is not installed (cargo install s3s-fs --version 0.14.1 --features binary --locked); skipping");
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
        Some(S3 { proc, root, endpoint: format!("http://127.0.0.1:{port}"), bucket })
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
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
