//! Command-line options (clap) and their translation into engine configuration.

use clap::Parser;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;
use volley::engine::{Config, RequestSpec};

/// volley: check huge lists of URLs, one honest answer per URL.
#[derive(Debug, Parser)]
#[command(
    name = "volley",
    version,
    about,
    after_help = "Reports: volley report [--expect N] [--html FILE] FILE... summarises earlier \
                  JSONL outputs together (see volley report --help)."
)]
pub struct Opts {
    /// Target URLs (otherwise --list, --url/--wordlist, or standard input).
    pub urls: Vec<String>,
    /// Read targets from FILE, one per line (`-` is standard input).
    #[arg(short = 'l', long = "list", value_name = "FILE")]
    pub list: Option<String>,
    /// Wordlist mode: base URL (FUZZ is replaced by each word, else the word is appended).
    #[arg(short = 'u', long = "url", value_name = "BASE", requires = "wordlist")]
    pub base: Option<String>,
    /// Wordlist mode: the words.
    #[arg(short = 'w', long = "wordlist", value_name = "FILE", requires = "base")]
    pub wordlist: Option<String>,
    /// Wordlist mode: extensions to try after each bare word (e.g. `html,php`).
    #[arg(short = 'x', long = "ext", value_name = "LIST", requires = "wordlist")]
    pub ext: Option<String>,
    /// Take only targets with (n - 1) % N == K - 1; `auto`: K/N from a Slurm array
    /// task or a Kubernetes Indexed Job (with --shards N).
    #[arg(long, value_name = "K/N|auto", value_parser = crate::shard::parse)]
    pub shard: Option<crate::shard::ShardArg>,
    /// With --shard auto in a Kubernetes Indexed Job: the number of shards.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub shards: Option<u64>,
    /// Write results to FILE (default standard output).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: crate::format::Format,
    /// Write only results whose status is in LIST (e.g. 200-299,301,403).
    #[arg(long = "match-status", value_name = "LIST", value_parser = crate::filter::StatusList::parse)]
    pub match_status: Option<crate::filter::StatusList>,
    /// Write only results whose status is not in LIST.
    #[arg(long = "filter-status", value_name = "LIST", value_parser = crate::filter::StatusList::parse)]
    pub filter_status: Option<crate::filter::StatusList>,
    /// Add the HTML <title> of the final response.
    #[arg(long)]
    pub title: bool,
    /// Add the final response's headers.
    #[arg(long = "headers")]
    pub show_headers: bool,
    /// Skip targets whose n is already in FILE (an earlier run's JSONL) and append to it.
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
    /// No progress line.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Requests in flight.
    #[arg(short = 'c', long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// Independent single-threaded event loops.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub workers: u32,
    /// Connections per host:port (0 = no limit).
    #[arg(long = "per-host", default_value_t = 0)]
    pub per_host: u32,
    /// Requests outstanding per keep-alive connection (GET, HEAD, OPTIONS only).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pipeline: u32,
    /// New requests per second (0 = no limit).
    #[arg(long, default_value_t = 0.0, value_parser = parse_nonneg)]
    pub rate: f64,
    /// Name resolution + TCP connect + TLS handshake, seconds.
    #[arg(long = "connect-timeout", default_value_t = 10.0, value_parser = parse_pos)]
    pub connect_timeout: f64,
    /// Longest silence from the peer once the request is under way, seconds.
    #[arg(long = "read-timeout", default_value_t = 10.0, value_parser = parse_pos)]
    pub read_timeout: f64,
    /// The whole attempt, redirects included, seconds (0 = none).
    #[arg(long = "timeout", default_value_t = 30.0, value_parser = parse_nonneg)]
    pub timeout: f64,
    /// Retries after dns (temporary), connect, connect_timeout, closed, read_timeout.
    #[arg(long, default_value_t = 1)]
    pub retries: u32,
    /// Follow redirects.
    #[arg(short = 'L', long = "follow")]
    pub follow: bool,
    /// Most redirects followed.
    #[arg(long = "max-redirects", default_value_t = 10)]
    pub max_redirects: u32,
    /// Request method (default GET, or POST with --data).
    #[arg(short = 'X', long = "method")]
    pub method: Option<String>,
    /// Extra header 'Name: value' (repeatable; replaces a default of that name).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Request body: a string, or @FILE.
    #[arg(short = 'd', long = "data", value_name = "STR|@FILE")]
    pub data: Option<String>,
    /// User-Agent header.
    #[arg(short = 'A', long = "user-agent", value_name = "UA")]
    pub user_agent: Option<String>,
    /// Read at most this many decoded body bytes.
    #[arg(long = "max-body", default_value_t = 1_048_576)]
    pub max_body: u64,
    /// Send `Connection: close` and never reuse connections.
    #[arg(long = "no-keepalive")]
    pub no_keepalive: bool,
    /// Add the PEM certificates in FILE as trust anchors.
    #[arg(long = "cacert", value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Skip TLS certificate verification.
    #[arg(short = 'k', long = "insecure")]
    pub insecure: bool,
    /// Accept an https peer only if the SHA-256 of its public key (base64) is one of these.
    #[arg(long = "pin-sha256", value_name = "B64")]
    pub pins: Vec<String>,
    /// Connect only to addresses inside CIDR (repeatable; checked after resolution).
    #[arg(long = "allow", value_name = "CIDR", value_parser = volley::cidr::Cidr::parse)]
    pub allow: Vec<volley::cidr::Cidr>,
    /// Never connect to addresses inside CIDR (repeatable).
    #[arg(long = "deny", value_name = "CIDR", value_parser = volley::cidr::Cidr::parse)]
    pub deny: Vec<volley::cidr::Cidr>,
    /// Use this HTTP proxy: http://[USER:PASS@]HOST:PORT (https goes through CONNECT).
    #[arg(long, value_name = "URL", value_parser = volley::engine::Proxy::parse)]
    pub proxy: Option<volley::engine::Proxy>,
    /// Ask this DNS server (IP[:PORT], repeatable) instead of /etc/resolv.conf's.
    #[arg(long = "dns-server", value_name = "IP[:PORT]", value_parser = parse_dns_server)]
    pub dns_servers: Vec<std::net::SocketAddr>,
    /// Send every connection to this Unix domain socket.
    #[arg(long = "unix-socket", value_name = "PATH")]
    pub unix_socket: Option<PathBuf>,
    /// Pin HOST:PORT to ADDR (repeatable, curl syntax).
    #[arg(long = "resolve", value_name = "HOST:PORT:ADDR", value_parser = parse_resolve)]
    pub resolve: Vec<(String, u16, IpAddr)>,
}

fn parse_pos(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

fn parse_nonneg(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{s:?} is not a non-negative number")),
    }
}

/// Parses curl's `HOST:PORT:ADDR` (ADDR may be a bracketed IPv6 address).
pub fn parse_resolve(s: &str) -> Result<(String, u16, IpAddr), String> {
    let err = || format!("{s:?} is not HOST:PORT:ADDR");
    let (host, rest) = s.split_once(':').ok_or_else(err)?;
    let (port, addr) = rest.split_once(':').ok_or_else(err)?;
    let port = port.parse::<u16>().map_err(|_| err())?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let addr = addr.parse::<IpAddr>().map_err(|_| err())?;
    if host.is_empty() {
        return Err(err());
    }
    Ok((host.to_ascii_lowercase(), port, addr))
}

/// Parses `IP`, `IP:PORT` or `[IPv6]:PORT` (port 53 when omitted).
pub fn parse_dns_server(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(a) = s.parse::<std::net::SocketAddr>() {
        return Ok(a);
    }
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .map_err(|_| format!("{s:?} is not IP[:PORT]"))
}

/// Parses `Name: value`.
fn parse_header(h: &str) -> Result<(String, String), String> {
    let (n, v) = h
        .split_once(':')
        .ok_or_else(|| format!("-H {h:?}: expected 'Name: value'"))?;
    let n = n.trim();
    if n.is_empty() || n.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return Err(format!("-H {h:?}: invalid header name"));
    }
    if v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(format!("-H {h:?}: value contains CR, LF or NUL"));
    }
    Ok((n.to_string(), v.trim().to_string()))
}

impl Opts {
    /// Where targets come from; errors name the options that cannot be combined.
    pub fn targets(&self) -> Result<crate::input::Targets, String> {
        use crate::input::Targets;
        if let (Some(base), Some(file)) = (&self.base, &self.wordlist) {
            if !self.urls.is_empty() || self.list.is_some() {
                return Err(
                    "--url/--wordlist cannot be combined with URL arguments or --list".into(),
                );
            }
            let exts = self
                .ext
                .as_deref()
                .unwrap_or("")
                .split(',')
                .map(|e| e.trim().trim_start_matches('.').to_string())
                .filter(|e| !e.is_empty())
                .collect();
            return Ok(Targets::Wordlist {
                base: base.clone(),
                file: file.clone(),
                exts,
            });
        }
        match &self.list {
            Some(_) if !self.urls.is_empty() => {
                Err("--list cannot be combined with URL arguments".into())
            }
            Some(l) => Ok(Targets::List(l.clone())),
            None if !self.urls.is_empty() => Ok(Targets::Args(self.urls.clone())),
            None => Ok(Targets::List("-".into())),
        }
    }

    /// The engine configuration these options describe; errors name the option.
    pub fn config(&self) -> Result<Config, String> {
        let tls = volley::tls::client_config(&volley::tls::TlsOptions {
            cacert: self.cacert.clone(),
            insecure: self.insecure,
            pins: self.pins.clone(),
        })?;
        Ok(Config {
            concurrency: self.concurrency as usize,
            per_host: self.per_host as usize,
            rate: self.rate,
            connect_timeout: Duration::from_secs_f64(self.connect_timeout),
            read_timeout: Duration::from_secs_f64(self.read_timeout),
            total_timeout: (self.timeout > 0.0).then(|| Duration::from_secs_f64(self.timeout)),
            retries: self.retries,
            follow: self.follow,
            max_redirects: self.max_redirects,
            max_body: self.max_body,
            keepalive: !self.no_keepalive,
            pipeline: self.pipeline as usize,
            resolve: self.resolve.clone(),
            unix_socket: self.unix_socket.clone().map(std::sync::Arc::new),
            proxy: self.proxy.clone(),
            dns_servers: self.dns_servers.clone(),
            addresses: volley::cidr::AddressPolicy {
                allow: self.allow.clone(),
                deny: self.deny.clone(),
            },
            tls: Some(tls),
            ..Config::default()
        })
    }

    /// Method, headers and body; errors name the option.
    pub fn spec(&self) -> Result<RequestSpec, String> {
        let m = match &self.method {
            Some(m) => m.clone(),
            None if self.data.is_some() => "POST".to_string(),
            None => "GET".to_string(),
        };
        if m.is_empty()
            || !m
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            return Err(format!("-X {m:?}: not a valid method"));
        }
        let mut headers = Vec::new();
        for h in &self.headers {
            headers.push(parse_header(h)?);
        }
        // -A sets User-Agent unless a -H gives one.
        if let Some(ua) = &self.user_agent {
            if !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("user-agent"))
            {
                headers.insert(0, ("User-Agent".to_string(), ua.clone()));
            }
        }
        let body = match &self.data {
            None => Vec::new(),
            Some(d) => match d.strip_prefix('@') {
                Some(path) => std::fs::read(path).map_err(|e| format!("-d @{path}: {e}"))?,
                None => d.clone().into_bytes(),
            },
        };
        Ok(RequestSpec {
            method: m,
            headers,
            body,
        })
    }
}
