//! Every HTTP request this node makes to another system: one client that only reaches public
//! addresses (or the ones the operator allows), so a URL someone else chose cannot aim it inward.
//!
//! Why it is built this way:
//! - The host is resolved by us, and every address it resolves to is checked; one private address
//!   refuses the URL, so a name with a public and a private record cannot slip through.
//! - The client's own resolver does the checking ([`GuardedResolver`]), so the addresses connected
//!   to are the ones checked: a name that changes its records between the check and the connect
//!   (DNS rebinding) is refused at connect time too. reqwest does not resolve IP literals, so
//!   those are checked before the request is built.
//! - Redirects are never followed (a 3xx is returned as it is) and proxies from the environment
//!   are ignored: either would send the request somewhere that was not checked.
//! - Only the first [`MAX_RESPONSE_BYTES`] of an answer are read; a receiver cannot make us
//!   buffer an unbounded body.

mod addresses;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Url;

use addresses::forbidden;

/// How much of an answer is kept; the rest is never read.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// The longest URL saved or called (the endpoints' column holds 2,048).
pub const MAX_URL_BYTES: usize = 2048;
/// How long checking a URL may take when it is saved.
const VET_TIMEOUT: Duration = Duration::from_secs(5);

/// The setting that exempts hosts and networks from the private-address rule.
const SETTING: &str = "INTERLINK_OUTBOUND_ALLOW";

/// Hosts and networks exempted from the private-address rule (`INTERLINK_OUTBOUND_ALLOW`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    /// Lower-case, without a trailing dot.
    hosts: Vec<String>,
    nets: Vec<IpNet>,
}

impl OutboundPolicy {
    /// A comma-separated list of host names (exact, case-insensitive), addresses and networks:
    /// `localhost, 127.0.0.1, 10.0.0.0/8, ::1/128`. Empty entries are skipped.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut policy = Self::none();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                policy.nets.push(net.trunc());
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                policy.nets.push(IpNet::from(ip));
            } else if let Some(host) = host_name(entry) {
                policy.hosts.push(host);
            } else {
                return Err(format!(
                    "{SETTING}: {entry:?} is not a host name, an address or a network (CIDR)"
                ));
            }
        }
        Ok(policy)
    }

    /// Nothing exempted: only public addresses are reached.
    pub fn none() -> Self {
        Self::default()
    }

    fn allows_host(&self, host: &str) -> bool {
        let host = normalise_host(host);
        self.hosts.contains(&host)
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        let canonical = ip.to_canonical();
        self.nets
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
    }
}

fn normalise_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// A DNS name as an allow-list entry: letters, digits, '-', '_' and dots between labels.
fn host_name(entry: &str) -> Option<String> {
    let host = normalise_host(entry);
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    valid.then_some(host)
}

/// Why a URL or a host was not let through.
#[derive(Debug)]
enum Refusal {
    /// The URL is malformed or its address is not allowed: no point trying again.
    Refused(String),
    /// The name did not resolve; it may later.
    Unresolved(String),
}

impl Refusal {
    fn message(self) -> String {
        match self {
            Self::Refused(m) | Self::Unresolved(m) => m,
        }
    }
}

/// The resolver's refusal, found again in reqwest's error chain.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RefusedAtConnect(String);

type LookupFuture = Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;
type Lookup = dyn Fn(String) -> LookupFuture + Send + Sync;

fn system_lookup(host: String) -> LookupFuture {
    Box::pin(async move {
        Ok(tokio::net::lookup_host((host.as_str(), 0))
            .await?
            .map(|addr| addr.ip())
            .collect())
    })
}

/// The policy and the way names are looked up, shared by `vet` and the client's resolver.
struct Guard {
    policy: OutboundPolicy,
    lookup: Box<Lookup>,
}

impl Guard {
    fn check_ip(&self, ip: IpAddr) -> Result<(), &'static str> {
        if self.policy.allows_ip(ip) {
            return Ok(());
        }
        forbidden(ip).map_or(Ok(()), Err)
    }

    /// Resolves `name` and checks every address. The refusal does not name the address a name
    /// resolved to (the URL's owner need not learn our internal DNS); the log does.
    async fn resolve_checked(&self, name: &str) -> Result<Vec<IpAddr>, Refusal> {
        let trusted = self.policy.allows_host(name);
        let unresolved = || Refusal::Unresolved(format!("the host {name} could not be resolved"));
        let addresses = (self.lookup)(name.to_owned())
            .await
            .map_err(|_| unresolved())?;
        if addresses.is_empty() {
            return Err(unresolved());
        }
        if !trusted {
            for ip in &addresses {
                if let Err(kind) = self.check_ip(*ip) {
                    tracing::warn!(host = name, address = %ip, kind, "outbound address refused");
                    return Err(Refusal::Refused(format!(
                        "the host {name} resolves to a private address ({kind}), which is not allowed ({SETTING})"
                    )));
                }
            }
        }
        Ok(addresses)
    }

    /// Parses and checks a URL; an allow-listed host name is not resolved here.
    async fn check_url(&self, raw: &str) -> Result<Url, Refusal> {
        let refused = |m: &str| Refusal::Refused(m.to_owned());
        let url = Url::parse(raw).map_err(|e| Refusal::Refused(format!("not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refused("only http and https URLs are accepted"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refused(
                "a URL with a user name or password is not accepted",
            ));
        }
        let Some(host) = url.host_str().map(str::to_owned) else {
            return Err(refused("the URL has no host"));
        };
        // The parser has normalised the host: IPv6 literals in brackets, IPv4 in dotted form.
        let literal = host
            .as_str()
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&host)
            .parse::<IpAddr>();
        let Ok(ip) = literal else {
            if !self.policy.allows_host(&host) {
                self.resolve_checked(&host).await?;
            }
            return Ok(url);
        };
        self.check_ip(ip).map_err(|kind| {
            Refusal::Refused(format!(
                "the address {ip} is private ({kind}) and not allowed ({SETTING})"
            ))
        })?;
        Ok(url)
    }
}

/// The client's resolver: it resolves and checks in one step, so the addresses it hands to the
/// connector are exactly the checked ones.
struct GuardedResolver(Arc<Guard>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0.clone();
        let name = name.as_str().to_owned();
        Box::pin(async move {
            match guard.resolve_checked(&name).await {
                Ok(addresses) => {
                    let addrs: Addrs =
                        Box::new(addresses.into_iter().map(|ip| SocketAddr::new(ip, 0)));
                    Ok(addrs)
                }
                Err(Refusal::Refused(m)) => Err(Box::new(RefusedAtConnect(m)) as _),
                Err(Refusal::Unresolved(m)) => Err(m.into()),
            }
        })
    }
}

/// The one HTTP client for outgoing requests. Cheap to clone.
#[derive(Clone)]
pub struct Outbound(Arc<Inner>);

struct Inner {
    client: reqwest::Client,
    guard: Arc<Guard>,
}

/// An answer: its status and the start of its body.
#[derive(Debug)]
pub struct OutboundResponse {
    pub status: u16,
    /// The first [`MAX_RESPONSE_BYTES`] of the body, no more.
    pub body: bytes::Bytes,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The URL is malformed, or its address is not allowed. Retrying cannot help.
    #[error("{0}")]
    Refused(String),
    /// No complete answer within the time given.
    #[error("the endpoint did not answer in time")]
    Timeout,
    /// Resolution, connection, TLS or protocol failure; may succeed later.
    #[error("{0}")]
    Network(String),
}

impl OutboundError {
    /// Short, free of internal detail, safe to show to the endpoint's owner.
    pub fn public_reason(&self) -> String {
        match self {
            // Built to be shown: the URL's own problem, never an address a name resolved to.
            Self::Refused(m) => m.clone(),
            Self::Timeout => "the endpoint did not answer in time".to_owned(),
            Self::Network(_) => "the endpoint could not be reached".to_owned(),
        }
    }
}

/// An error and its causes, for the log and the job's detail (not for the endpoint's owner).
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn refused_at_connect(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<RefusedAtConnect>() {
            return Some(refused.0.clone());
        }
        current = e.source();
    }
    None
}

fn classify(err: reqwest::Error) -> OutboundError {
    if err.is_timeout() {
        return OutboundError::Timeout;
    }
    if let Some(m) = refused_at_connect(&err) {
        return OutboundError::Refused(m);
    }
    OutboundError::Network(describe(&err.without_url()))
}

impl Outbound {
    pub fn new(policy: OutboundPolicy) -> anyhow::Result<Self> {
        Self::with_lookup(policy, Box::new(system_lookup))
    }

    fn with_lookup(policy: OutboundPolicy, lookup: Box<Lookup>) -> anyhow::Result<Self> {
        let guard = Arc::new(Guard { policy, lookup });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("interlink/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver(guard.clone())))
            .build()?;
        Ok(Self(Arc::new(Inner { client, guard })))
    }

    /// When a URL is saved: absolute http/https with a host, no userinfo; IP literal or every
    /// address the host resolves to must be public (or allowed). Err is a short sentence for
    /// BAD_USER_INPUT.
    pub async fn vet(&self, raw: &str) -> Result<reqwest::Url, String> {
        if raw.len() > MAX_URL_BYTES {
            return Err(format!("a URL has at most {MAX_URL_BYTES} characters"));
        }
        // Callers vet inside a write: a resolver that never answers must not hold it open.
        tokio::time::timeout(VET_TIMEOUT, self.0.guard.check_url(raw))
            .await
            .unwrap_or_else(|_| {
                Err(Refusal::Unresolved(
                    "looking up the host took too long".into(),
                ))
            })
            .map_err(Refusal::message)
    }

    /// One POST. Re-vets at send time (DNS may have changed), connects only to the vetted
    /// addresses.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<OutboundResponse, OutboundError> {
        let started = Instant::now();
        // One deadline for all of it, the pre-check's lookup included; reqwest's own timeout
        // (which covers the body too) is the same.
        tokio::time::timeout(timeout, self.exchange(url, headers, body, timeout, started))
            .await
            .unwrap_or(Err(OutboundError::Timeout))
    }

    async fn exchange(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
        timeout: Duration,
        started: Instant,
    ) -> Result<OutboundResponse, OutboundError> {
        // Refuses early with a clear reason; the resolver checks again at connect time.
        let url = self.0.guard.check_url(url).await.map_err(|r| match r {
            Refusal::Refused(m) => OutboundError::Refused(m),
            Refusal::Unresolved(m) => OutboundError::Network(m),
        })?;
        let mut request = self.0.client.post(url).timeout(timeout).body(body);
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| OutboundError::Refused(format!("{name:?} is not a header name")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| OutboundError::Refused(format!("the {name} header is not valid")))?;
            request = request.header(name, value);
        }
        let mut response = request.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let mut kept = Vec::new();
        while kept.len() < MAX_RESPONSE_BYTES {
            let Some(chunk) = response.chunk().await.map_err(classify)? else {
                break;
            };
            let room = MAX_RESPONSE_BYTES - kept.len();
            kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        // The rest of the body is dropped with the response, unread.
        Ok(OutboundResponse {
            status,
            body: bytes::Bytes::from(kept),
            elapsed: started.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const SECOND: Duration = Duration::from_secs(1);

    fn outbound(allow: &str) -> anyhow::Result<Outbound> {
        Outbound::new(OutboundPolicy::parse(allow).map_err(anyhow::Error::msg)?)
    }

    /// A local receiver counting its requests; answers with `router`'s handler.
    struct Receiver {
        port: u16,
        hits: Arc<AtomicUsize>,
        server: tokio::task::JoinHandle<()>,
    }

    impl Drop for Receiver {
        fn drop(&mut self) {
            self.server.abort();
        }
    }

    impl Receiver {
        async fn start<H, T>(handler: H) -> anyhow::Result<Self>
        where
            H: axum::handler::Handler<T, ()>,
            T: 'static,
        {
            let hits = Arc::new(AtomicUsize::new(0));
            let counted = hits.clone();
            let router = axum::Router::new()
                .fallback(handler)
                .layer(axum::middleware::from_fn(
                    move |request: axum::extract::Request, next: axum::middleware::Next| {
                        counted.fetch_add(1, Ordering::SeqCst);
                        async move { next.run(request).await }
                    },
                ));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let port = listener.local_addr()?.port();
            let server = tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            });
            Ok(Self { port, hits, server })
        }

        fn url(&self) -> String {
            format!("http://127.0.0.1:{}/hook", self.port)
        }

        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }
    }

    #[tokio::test]
    async fn private_and_special_addresses_are_refused() -> anyhow::Result<()> {
        let out = outbound("")?;
        for url in [
            "http://127.0.0.1/",
            "http://127.8.9.10:8080/x",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://10.0.0.1/",
            "http://172.16.0.1/",
            "http://172.31.255.255/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/",
            "http://100.64.0.1/",
            "http://100.127.255.254/",
            "http://[fc00::1]/",
            "http://[fd12:3456::1]/",
            "http://0.0.0.0/",
            "http://0.1.2.3/",
            "http://[::]/",
            "http://224.0.0.1/",
            "http://239.255.255.250/",
            "http://[ff02::1]/",
            "http://255.255.255.255/",
            "http://240.0.0.1/",
            "http://[::ffff:10.0.0.1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::127.0.0.1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[64:ff9b:1::1]/",
            "http://[2002:7f00:1::1]/",
            "http://[2002:a00:1::1]/",
            "http://[2001:db8::1]/",
            "http://[2001::1]/",
            "http://[fec0::1]/",
            "http://198.18.0.1/",
            "http://192.0.2.1/",
            "http://198.51.100.7/",
            "http://203.0.113.9/",
            // Other spellings of 127.0.0.1, normalised by the URL parser.
            "http://2130706433/",
            "http://0x7f.0.0.1/",
            "http://127.1/",
        ] {
            let refused = out.vet(url).await;
            assert!(refused.is_err(), "{url} was let through");
        }
        let refused = out.vet("http://127.0.0.1:9/x").await;
        assert_eq!(
            refused,
            Err("the address 127.0.0.1 is private (loopback) and not allowed (INTERLINK_OUTBOUND_ALLOW)".to_owned())
        );
        Ok(())
    }

    #[tokio::test]
    async fn public_addresses_and_only_http_urls_pass() -> anyhow::Result<()> {
        let out = outbound("")?;
        for url in [
            "https://1.1.1.1/hook",
            "http://8.8.8.8:8080/x?y=1",
            "https://[2606:4700:4700::1111]/",
            "http://[64:ff9b::808:808]/",
            "http://[2002:808:808::1]/",
            "http://172.32.0.1/",
            "http://100.128.0.1/",
        ] {
            assert!(out.vet(url).await.is_ok(), "{url} was refused");
        }
        for url in [
            "file:///etc/passwd",
            "ftp://1.1.1.1/y",
            "not a url",
            "/relative/path",
            "http://user:pw@1.1.1.1/",
            "http://user@1.1.1.1/",
            "gopher://1.1.1.1/",
        ] {
            assert!(out.vet(url).await.is_err(), "{url} was let through");
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused() -> anyhow::Result<()> {
        let out = outbound("")?;
        let refused = out.vet("http://localhost:9/x").await;
        let message = refused.err().unwrap_or_default();
        assert!(message.contains("not allowed"), "{message}");
        // The owner is not told which address the name resolved to.
        assert!(!message.contains("127.0.0.1"), "{message}");
        let refused = out.post("http://localhost:9/x", &[], vec![], SECOND).await;
        assert!(
            matches!(refused, Err(OutboundError::Refused(_))),
            "{refused:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn the_allow_list_admits_by_network_and_by_host() -> anyhow::Result<()> {
        let by_net = outbound("127.0.0.0/8, ::1/128")?;
        for url in [
            "http://127.0.0.1:9/x",
            "http://127.0.0.5/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:9/x",
        ] {
            assert!(by_net.vet(url).await.is_ok(), "{url} was refused");
        }
        assert!(by_net.vet("http://10.0.0.1/").await.is_err());
        let by_host = outbound("LocalHost")?;
        assert!(by_host.vet("http://localhost:9/x").await.is_ok());
        assert!(by_host.vet("http://LOCALHOST./x").await.is_ok());
        assert!(by_host.vet("http://127.0.0.1:9/x").await.is_err());
        Ok(())
    }

    #[test]
    fn the_allow_list_is_parsed_strictly() {
        assert_eq!(OutboundPolicy::parse(" , "), Ok(OutboundPolicy::none()));
        assert!(OutboundPolicy::parse("127.0.0.1, 10.0.0.0/8, ::1, fd00::/8, a.example").is_ok());
        for bad in [
            "10.0.0.0/33",
            "http://x",
            "a b",
            "10.0.0.0/8/1",
            "*.example",
            "[::1]",
        ] {
            let refused = OutboundPolicy::parse(bad);
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|m| m.contains("INTERLINK_OUTBOUND_ALLOW")),
                "{bad}: {refused:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_allowed_local_receiver_is_reached() -> anyhow::Result<()> {
        let receiver = Receiver::start(|body: String| async move { format!("got {body}") }).await?;
        let out = outbound("127.0.0.1")?;
        let headers = [("content-type", "text/plain".to_owned())];
        let answer = out
            .post(&receiver.url(), &headers, b"ping".to_vec(), 5 * SECOND)
            .await?;
        assert_eq!(answer.status, 200);
        assert_eq!(&answer.body[..], b"got ping");
        assert_eq!(receiver.hits(), 1);
        // Without the allow-list entry it is refused before anything is sent.
        let refused = outbound("")?
            .post(&receiver.url(), &[], vec![], SECOND)
            .await;
        let Err(OutboundError::Refused(reason)) = refused else {
            anyhow::bail!("expected a refusal, got {refused:?}");
        };
        assert!(reason.contains("127.0.0.1") && reason.contains("INTERLINK_OUTBOUND_ALLOW"));
        assert_eq!(receiver.hits(), 1);
        // An allow-listed name goes through the client's own resolver.
        let by_name = outbound("localhost")?;
        let url = format!("http://localhost:{}/", receiver.port);
        assert_eq!(
            by_name.post(&url, &[], vec![], 5 * SECOND).await?.status,
            200
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_redirect_is_returned_not_followed() -> anyhow::Result<()> {
        let target = Receiver::start(|| async { "second" }).await?;
        let location = format!("http://127.0.0.1:{}/", target.port);
        let redirecting = Receiver::start(move || {
            let location = location.clone();
            async move { (axum::http::StatusCode::FOUND, [("location", location)]) }
        })
        .await?;
        let out = outbound("127.0.0.1")?;
        let answer = out
            .post(&redirecting.url(), &[], vec![], 5 * SECOND)
            .await?;
        assert_eq!(answer.status, 302);
        assert_eq!(redirecting.hits(), 1);
        assert_eq!(target.hits(), 0);
        // Likewise to a private address that is not allowed.
        let inward = Receiver::start(|| async {
            (
                axum::http::StatusCode::FOUND,
                [("location", "http://10.0.0.1/")],
            )
        })
        .await?;
        assert_eq!(
            out.post(&inward.url(), &[], vec![], 5 * SECOND)
                .await?
                .status,
            302
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_large_answer_is_cut_at_the_limit() -> anyhow::Result<()> {
        let receiver = Receiver::start(|| async { vec![b'x'; 4 * MAX_RESPONSE_BYTES] }).await?;
        let answer = outbound("127.0.0.1")?
            .post(&receiver.url(), &[], vec![], 5 * SECOND)
            .await?;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body.len(), MAX_RESPONSE_BYTES);
        Ok(())
    }

    #[tokio::test]
    async fn a_slow_receiver_times_out() -> anyhow::Result<()> {
        let receiver = Receiver::start(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        })
        .await?;
        let started = Instant::now();
        let answer = outbound("127.0.0.1")?
            .post(&receiver.url(), &[], vec![], Duration::from_millis(300))
            .await;
        assert!(matches!(answer, Err(OutboundError::Timeout)), "{answer:?}");
        assert!(started.elapsed() < 5 * SECOND);
        Ok(())
    }

    /// A name that resolves to a public address when vetted and to loopback when connected to:
    /// the client's resolver refuses it, and the local receiver never hears from us.
    #[tokio::test]
    async fn a_name_rebound_after_the_check_is_refused_at_connect() -> anyhow::Result<()> {
        let receiver = Receiver::start(|| async { "reached" }).await?;
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let lookup: Box<Lookup> = Box::new(move |_name| {
            let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
            Box::pin(async move {
                Ok(vec![if first {
                    IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1))
                } else {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                }])
            })
        });
        let out = Outbound::with_lookup(OutboundPolicy::none(), lookup)?;
        let url = format!("http://rebinding.example:{}/", receiver.port);
        let answer = out.post(&url, &[], vec![], 5 * SECOND).await;
        assert!(calls.load(Ordering::SeqCst) >= 2);
        let Err(OutboundError::Refused(reason)) = answer else {
            anyhow::bail!("expected a refusal, got {answer:?}");
        };
        assert!(reason.contains("rebinding.example"), "{reason}");
        assert_eq!(receiver.hits(), 0);
        Ok(())
    }

    #[test]
    fn public_reasons_hide_the_detail() {
        let network = OutboundError::Network("tcp connect error: 10.1.2.3:443 refused".into());
        assert!(!network.public_reason().contains("10.1.2.3"));
        assert_eq!(
            OutboundError::Timeout.public_reason(),
            "the endpoint did not answer in time"
        );
        let refused = OutboundError::Refused("only http and https URLs are accepted".into());
        assert_eq!(
            refused.public_reason(),
            "only http and https URLs are accepted"
        );
    }
}
