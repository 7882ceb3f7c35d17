//! The guarded fetch of a client ID metadata document: `https` only, no redirects, a resolver
//! that refuses loopback, private and link-local addresses (the addresses it answers are the
//! only ones connected to, so a name that changes its answer between a check and the
//! connection cannot slip through), one timeout for the connection and the whole body, and a
//! size cap read as the body arrives.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_LENGTH};
use reqwest::redirect::Policy;
use reqwest::StatusCode;

/// Why a document could not be used: shown to administrators, recorded with the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    /// What the fetch or the document broke.
    pub reason: String,
    /// A passing trouble of its server (no answer in time, unreachable, a 5xx or 429): a
    /// known client's last version may serve a while. Anything else (a 404, a redirect, a
    /// document that breaks a rule) is the document's answer, and stands at once.
    pub transient: bool,
}

impl Refusal {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            transient: false,
        }
    }

    fn transient(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            transient: true,
        }
    }
}

/// A fetched document: its body and the freshness its server gave.
#[derive(Debug)]
pub struct Fetched {
    /// The bytes, at most the configured cap.
    pub body: Vec<u8>,
    /// `Cache-Control: max-age`, or zero for `no-store`/`no-cache`; `None` when not given.
    pub max_age: Option<Duration>,
}

/// The resolver: system name resolution, then only public addresses (unless configured).
#[derive(Debug)]
struct GuardedResolver {
    allow_private: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("its host resolves only to loopback, private or link-local addresses")]
struct PrivateOnly;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let usable: Vec<SocketAddr> = found
                .filter(|address| allow_private || is_public(address.ip()))
                .collect();
            if usable.is_empty() {
                return Err(Box::new(PrivateOnly) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(usable.into_iter()) as Addrs)
        })
    }
}

/// Whether an address is on the public internet: not loopback, private (RFC 1918, RFC 4193),
/// link-local, shared (RFC 6598), unspecified, multicast, broadcast or documentation; an
/// IPv4-mapped IPv6 address is judged as its IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
    }
}

/// The IPv4 address an IPv6 address carries and is routed to: IPv4-mapped and -compatible
/// (`::ffff:a.b.c.d`, `::a.b.c.d`; `::1` reads as 0.0.0.1, refused), NAT64 (`64:ff9b::/96`)
/// and 6to4 (`2002:AABB:CCDD::/48`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let last = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0 | 0xffff, ..] => Some(last),
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => Some(last),
        [0x2002, a, b, ..] => Some(Ipv4Addr::new(
            (a >> 8) as u8,
            a as u8,
            (b >> 8) as u8,
            b as u8,
        )),
        _ => None,
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 88 && c == 99)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        || (s[0] == 0x2001 && (s[1] == 0x0db8 || s[1] == 0))
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])
        || s[0] == 0x0064 && s[1] == 0xff9b)
}

/// How documents are fetched.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// Connect to loopback, private and link-local addresses too (tests, private networks).
    pub allow_private_addresses: bool,
    /// Certificates (PEM) to trust beside the public roots.
    pub extra_roots_pem: Option<Vec<u8>>,
    /// For the connection and the whole answer.
    pub timeout: Duration,
    /// The largest document, in bytes.
    pub max_bytes: usize,
}

/// Fetches documents, guarded.
#[derive(Debug, Clone)]
pub struct Fetcher {
    http: reqwest::Client,
    settings: FetchSettings,
}

impl Fetcher {
    /// A fetcher with these settings.
    ///
    /// # Errors
    /// Unreadable extra root certificates, or no TLS backend.
    pub fn new(settings: FetchSettings) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .redirect(Policy::none())
            .no_proxy()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("client-registry/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: settings.allow_private_addresses,
            }));
        if let Some(pem) = &settings.extra_roots_pem {
            for certificate in reqwest::Certificate::from_pem_bundle(pem)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(Self {
            http: builder.build()?,
            settings,
        })
    }

    /// The document at `url`, or why not.
    ///
    /// # Errors
    /// A [`Refusal`] naming the rule the fetch broke.
    pub async fn fetch(&self, url: &str) -> Result<Fetched, Refusal> {
        let max = self.settings.max_bytes;
        let mut response = (self.http.get(url))
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| self.explain(&e))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(Refusal::new(format!(
                "its server answered a redirect ({status}); redirects are not followed"
            )));
        }
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(Refusal::transient(format!("its server answered {status}")));
        }
        if status != StatusCode::OK {
            return Err(Refusal::new(format!("its server answered {status}")));
        }
        let declared = (response.headers().get(CONTENT_LENGTH))
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > max as u64) {
            return Err(too_large(max));
        }
        let max_age = max_age(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.explain(&e))? {
            if body.len() + chunk.len() > max {
                return Err(too_large(max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, max_age })
    }

    fn explain(&self, error: &reqwest::Error) -> Refusal {
        let mut source: Option<&dyn std::error::Error> = Some(error);
        while let Some(e) = source {
            if e.is::<PrivateOnly>() {
                return Refusal::new(PrivateOnly.to_string());
            }
            source = e.source();
        }
        if error.is_timeout() {
            Refusal::transient(format!(
                "its server did not answer in full within {} ms",
                self.settings.timeout.as_millis()
            ))
        } else if error.is_connect() {
            Refusal::transient(
                "its server could not be reached over https with a trusted certificate",
            )
        } else {
            Refusal::transient("its server's answer could not be read")
        }
    }
}

fn too_large(max: usize) -> Refusal {
    Refusal::new(format!("it is larger than {max} bytes"))
}

/// The freshness a `Cache-Control` header gives: `no-store` and `no-cache` none, else its
/// `max-age`.
fn max_age(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let mut age = None;
    for value in headers.get_all(CACHE_CONTROL) {
        for directive in value.to_str().unwrap_or_default().split(',') {
            let directive = directive.trim().to_ascii_lowercase();
            if directive == "no-store" || directive == "no-cache" {
                return Some(Duration::ZERO);
            }
            if let Some(seconds) = directive.strip_prefix("max-age=") {
                age = seconds
                    .trim_matches('"')
                    .parse()
                    .ok()
                    .map(Duration::from_secs);
            }
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::7f00:1",
            "::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "100::1",
            "fec0::1",
            "192.0.0.8",
            "198.18.0.1",
            "192.88.99.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn cache_control_gives_the_freshness() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(max_age(&headers), None);
        headers.insert(CACHE_CONTROL, "public, max-age=600".parse().unwrap());
        assert_eq!(max_age(&headers), Some(Duration::from_secs(600)));
        headers.insert(CACHE_CONTROL, "max-age=600, no-store".parse().unwrap());
        assert_eq!(max_age(&headers), Some(Duration::ZERO));
    }
}
