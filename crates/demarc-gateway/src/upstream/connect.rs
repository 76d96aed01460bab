//! Where an upstream's requests go and how a connection to it is opened: the base URL parsed
//! once, the proxy the environment names for it (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`,
//! `NO_PROXY`, upper or lower case, read when the upstream is built), TCP with `TCP_NODELAY`,
//! an HTTP `CONNECT` tunnel through the proxy for TLS upstreams, and rustls (Mozilla's roots
//! through `webpki-roots`, plus the upstream's `ca_file`).

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::HeaderValue;
use base64::Engine;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The longest proxy answer to `CONNECT` (status line and headers) accepted.
const MAX_CONNECT_HEAD: usize = 8 * 1024;

/// Where an upstream's requests go.
pub(super) struct Target {
    host: String,
    port: u16,
    /// `scheme://host[:port]`, for requests through an HTTP proxy (absolute form).
    origin: String,
    /// The `Host` header value (with the port when it is not the scheme's default).
    pub authority: HeaderValue,
    /// The base URL's path without a trailing slash; request routes follow it.
    pub base_path: String,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    pub proxy: Option<Proxy>,
}

/// An HTTP proxy from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Proxy {
    host: String,
    port: u16,
    /// `Basic …` from the proxy URL's user and password.
    pub authorization: Option<HeaderValue>,
}

/// Why an upstream's base URL or its proxy cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("`{0}` is not an http or https URL")]
    NotHttp(String),
    #[error("`{0}` has a query or fragment")]
    QueryOrFragment(String),
    #[error("`{0}` has no valid host and port")]
    HostPort(String),
    #[error("`{0}` has an invalid host")]
    InvalidHost(String),
    #[error("`{0}` is not a valid TLS server name")]
    TlsName(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("proxy scheme `{0}` is not supported (only http:// proxies)")]
    ProxyScheme(String),
    #[error("the proxy URL has no valid host")]
    ProxyHost,
    #[error("the proxy URL's credentials are not valid")]
    ProxyCredentials,
}

impl Target {
    /// Parse `base_url` (`http` or `https`), with the proxy `env` names for it.
    pub fn new(
        base_url: &str,
        extra_roots: &[CertificateDer<'static>],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, TargetError> {
        let (https, rest) = if let Some(rest) = base_url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = base_url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(TargetError::NotHttp(base_url.to_string()));
        };
        let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        if path.contains(['?', '#']) {
            return Err(TargetError::QueryOrFragment(base_url.to_string()));
        }
        let (host, port) = split_host_port(authority, if https { 443 } else { 80 })
            .ok_or_else(|| TargetError::HostPort(base_url.to_string()))?;
        let tls = if https {
            let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                .map_err(|_| TargetError::TlsName(host.clone()))?;
            let config = tls_config(extra_roots).map_err(|e| TargetError::Tls(e.to_string()))?;
            Some((tokio_rustls::TlsConnector::from(config), name))
        } else {
            None
        };
        let scheme = if https { "https" } else { "http" };
        let proxy = proxy_for(https, &host, env)?;
        Ok(Self {
            origin: format!("{scheme}://{authority}"),
            authority: HeaderValue::from_str(authority)
                .map_err(|_| TargetError::InvalidHost(base_url.to_string()))?,
            base_path: path.trim_end_matches('/').to_string(),
            host,
            port,
            tls,
            proxy,
        })
    }

    /// The request target for `route` (path and query after the base path): origin form, or
    /// absolute form through an HTTP proxy to a plain-HTTP upstream.
    pub fn request_target(&self, route: &str) -> String {
        if self.proxy.is_some() && self.tls.is_none() {
            format!("{}{}{route}", self.origin, self.base_path)
        } else {
            format!("{}{route}", self.base_path)
        }
    }

    /// Whether requests carry the proxy's credentials (plain HTTP through the proxy; a TLS
    /// upstream gets them on `CONNECT` only).
    pub fn proxy_authorization(&self) -> Option<&HeaderValue> {
        match (&self.proxy, &self.tls) {
            (Some(proxy), None) => proxy.authorization.as_ref(),
            _ => None,
        }
    }

    /// Open a connection, within `timeout` (TCP, the proxy's tunnel, TLS together).
    pub async fn connect(&self, timeout: Duration) -> std::io::Result<Io> {
        match tokio::time::timeout(timeout, self.open()).await {
            Ok(io) => io,
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }

    async fn open(&self) -> std::io::Result<Io> {
        let (host, port) = match &self.proxy {
            Some(p) => (p.host.as_str(), p.port),
            None => (self.host.as_str(), self.port),
        };
        let mut tcp = TcpStream::connect((host.trim_matches(['[', ']']), port)).await?;
        tcp.set_nodelay(true)?;
        let Some((connector, name)) = &self.tls else {
            return Ok(Io::Plain(tcp));
        };
        if let Some(proxy) = &self.proxy {
            self.tunnel(&mut tcp, proxy).await?;
        }
        let tls = connector.connect(name.clone(), tcp).await?;
        Ok(Io::Tls(Box::new(tls)))
    }

    /// `CONNECT host:port` through the proxy; any 2xx opens the tunnel.
    async fn tunnel(&self, tcp: &mut TcpStream, proxy: &Proxy) -> std::io::Result<()> {
        let target = format!("{}:{}", self.host, self.port);
        let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some(auth) = proxy.authorization.as_ref().and_then(|a| a.to_str().ok()) {
            head.push_str("Proxy-Authorization: ");
            head.push_str(auth);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        tcp.write_all(head.as_bytes()).await?;
        // Byte by byte, so that nothing of the TLS handshake that follows is read here.
        let mut answer = Vec::with_capacity(256);
        while !answer.ends_with(b"\r\n\r\n") {
            if answer.len() >= MAX_CONNECT_HEAD {
                return Err(std::io::Error::other("proxy answer to CONNECT too long"));
            }
            answer.push(tcp.read_u8().await?);
        }
        let status = answer
            .split(|&b| b == b' ')
            .nth(1)
            .and_then(|s| std::str::from_utf8(s).ok())
            .and_then(|s| s.parse::<u16>().ok());
        match status {
            Some(200..=299) if answer.starts_with(b"HTTP/1.") => Ok(()),
            _ => Err(std::io::Error::other("the proxy refused the tunnel")),
        }
    }
}

/// `host[:port]` (IPv6 in brackets), the port defaulting to `default`.
fn split_host_port(authority: &str, default: u16) -> Option<(String, u16)> {
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        match rest.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if rest.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match authority.rsplit_once(':') {
            // An IPv6 address needs its brackets: `::1:8080` has no one reading.
            Some((host, _)) if host.contains(':') => return None,
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default,
    };
    (!host.is_empty()).then(|| (host.to_ascii_lowercase(), port))
}

/// The proxy `env` names for a request to `host` (`https` or plain), as reqwest read it:
/// `HTTPS_PROXY` or `HTTP_PROXY` by scheme, else `ALL_PROXY` (upper case first), unless
/// `NO_PROXY` covers the host. `HTTP_PROXY` is ignored in a CGI environment (`REQUEST_METHOD`
/// set), where a request header could have set it.
pub(super) fn proxy_for(
    https: bool,
    host: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Proxy>, TargetError> {
    let get = |name: &str| {
        env(name)
            .or_else(|| env(&name.to_lowercase()))
            .filter(|v| !v.trim().is_empty())
    };
    let by_scheme = if https {
        get("HTTPS_PROXY")
    } else if env("REQUEST_METHOD").is_some() {
        None
    } else {
        get("HTTP_PROXY")
    };
    let Some(url) = by_scheme.or_else(|| get("ALL_PROXY")) else {
        return Ok(None);
    };
    if get("NO_PROXY").is_some_and(|list| no_proxy_covers(&list, host)) {
        return Ok(None);
    }
    parse_proxy(url.trim()).map(Some)
}

/// An `http://[user:password@]host[:port]` proxy URL (the scheme may be left out).
fn parse_proxy(url: &str) -> Result<Proxy, TargetError> {
    let rest = match url.split_once("://") {
        Some(("http" | "HTTP", rest)) => rest,
        Some((scheme, _)) => {
            return Err(TargetError::ProxyScheme(scheme.to_string()));
        }
        None => url,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, authority),
    };
    let (host, port) = split_host_port(hostport, 80).ok_or(TargetError::ProxyHost)?;
    let authorization = match userinfo {
        Some(user) => {
            let decoded = percent_encoding::percent_decode_str(user).collect::<Vec<u8>>();
            let token = base64::engine::general_purpose::STANDARD.encode(decoded);
            let mut value = HeaderValue::from_str(&format!("Basic {token}"))
                .map_err(|_| TargetError::ProxyCredentials)?;
            value.set_sensitive(true);
            Some(value)
        }
        None => None,
    };
    Ok(Proxy {
        host,
        port,
        authorization,
    })
}

/// Whether a `NO_PROXY` list covers `host`: `*`; a domain (with or without a leading `.` or
/// `*.`) that is the host or one of its parent domains; an IP address or CIDR block holding it.
fn no_proxy_covers(list: &str, host: &str) -> bool {
    let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
    let ip = host.parse::<IpAddr>().ok();
    list.split(',').map(str::trim).any(|entry| {
        if entry == "*" {
            return true;
        }
        if let Some(ip) = ip {
            return ip_covered(entry, ip);
        }
        let domain = entry
            .trim_start_matches('*')
            .trim_start_matches('.')
            .to_ascii_lowercase();
        !domain.is_empty()
            && (host == domain
                || host
                    .strip_suffix(domain.as_str())
                    .is_some_and(|head| head.ends_with('.')))
    })
}

/// Whether `entry` (an address or `address/bits`) holds `ip`.
fn ip_covered(entry: &str, ip: IpAddr) -> bool {
    let entry = entry.trim_matches(['[', ']']);
    let (net, bits) = match entry.split_once('/') {
        Some((net, bits)) => match bits.parse::<u32>() {
            Ok(bits) => (net, Some(bits)),
            Err(_) => return false,
        },
        None => (entry, None),
    };
    match (net.parse::<IpAddr>(), ip) {
        (Ok(IpAddr::V4(net)), IpAddr::V4(ip)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (Ok(IpAddr::V6(net)), IpAddr::V6(ip)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

/// The roots every upstream trusts (Mozilla's, through `webpki-roots`), and any the upstream
/// adds. The common case, no additions, is built once.
fn tls_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, String> {
    fn build(extra_roots: &[CertificateDer<'static>]) -> Result<Arc<rustls::ClientConfig>, String> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for cert in extra_roots {
            roots.add(cert.clone()).map_err(|e| e.to_string())?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
    static PUBLIC: std::sync::OnceLock<Result<Arc<rustls::ClientConfig>, String>> =
        std::sync::OnceLock::new();
    if extra_roots.is_empty() {
        PUBLIC.get_or_init(|| build(&[])).clone()
    } else {
        build(extra_roots)
    }
}

/// A connection, plain or TLS.
pub(super) enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any base URL is parsed or refused with a reason, never a panic; a parsed one keeps
        /// its host and port.
        #[test]
        fn base_urls_parse_or_are_refused(url in "(https?://)?[a-zA-Z0-9.:\\[\\]@/?#%-]{0,40}") {
            let no_env = |_: &str| None;
            if let Ok(t) = Target::new(&url, &[], &no_env) {
                prop_assert!(!t.host.is_empty());
                prop_assert!(url.contains(&t.host) || url.to_ascii_lowercase().contains(&t.host));
            }
        }

        #[test]
        fn host_and_port_round_trip(host in "[a-z][a-z0-9-]{0,20}(\\.[a-z]{2,6})?", port in 1u16..) {
            let no_env = |_: &str| None;
            let t = Target::new(&format!("http://{host}:{port}/v1"), &[], &no_env).unwrap();
            prop_assert_eq!((t.host.as_str(), t.port), (host.as_str(), port));
            let v6 = Target::new(&format!("http://[::1]:{port}/v1"), &[], &no_env).unwrap();
            prop_assert_eq!((v6.host.as_str(), v6.port), ("[::1]", port));
        }
    }

    #[test]
    fn an_unbracketed_ipv6_address_is_refused() {
        let no_env = |_: &str| None;
        assert!(matches!(
            Target::new("http://::1:8080/v1", &[], &no_env),
            Err(TargetError::HostPort(_))
        ));
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_string())
        }
    }

    #[test]
    fn proxies_by_scheme_with_no_proxy_and_cgi() {
        let vars = [
            ("HTTP_PROXY", "http://p:3128"),
            ("https_proxy", "user:p%40ss@sp"),
            ("NO_PROXY", " internal.example , .corp,10.0.0.0/8, ::1"),
        ];
        let e = env(&vars);
        let p = proxy_for(false, "api.example", &e).unwrap().unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.authorization),
            ("p", 3128, None)
        );
        let p = proxy_for(true, "api.example", &e).unwrap().unwrap();
        assert_eq!((p.host.as_str(), p.port), ("sp", 80));
        // "user:p@ss" in base64.
        assert_eq!(
            p.authorization.unwrap().to_str().unwrap(),
            "Basic dXNlcjpwQHNz"
        );
        for direct in [
            "internal.example",
            "a.internal.example",
            "x.corp",
            "corp",
            "10.1.2.3",
            "[::1]",
        ] {
            assert_eq!(proxy_for(false, direct, &e), Ok(None), "{direct}");
        }
        for proxied in ["notinternal.example", "11.0.0.1", "corp.example"] {
            assert!(
                proxy_for(false, proxied, &e).unwrap().is_some(),
                "{proxied}"
            );
        }
        let all = [
            ("ALL_PROXY", "http://a:1"),
            ("REQUEST_METHOD", "GET"),
            ("HTTP_PROXY", "http://h:2"),
        ];
        let p = proxy_for(false, "x", &env(&all)).unwrap().unwrap();
        assert_eq!(p.host, "a", "HTTP_PROXY is ignored under CGI");
        let star = [("HTTP_PROXY", "http://h:2"), ("no_proxy", "*")];
        assert_eq!(proxy_for(false, "x", &env(&star)), Ok(None));
        assert_eq!(proxy_for(false, "x", &env(&[])), Ok(None));
        assert!(proxy_for(true, "x", &env(&[("HTTPS_PROXY", "socks5://s:1")])).is_err());
    }

    #[test]
    fn base_urls_and_request_targets() {
        let none = env(&[]);
        let t = Target::new("http://h:8080/v1/", &[], &none).unwrap();
        assert_eq!(t.authority, "h:8080");
        assert_eq!(t.request_target("/chat?x=1"), "/v1/chat?x=1");
        let via = [("HTTP_PROXY", "http://u:p@proxy:3128")];
        let t = Target::new("http://h/v1", &[], &env(&via)).unwrap();
        assert_eq!(t.request_target("/models"), "http://h/v1/models");
        assert!(t.proxy_authorization().is_some());
        let t = Target::new("https://[::1]:9/v1", &[], &env(&[("HTTPS_PROXY", "p:1")])).unwrap();
        assert_eq!(
            t.request_target("/models"),
            "/v1/models",
            "TLS goes through a tunnel"
        );
        assert!(t.proxy_authorization().is_none());
        for bad in [
            "ftp://h",
            "http://",
            "http://u@h/v1",
            "http://h:x/v1",
            "http://h/v1?q",
        ] {
            assert!(Target::new(bad, &[], &none).is_err(), "{bad}");
        }
    }
}
