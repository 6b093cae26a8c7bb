//! Command-line options (clap) and their translation into engine configuration.

use clap::Parser;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;
use volley::engine::{Config, RequestSpec};

use crate::parse::{
    duration, parse_cookie_pairs, parse_dns_rate, parse_dns_server, parse_header, parse_rate,
    parse_resolve, parse_secs, parse_secs_or_zero, MAX_CONCURRENCY, MAX_REDIRECTS, MAX_RETRIES,
};

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
    #[arg(help_heading = "Targets")]
    pub urls: Vec<String>,
    /// Read targets from FILE, one per line (`-` is standard input).
    #[arg(
        help_heading = "Targets",
        short = 'l',
        long = "list",
        value_name = "FILE"
    )]
    pub list: Option<String>,
    /// Wordlist mode: base URL (FUZZ is replaced by each word, else the word is appended).
    #[arg(
        help_heading = "Targets",
        short = 'u',
        long = "url",
        value_name = "BASE",
        requires = "wordlist"
    )]
    pub base: Option<String>,
    /// Wordlist mode: the words.
    #[arg(
        help_heading = "Targets",
        short = 'w',
        long = "wordlist",
        value_name = "FILE",
        requires = "base"
    )]
    pub wordlist: Option<String>,
    /// Wordlist mode: extensions to try after each bare word (e.g. `html,php`).
    #[arg(
        help_heading = "Targets",
        short = 'x',
        long = "ext",
        value_name = "LIST",
        requires = "wordlist"
    )]
    pub ext: Option<String>,
    /// Take only targets with (n - 1) % N == K - 1; `auto`: K/N from a Slurm array
    /// task or a Kubernetes Indexed Job (with --shards N).
    #[arg(help_heading = "Targets", long, value_name = "K/N|auto", value_parser = crate::shard::parse)]
    pub shard: Option<crate::shard::ShardArg>,
    /// With --shard auto in a Kubernetes Indexed Job: the number of shards.
    #[arg(help_heading = "Targets", long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub shards: Option<u64>,
    /// Write results to FILE (default standard output; `-` is standard output).
    #[arg(
        help_heading = "Output",
        short = 'o',
        long = "output",
        value_name = "FILE"
    )]
    pub output: Option<PathBuf>,
    /// Output format.
    #[arg(help_heading = "Output", long, value_enum, default_value = "jsonl")]
    pub format: crate::format::Format,
    /// Write only results whose status is in LIST (e.g. 200-299,301,403).
    #[arg(help_heading = "Matching", long = "match-status", value_name = "LIST", value_parser = crate::filter::Ranges::status)]
    pub match_status: Option<crate::filter::Ranges>,
    /// Write only results whose status is not in LIST.
    #[arg(help_heading = "Matching", long = "filter-status", value_name = "LIST", value_parser = crate::filter::Ranges::status)]
    pub filter_status: Option<crate::filter::Ranges>,
    /// Add the HTML <title> of the final response.
    #[arg(help_heading = "Output", long)]
    pub title: bool,
    /// Add the final response's headers.
    #[arg(help_heading = "Output", long = "headers")]
    pub show_headers: bool,
    /// Add `words` and `lines` (ffuf's counts) of the body read.
    #[arg(help_heading = "Output", long)]
    pub counts: bool,
    /// Add `body_sha256` and `simhash` (hex) of the body read.
    #[arg(help_heading = "Output", long)]
    pub hash: bool,
    /// Add `ip`: the peer address of the final connection.
    #[arg(help_heading = "Output", long)]
    pub ip: bool,
    /// Add `tls`: version, cipher and the leaf certificate (subject, SANs, issuer,
    /// not-after, SPKI pin) of the final https connection.
    #[arg(help_heading = "Output", long = "tls-info")]
    pub tls_info: bool,
    /// Write only results whose body size (bytes read) is in LIST (e.g. 0-100,4242).
    #[arg(help_heading = "Matching", long = "match-size", value_name = "LIST", value_parser = crate::filter::Ranges::count)]
    pub match_size: Option<crate::filter::Ranges>,
    /// Write only results whose body size is not in LIST.
    #[arg(help_heading = "Matching", long = "filter-size", value_name = "LIST", value_parser = crate::filter::Ranges::count)]
    pub filter_size: Option<crate::filter::Ranges>,
    /// Write only results whose word count (spaces + 1, as ffuf) is in LIST.
    #[arg(help_heading = "Matching", long = "match-words", value_name = "LIST", value_parser = crate::filter::Ranges::count)]
    pub match_words: Option<crate::filter::Ranges>,
    /// Write only results whose word count is not in LIST.
    #[arg(help_heading = "Matching", long = "filter-words", value_name = "LIST", value_parser = crate::filter::Ranges::count)]
    pub filter_words: Option<crate::filter::Ranges>,
    /// Write only results whose line count (newlines + 1, as ffuf) is in LIST.
    #[arg(help_heading = "Matching", long = "match-lines", value_name = "LIST", value_parser = crate::filter::Ranges::count)]
    pub match_lines: Option<crate::filter::Ranges>,
    /// Write only results whose line count is not in LIST.
    #[arg(help_heading = "Matching", long = "filter-lines", value_name = "LIST", value_parser = crate::filter::Ranges::count)]
    pub filter_lines: Option<crate::filter::Ranges>,
    /// Write only results whose response head or body read matches RE.
    #[arg(help_heading = "Matching", long = "match-regex", value_name = "RE", value_parser = crate::filter::parse_regex)]
    pub match_regex: Option<regex::bytes::Regex>,
    /// Write only results whose response head and body read do not match RE.
    #[arg(help_heading = "Matching", long = "filter-regex", value_name = "RE", value_parser = crate::filter::parse_regex)]
    pub filter_regex: Option<regex::bytes::Regex>,
    /// Learn per host what a missing path gets (a few random paths first) and mark
    /// each result `soft404` true/false (null: the host could not be calibrated).
    #[arg(help_heading = "Matching", long)]
    pub calibrate: bool,
    /// Leave soft-404 results out of the output (implies --calibrate; still counted).
    #[arg(help_heading = "Matching", long = "filter-calibrated")]
    pub filter_calibrated: bool,
    /// Skip targets whose n is already in FILE (an earlier run's JSONL) and append to it.
    #[arg(help_heading = "Output", long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
    /// No progress line.
    #[arg(help_heading = "Output", short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Requests in flight.
    #[arg(help_heading = "Scheduling", short = 'c', long, default_value_t = 100, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..=MAX_CONCURRENCY))]
    pub concurrency: u32,
    /// Independent single-threaded event loops.
    #[arg(help_heading = "Scheduling", long, default_value_t = 1, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub workers: u32,
    /// Connections per host:port (0 = no limit).
    #[arg(help_heading = "Scheduling", long = "per-host", default_value_t = 0, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(0..=MAX_CONCURRENCY))]
    pub per_host: u32,
    /// Requests outstanding per keep-alive connection (GET, HEAD, OPTIONS only).
    #[arg(help_heading = "Scheduling", long, default_value_t = 1, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pipeline: u32,
    /// New requests per second (0 = no limit).
    #[arg(help_heading = "Scheduling", long, default_value_t = 0.0, allow_negative_numbers = true, value_parser = parse_rate)]
    pub rate: f64,
    /// Name resolution + TCP connect + TLS handshake, seconds.
    #[arg(help_heading = "Timeouts", long = "connect-timeout", default_value_t = 10.0, allow_negative_numbers = true, value_parser = parse_secs)]
    pub connect_timeout: f64,
    /// Longest silence from the peer once the request is under way, seconds.
    #[arg(help_heading = "Timeouts", long = "read-timeout", default_value_t = 10.0, allow_negative_numbers = true, value_parser = parse_secs)]
    pub read_timeout: f64,
    /// The whole attempt, redirects included, seconds (0 = none).
    #[arg(help_heading = "Timeouts", long = "timeout", default_value_t = 30.0, allow_negative_numbers = true, value_parser = parse_secs_or_zero)]
    pub timeout: f64,
    /// Do not adapt per host (pause and slow down after 429/503 or timeouts).
    #[arg(help_heading = "Scheduling", long = "no-adapt")]
    pub no_adapt: bool,
    /// Longest Retry-After waited for, seconds (a longer one is the result).
    #[arg(help_heading = "Scheduling", long = "max-retry-after", default_value_t = 60.0, allow_negative_numbers = true, value_parser = parse_secs_or_zero)]
    pub max_retry_after: f64,
    /// New requests per second to each host:port (0 = no limit).
    #[arg(help_heading = "Scheduling", long = "rate-per-host", default_value_t = 0.0, allow_negative_numbers = true, value_parser = parse_rate)]
    pub rate_per_host: f64,
    /// Retries after dns (temporary), connect, connect_timeout, closed, read_timeout.
    #[arg(help_heading = "Scheduling", long, default_value_t = 1, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(0..=MAX_RETRIES))]
    pub retries: u32,
    /// Follow redirects.
    #[arg(help_heading = "Request", short = 'L', long = "follow")]
    pub follow: bool,
    /// Most redirects followed.
    #[arg(help_heading = "Request", long = "max-redirects", default_value_t = 10, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(0..=MAX_REDIRECTS))]
    pub max_redirects: u32,
    /// Send Authorization and Cookie headers to redirect targets on other hosts too.
    #[arg(help_heading = "Request", long = "location-trusted")]
    pub location_trusted: bool,
    /// Request method (default GET, or POST with --data).
    #[arg(help_heading = "Request", short = 'X', long = "method")]
    pub method: Option<String>,
    /// Extra header 'Name: value' (repeatable; replaces a default of that name;
    /// 'Name:' with no value removes it).
    #[arg(
        help_heading = "Request",
        short = 'H',
        long = "header",
        value_name = "HEADER"
    )]
    pub headers: Vec<String>,
    /// Request body: a string, or @FILE.
    #[arg(
        help_heading = "Request",
        short = 'd',
        long = "data",
        value_name = "STR|@FILE"
    )]
    pub data: Option<String>,
    /// User-Agent header.
    #[arg(
        help_heading = "Request",
        short = 'A',
        long = "user-agent",
        value_name = "UA"
    )]
    pub user_agent: Option<String>,
    /// Send these cookies with every request: 'name=value; name2=value2' (joined
    /// after a -H Cookie header's).
    #[arg(help_heading = "Request", long = "cookie", value_name = "'N=V; …'", value_parser = parse_cookie_pairs)]
    pub cookie: Option<String>,
    /// Keep a cookie jar in FILE (curl's cookie-file format): read at start if it
    /// exists, Set-Cookie stored during the run (shared by all workers), written at
    /// the end. Like curl's -b FILE and -c FILE together.
    #[arg(help_heading = "Request", long = "cookie-jar", value_name = "FILE")]
    pub cookie_jar: Option<PathBuf>,
    /// Read at most this many decoded body bytes.
    #[arg(help_heading = "Request", long = "max-body", default_value_t = 1_048_576, allow_negative_numbers = true, value_parser = clap::value_parser!(u64))]
    pub max_body: u64,
    /// Send `Connection: close` and never reuse connections.
    #[arg(help_heading = "Request", long = "no-keepalive")]
    pub no_keepalive: bool,
    /// Add the PEM certificates in FILE as trust anchors.
    #[arg(help_heading = "TLS", long = "cacert", value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Skip TLS certificate verification.
    #[arg(help_heading = "TLS", short = 'k', long = "insecure")]
    pub insecure: bool,
    /// Accept an https peer only if the SHA-256 of its public key (base64) is one of these.
    #[arg(help_heading = "TLS", long = "pin-sha256", value_name = "B64")]
    pub pins: Vec<String>,
    /// Connect only to addresses inside CIDR (repeatable; checked after resolution).
    #[arg(help_heading = "Network", long = "allow", value_name = "CIDR", value_parser = volley::cidr::Cidr::parse)]
    pub allow: Vec<volley::cidr::Cidr>,
    /// Never connect to addresses inside CIDR (repeatable).
    #[arg(help_heading = "Network", long = "deny", value_name = "CIDR", value_parser = volley::cidr::Cidr::parse)]
    pub deny: Vec<volley::cidr::Cidr>,
    /// Use this HTTP proxy: http://[USER:PASS@]HOST:PORT (https goes through CONNECT).
    #[arg(help_heading = "Network", long, value_name = "URL", value_parser = volley::engine::Proxy::parse)]
    pub proxy: Option<volley::engine::Proxy>,
    /// Ask this DNS server (IP[:PORT], repeatable) instead of the resolv.conf ones.
    /// Names are resolved in the event loop by volley's own stub resolver; the
    /// system resolver is used only when no nameserver is usable.
    #[arg(help_heading = "Network", long = "dns-server", value_name = "IP[:PORT]", value_parser = parse_dns_server)]
    pub dns_servers: Vec<std::net::SocketAddr>,
    /// Read nameservers, search, ndots, timeout, attempts, rotate from FILE.
    #[arg(
        help_heading = "Network",
        long = "resolv-conf",
        value_name = "FILE",
        default_value = "/etc/resolv.conf"
    )]
    pub resolv_conf: PathBuf,
    /// Read host names and addresses from FILE.
    #[arg(
        help_heading = "Network",
        long = "hosts-file",
        value_name = "FILE",
        default_value = "/etc/hosts"
    )]
    pub hosts_file: PathBuf,
    /// Start at most R DNS queries per second, over all workers (0 = no cap).
    #[arg(help_heading = "Network", long = "dns-rate", value_name = "R", default_value_t = 0.0, allow_negative_numbers = true, value_parser = parse_dns_rate)]
    pub dns_rate: f64,
    /// Send every connection to this Unix domain socket.
    #[arg(help_heading = "Network", long = "unix-socket", value_name = "PATH")]
    pub unix_socket: Option<PathBuf>,
    /// Pin HOST:PORT to ADDR (repeatable, curl syntax).
    #[arg(help_heading = "Network", long = "resolve", value_name = "HOST:PORT:ADDR", value_parser = parse_resolve)]
    pub resolve: Vec<(String, u16, IpAddr)>,
}

impl Opts {
    /// True when results go to standard output: no `-o`, or `-o -` (as curl).
    pub fn to_stdout(&self) -> bool {
        self.output.as_ref().is_none_or(|o| o.as_os_str() == "-")
    }

    /// The cookie jar of `--cookie-jar`, loaded from its file when that exists.
    pub fn cookie_jar(&self) -> Result<Option<volley::cookie::Jar>, String> {
        let Some(path) = &self.cookie_jar else {
            return Ok(None);
        };
        let mut jar = volley::cookie::Jar::default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        volley::cookie::file::load(&mut jar, path, now)
            .map_err(|e| format!("--cookie-jar {}: {e}", path.display()))?;
        Ok(Some(jar))
    }

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
        // The system's files may be missing (then: no hosts, no nameserver, and the
        // system resolver answers); a file named on the command line must be there.
        for (opt, path, default) in [
            ("--resolv-conf", &self.resolv_conf, "/etc/resolv.conf"),
            ("--hosts-file", &self.hosts_file, "/etc/hosts"),
        ] {
            if path.as_os_str() != default {
                std::fs::File::open(path).map_err(|e| format!("{opt} {}: {e}", path.display()))?;
            }
        }
        Ok(Config {
            concurrency: self.concurrency as usize,
            per_host: self.per_host as usize,
            rate: self.rate,
            connect_timeout: duration("--connect-timeout", self.connect_timeout)?,
            read_timeout: duration("--read-timeout", self.read_timeout)?,
            total_timeout: if self.timeout == 0.0 {
                None
            } else {
                Some(duration("--timeout", self.timeout)?)
            },
            retries: self.retries,
            adapt: !self.no_adapt,
            max_retry_after: Duration::from_secs_f64(self.max_retry_after),
            rate_per_host: self.rate_per_host,
            follow: self.follow,
            max_redirects: self.max_redirects,
            location_trusted: self.location_trusted,
            max_body: self.max_body,
            keepalive: !self.no_keepalive,
            pipeline: self.pipeline as usize,
            resolve: self.resolve.clone(),
            unix_socket: self.unix_socket.clone().map(std::sync::Arc::new),
            proxy: self.proxy.clone(),
            dns_servers: self.dns_servers.clone(),
            resolv_conf: Some(self.resolv_conf.clone()),
            hosts_file: Some(self.hosts_file.clone()),
            dns_rate: self.dns_rate,
            addresses: volley::cidr::AddressPolicy {
                allow: self.allow.clone(),
                deny: self.deny.clone(),
            },
            tls: Some(tls),
            peer_info: self.ip,
            tls_info: self.tls_info,
            cookies: self
                .cookie_jar()?
                .map(|j| std::sync::Arc::new(std::sync::Mutex::new(j))),
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
        if let Some(c) = &self.cookie {
            match headers
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            {
                Some((_, v)) if !v.is_empty() => *v = format!("{v}; {c}"),
                Some((_, v)) => *v = c.clone(),
                None => headers.push(("Cookie".to_string(), c.clone())),
            }
        }
        let body = match &self.data {
            None => Vec::new(),
            Some(d) => match d.strip_prefix('@') {
                Some(path) => std::fs::read(path).map_err(|e| format!("-d @{path}: {e}"))?,
                None => d.clone().into_bytes(),
            },
        };
        // -d sends a form unless a -H says what it is (as curl).
        if self.data.is_some()
            && !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            headers.push((
                "Content-Type".to_string(),
                "application/x-www-form-urlencoded".to_string(),
            ));
        }
        Ok(RequestSpec {
            method: m,
            headers,
            body,
            ..RequestSpec::default()
        })
    }
}

#[cfg(test)]
mod tests;
