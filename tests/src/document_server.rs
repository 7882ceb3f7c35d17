//! A small https server for client ID metadata documents, with a test certificate for
//! `localhost` (see `fixtures/tls/README.md`): each path answers what the test set, and counts
//! how often it was asked. Speaks just enough HTTP/1.1 (one request per connection).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// What a path answers.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// Headers besides `content-length` and `connection`.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Reply {
    /// A `status` answer with `body` and no other header.
    pub fn status(status: u16, body: &[u8]) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.to_vec(),
            delay: Duration::ZERO,
        }
    }

    /// A JSON document with this `Cache-Control`.
    pub fn json(document: &serde_json::Value, cache_control: &str) -> Self {
        Self {
            status: 200,
            headers: vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("cache-control".to_owned(), cache_control.to_owned()),
            ],
            body: document.to_string().into_bytes(),
            delay: Duration::ZERO,
        }
    }
}

/// The metadata document of a native public client (an MCP tool, say) published at `url`.
pub fn native_document(url: &str, name: &str) -> serde_json::Value {
    serde_json::json!({
        "client_id": url,
        "client_name": name,
        "client_uri": "https://tool.example.com",
        "redirect_uris": ["http://127.0.0.1/callback", "https://tool.example.com/callback"],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
        "scope": "openid profile",
        "software_id": "mcp-tool",
        "software_version": "1.0.0",
    })
}

/// The CA certificate the server's certificate chains to: give it to the registry under test.
pub fn test_ca() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls/ca.pem")
}

type Routes = Arc<Mutex<HashMap<String, (Reply, usize)>>>;

/// The running server.
#[derive(Debug, Clone)]
pub struct DocumentServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    routes: Routes,
}

impl DocumentServer {
    /// Starts one on a free port.
    ///
    /// # Panics
    /// When the fixtures are unreadable or no port is free.
    pub async fn start() -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls");
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(dir.join("server.pem"))
                .and_then(Iterator::collect)
                .expect("the test server certificate");
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("its key");
        let config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("a TLS configuration");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("its address").port();
        let routes: Routes = Arc::default();
        let served = routes.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, routes) = (acceptor.clone(), served.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        let _ = answer(tls, &routes).await;
                    }
                });
            }
        });
        Self { port, routes }
    }

    /// The URL of `path` here (`https://localhost:<port><path>`).
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// Makes `path` answer `reply` from now on.
    pub fn set(&self, path: &str, reply: Reply) {
        let mut routes = self.routes.lock().expect("routes");
        let hits = routes.get(path).map_or(0, |(_, hits)| *hits);
        routes.insert(path.to_owned(), (reply, hits));
    }

    /// How often `path` was asked for.
    pub fn hits(&self, path: &str) -> usize {
        let routes = self.routes.lock().expect("routes");
        routes.get(path).map_or(0, |(_, hits)| *hits)
    }
}

async fn answer<S>(mut stream: S, routes: &Routes) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut head = Vec::new();
    let mut buffer = [0_u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let text = String::from_utf8_lossy(&head);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let reply = {
        let mut routes = routes.lock().expect("routes");
        routes.get_mut(&path).map(|(reply, hits)| {
            *hits += 1;
            reply.clone()
        })
    };
    let reply = reply.unwrap_or_else(|| Reply::status(404, b"not here"));
    tokio::time::sleep(reply.delay).await;
    let mut out = format!(
        "HTTP/1.1 {} Test\r\ncontent-length: {}\r\nconnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes()).await?;
    stream.write_all(&reply.body).await?;
    stream.shutdown().await
}
