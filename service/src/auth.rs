//! Bearer-token authentication for every wick RPC. One token is shared by the cluster:
//! the coordinator and workers refuse a call without it (`Unauthenticated`), and workers,
//! the coordinator (when it routes inference) and the client attach it. It comes from
//! `--token-file` / `WICK_TOKEN_FILE` (a mounted Kubernetes Secret) or `WICK_TOKEN`;
//! with neither, calls are not checked, which is what embedded mode and loopback tests
//! use. The comparison runs in constant time, and the token never reaches a log line.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use subtle::ConstantTimeEq;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// Environment variable holding the token itself (the file flag wins when both are set).
pub const TOKEN_ENV: &str = "WICK_TOKEN";

/// The `--token-file` flag, shared by every binary.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TokenArgs {
    /// File holding the bearer token that every RPC must carry (e.g. a mounted Kubernetes
    /// Secret). WICK_TOKEN=TOKEN passes the token itself. With neither, calls are not
    /// authenticated: fine on one machine, not on a network others can reach.
    #[arg(long, env = "WICK_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

impl TokenArgs {
    /// The token from `--token-file`, else `WICK_TOKEN`, else none.
    pub fn load(&self) -> Result<Option<Token>> {
        if let Some(path) = &self.token_file {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "cannot read the token file {} (--token-file / WICK_TOKEN_FILE)",
                    path.display()
                )
            })?;
            return Token::new(&text)
                .with_context(|| format!("the token file {} is unusable", path.display()))
                .map(Some);
        }
        match std::env::var(TOKEN_ENV) {
            Ok(text) => Token::new(&text)
                .with_context(|| format!("{TOKEN_ENV} is unusable"))
                .map(Some),
            Err(_) => Ok(None),
        }
    }
}

/// A shared secret. `Debug` hides it.
#[derive(Clone)]
pub struct Token(Arc<str>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl PartialEq for Token {
    fn eq(&self, other: &Token) -> bool {
        bool::from(self.0.as_bytes().ct_eq(other.0.as_bytes()))
    }
}

impl Token {
    /// A token from text; surrounding whitespace (a file's trailing newline) is dropped.
    /// It must be visible ASCII, since it travels in an HTTP/2 header.
    pub fn new(text: &str) -> Result<Token> {
        let t = text.trim();
        if t.is_empty() {
            bail!(
                "the token is empty; put a long random string in it (e.g. `openssl rand -hex 32`)"
            );
        }
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            bail!("the token must be visible ASCII without spaces (e.g. `openssl rand -hex 32`)");
        }
        Ok(Token(t.into()))
    }

    fn header(&self) -> AsciiMetadataValue {
        // `new` admitted only visible ASCII, which is always a valid header value.
        MetadataValue::try_from(format!("Bearer {}", self.0)).expect("visible ASCII")
    }
}

/// Client side: adds `authorization: Bearer TOKEN` to every call (nothing without a token).
#[derive(Clone, Debug, Default)]
pub struct AttachToken(Option<AsciiMetadataValue>);

impl AttachToken {
    /// Attaches `token`, or nothing for `None`.
    pub fn new(token: Option<&Token>) -> Self {
        AttachToken(token.map(Token::header))
    }
}

impl Interceptor for AttachToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel whose calls carry the token.
pub type AuthChannel = InterceptedService<Channel, AttachToken>;

/// Wraps `channel` so its calls carry `token`.
pub fn with_token(channel: Channel, token: Option<&Token>) -> AuthChannel {
    InterceptedService::new(channel, AttachToken::new(token))
}

/// Server side: refuses a call whose bearer token is missing or wrong (everything passes
/// when no token is configured).
#[derive(Clone, Debug, Default)]
pub struct RequireToken(Option<Token>);

impl RequireToken {
    /// Requires `token`, or nothing for `None`.
    pub fn new(token: Option<Token>) -> Self {
        RequireToken(token)
    }
}

impl Interceptor for RequireToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(token) = &self.0 else {
            return Ok(request);
        };
        let sent = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.strip_prefix("Bearer ").unwrap_or(""));
        let problem = match sent {
            None => "no bearer token",
            Some(sent) if bool::from(sent.as_bytes().ct_eq(token.0.as_bytes())) => {
                return Ok(request);
            }
            Some(_) => "a wrong bearer token",
        };
        tracing::warn!(peer = ?request.remote_addr(), "refused a call with {problem}");
        Err(Status::unauthenticated(format!(
            "this call carries {problem}; give the cluster's token with --token-file FILE or WICK_TOKEN"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(server: &mut RequireToken, token: Option<&str>) -> Result<(), Status> {
        let mut client = AttachToken::new(token.map(|t| Token::new(t).unwrap()).as_ref());
        let request = client.call(Request::new(())).unwrap();
        server.call(request).map(|_| ())
    }

    #[test]
    fn the_right_token_passes_and_a_missing_or_wrong_one_is_unauthenticated() {
        let mut server = RequireToken::new(Some(Token::new("s3cret\n").unwrap()));
        call(&mut server, Some("s3cret")).unwrap();
        let missing = call(&mut server, None).unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
        assert!(missing.message().contains("no bearer token"), "{missing:?}");
        let wrong = call(&mut server, Some("s3cre")).unwrap_err();
        assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
        assert!(wrong.message().contains("wrong"), "{wrong:?}");
        assert!(
            !wrong.message().contains("s3cre"),
            "the message shows the token"
        );
    }

    #[test]
    fn without_a_configured_token_everything_passes() {
        call(&mut RequireToken::default(), None).unwrap();
        call(&mut RequireToken::default(), Some("anything")).unwrap();
    }

    #[test]
    fn bad_tokens_are_refused_with_a_hint_and_debug_hides_the_secret() {
        assert!(Token::new("  \n").is_err());
        let e = Token::new("two words").unwrap_err().to_string();
        assert!(e.contains("visible ASCII"), "{e}");
        assert_eq!(format!("{:?}", Token::new("abc").unwrap()), "Token(..)");
    }

    #[test]
    fn the_file_wins_and_a_missing_file_is_named() {
        let dir = std::env::temp_dir().join(format!("wick-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let args = TokenArgs {
            token_file: Some(file.clone()),
        };
        let t = args.load().unwrap().unwrap();
        assert_eq!(&*t.0, "from-file");
        let e = TokenArgs {
            token_file: Some(dir.join("nope")),
        }
        .load()
        .unwrap_err()
        .to_string();
        assert!(e.contains("nope") && e.contains("--token-file"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
