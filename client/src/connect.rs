//! The client's link to a coordinator: a remote one (`--coordinator URL`), or an embedded
//! one started in this process for the length of one command. Either way every command
//! talks gRPC over a `Channel`, so embedded mode exercises exactly the remote code path.
//! Also turns gRPC statuses into the one-line messages users see.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use tonic::transport::Endpoint;
use tonic::{Code, Response, Status};
use wick_common::store::Store;
use wick_proto::v1::sweeps_client::SweepsClient;
use wick_service::auth::{AuthChannel, Token, with_token};
use wick_service::tls::Tls;

use crate::cli::Global;
use crate::embedded::Embedded;

/// Largest message taken from the coordinator: a VAE's weights for 64 x 64 images, fetched
/// with `artifacts get`, are tens of megabytes, far above tonic's 4 MB default.
const MAX_MESSAGE: usize = 1 << 30;
/// How long connecting to a remote coordinator may take before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an embedded inference call waits for the in-process workers to register
/// (they start with the command, so the first call can beat them).
const WORKER_WAIT: Duration = Duration::from_secs(10);
/// Pause between those attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// A connection to the coordinator for one command.
pub struct Session {
    /// Client of the coordinator's Sweeps API (cheap to clone).
    pub sweeps: SweepsClient<AuthChannel>,
    /// The coordinator's address, for messages.
    pub target: String,
    /// The store the client may write datasets into: the embedded one, or `--store`.
    pub store: Option<Store>,
    /// The in-process servers, in embedded mode.
    embedded: Option<Embedded>,
}

/// `http://` added to a bare `host:port`.
fn normalise(url: &str) -> String {
    match url.contains("://") {
        true => url.trim_end_matches('/').to_string(),
        false => format!("http://{url}"),
    }
}

/// A channel to `url`, or an error that says how to get one.
async fn connect(
    url: &str,
    token: Option<&Token>,
    tls: &Tls,
    embedded: bool,
) -> Result<SweepsClient<AuthChannel>> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .with_context(|| format!("'{url}' is not a coordinator URL; use http://HOST:PORT"))?;
    let endpoint = tls.endpoint(endpoint)?.connect_timeout(CONNECT_TIMEOUT);
    let channel = endpoint.connect().await.map_err(|e| match embedded {
        true => anyhow!(
            "the embedded coordinator at {url} did not answer: {}",
            causes(&e)
        ),
        false => unreachable(url, &causes(&e)),
    })?;
    Ok(SweepsClient::new(with_token(channel, token)).max_decoding_message_size(MAX_MESSAGE))
}

/// An error and its causes on one line (tonic's transport error alone says only
/// "transport error").
fn causes(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        parts.push(c.to_string());
        cur = c.source();
    }
    parts.join(": ")
}

/// The message for a coordinator that cannot be reached.
fn unreachable(url: &str, why: &str) -> anyhow::Error {
    anyhow!(
        "cannot reach the coordinator at {url} ({why}): start it there (coordinator --listen HOST:PORT --store URL), or leave out --coordinator and WICK_COORDINATOR to run embedded in this process; a coordinator serving TLS needs an https:// URL and --tls-ca FILE"
    )
}

impl Session {
    /// Connects to `--coordinator`, or starts an embedded coordinator with `workers`
    /// workers over the store in `--home`.
    pub async fn open(g: &Global, workers: u32) -> Result<Session> {
        if let Some(url) = &g.coordinator {
            let target = normalise(url);
            let (token, tls) = (g.token()?, g.tls()?);
            let target = match (url.contains("://"), tls.dials_tls()) {
                (false, true) => format!("https://{url}"),
                _ => target,
            };
            let sweeps = connect(&target, token.as_ref(), &tls, false).await?;
            let store = g.store.as_deref().map(Store::open).transpose()?;
            return Ok(Session {
                sweeps,
                target,
                store,
                embedded: None,
            });
        }
        let embedded = Embedded::start(&g.home, workers, &g.device).await?;
        let target = embedded.url().to_string();
        // The embedded servers check no token, so none is sent.
        let sweeps = match connect(&target, None, &Tls::default(), true).await {
            Ok(s) => s,
            Err(e) => return Err(embedded.stop().await.err().unwrap_or(e)),
        };
        let store = Some(embedded.store().clone());
        Ok(Session {
            sweeps,
            target,
            store,
            embedded: Some(embedded),
        })
    }

    /// True when the coordinator runs inside this process.
    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// Resolves with the reason when an embedded server stops on its own (it never
    /// resolves in cluster mode), so a command waiting on the stream does not wait forever.
    pub fn server_failure(&self) -> impl Future<Output = anyhow::Error> + use<> {
        let failure = self.embedded.as_ref().map(Embedded::failure);
        async move {
            match failure {
                Some(f) => f.await,
                None => std::future::pending().await,
            }
        }
    }

    /// Runs an inference call; in embedded mode an Unavailable answer (no worker has
    /// registered yet) is retried for a few seconds.
    pub async fn inference<T, F, Fut>(&self, mut call: F) -> Result<T, Status>
    where
        F: FnMut(SweepsClient<AuthChannel>) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let deadline = Instant::now() + WORKER_WAIT;
        loop {
            match call(self.sweeps.clone()).await {
                Err(s)
                    if s.code() == Code::Unavailable
                        && self.is_embedded()
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(RETRY_PAUSE).await
                }
                r => return r.map(Response::into_inner),
            }
        }
    }

    /// Stops the embedded servers (workers first, so they hand their leases back to a
    /// coordinator that is still there to record it).
    pub async fn close(self) -> Result<()> {
        match self.embedded {
            Some(e) => e.stop().await,
            None => Ok(()),
        }
    }
}

/// Replaces a gRPC status inside `e` by a message a person can act on; other errors are
/// returned as they are.
pub fn explain(e: anyhow::Error, target: &str, embedded: bool) -> anyhow::Error {
    let Some(s) = e.downcast_ref::<Status>() else {
        return e;
    };
    // A status made from a connection failure carries its cause (a reply never does), or
    // is an HTTP/2 protocol failure, or a call cancelled under the client (which never
    // cancels its own calls): what a plain-text call to a TLS port ends in, depending on
    // when the server drops the connection.
    let transport = std::error::Error::source(s).is_some()
        || s.message().starts_with("h2 protocol error")
        || s.code() == Code::Cancelled;
    match s.code() {
        Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
            if transport && !embedded =>
        {
            unreachable(target, &causes(s))
        }
        Code::Unavailable if transport => anyhow!(
            "the embedded coordinator stopped answering: {}",
            s.message()
        ),
        Code::Unimplemented => anyhow!(
            "the coordinator at {target} does not know this call ({}); the client and coordinator are different versions",
            s.message()
        ),
        code if s.message().is_empty() => {
            anyhow!("the coordinator answered {code:?} with no message")
        }
        _ => anyhow!("{}", s.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_become_plain_messages() {
        let e = explain(
            Status::not_found("no sweep 's-x'; see `client list`").into(),
            "http://h:1",
            false,
        );
        assert_eq!(e.to_string(), "no sweep 's-x'; see `client list`");
        let e = explain(Status::unimplemented("").into(), "http://h:1", false);
        assert!(e.to_string().contains("different versions"), "{e}");
        let other = explain(anyhow!("plain"), "http://h:1", false);
        assert_eq!(other.to_string(), "plain");
        assert_eq!(normalise("127.0.0.1:50051"), "http://127.0.0.1:50051");
    }

    #[tokio::test]
    async fn an_unreachable_coordinator_names_its_address_and_embedded_mode() {
        // Bind then drop a listener: the port is free and nothing answers there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let e = connect(&url, None, &Tls::default(), false)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&url) && e.contains("leave out --coordinator"),
            "{e}"
        );
    }
}
