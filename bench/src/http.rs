//! A minimal HTTP/1.1 keep-alive client over a blocking socket: the load generator needs no
//! more, and writing it here keeps the dependency tree small.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// A response, fully read.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// A header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One kept-alive connection.
pub struct Connection {
    reader: BufReader<TcpStream>,
    token: String,
    /// More header lines (each ending in CRLF) sent with every request.
    extra: String,
}

impl Connection {
    /// Connects to `addr` (`host:port`), sending `token` as the bearer token.
    ///
    /// # Errors
    /// When the connection fails.
    pub fn open(addr: &str, token: &str) -> io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::with_capacity(64 * 1024, stream),
            token: token.to_owned(),
            extra: String::new(),
        })
    }

    /// Sends these header lines (each ending in CRLF) with every request too.
    #[must_use]
    pub fn with_headers(mut self, extra: &str) -> Self {
        extra.clone_into(&mut self.extra);
        self
    }

    /// Posts a form (`application/x-www-form-urlencoded`) with these extra header lines.
    ///
    /// # Errors
    /// On I/O failure or a malformed response.
    pub fn send_form(&mut self, path: &str, body: &str, extra: &str) -> io::Result<Response> {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\n{extra}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.reader.get_mut().write_all(request.as_bytes())?;
        self.read_response()
    }

    /// Sends one request and reads its response.
    ///
    /// # Errors
    /// On I/O failure or a malformed response.
    pub fn send(&mut self, method: &str, path: &str, body: Option<&str>) -> io::Result<Response> {
        let body = body.unwrap_or("");
        let content_type = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/json\r\n"
        };
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {}\r\n{}{content_type}Content-Length: {}\r\n\r\n{body}",
            self.token,
            self.extra,
            body.len()
        );
        self.reader.get_mut().write_all(request.as_bytes())?;
        self.read_response()
    }

    fn read_response(&mut self) -> io::Result<Response> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {line:?}")))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok());
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
        let mut body = Vec::new();
        if let Some(length) = length {
            body.resize(length, 0);
            self.reader.read_exact(&mut body)?;
        } else if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim(), 16)
                    .map_err(|_| io::Error::other("bad chunk size"))?;
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}
