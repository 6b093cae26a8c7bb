//! curl's cookie file (the Netscape format): read into a [`Jar`], written from one.
//!
//! One cookie per line, seven tab-separated fields: domain, include-subdomains
//! (`TRUE`/`FALSE`), path, secure (`TRUE`/`FALSE`), expiry (Unix seconds, `0` for a
//! session cookie), name, value. A domain cookie's domain is written with a leading
//! dot; an `HttpOnly` cookie's line starts `#HttpOnly_`. Other lines starting `#`, and
//! blank lines, are comments. Reading skips malformed lines (counting them) and
//! expired cookies; it never fails on content. Writing emits every unexpired cookie,
//! session cookies included (expiry `0`, as curl does), sorted by domain, path and
//! name so the file is stable.

use super::{Cookie, Jar};
use std::io;
use std::path::Path;

/// The first line curl writes (and expects nothing of).
pub const HEADER: &str =
    "# Netscape HTTP Cookie File\n# Written by volley; edit at your own risk.\n\n";

/// What [`read`] did with a file's lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Cookies stored.
    pub stored: usize,
    /// Lines that were not comments and not valid cookie lines.
    pub malformed: usize,
}

/// Reads cookie-file text into `jar` at `now`.
///
/// ```
/// use volley::cookie::{file, Jar};
/// let mut jar = Jar::default();
/// let text = "# Netscape HTTP Cookie File\n\
///             .example.com\tTRUE\t/\tFALSE\t0\tsid\tabc\n\
///             #HttpOnly_api.example.com\tFALSE\t/v1\tTRUE\t4102444800\ttok\tx\n";
/// let got = file::read(&mut jar, text, 1_700_000_000);
/// assert_eq!((got.stored, got.malformed), (2, 0));
/// assert!(file::write(&jar, 1_700_000_000).contains("#HttpOnly_api.example.com\tFALSE\t/v1\tTRUE\t4102444800\ttok\tx\n"));
/// ```
pub fn read(jar: &mut Jar, text: &str, now: i64) -> Loaded {
    let mut got = Loaded::default();
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let (line, http_only) = match line.strip_prefix("#HttpOnly_") {
            Some(rest) => (rest, true),
            None => (line, false),
        };
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line, http_only) {
            Some(c) => {
                if jar.insert(c, now) {
                    got.stored += 1;
                }
            }
            None => got.malformed += 1,
        }
    }
    got
}

fn parse_line(line: &str, http_only: bool) -> Option<Cookie> {
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() != 7 {
        return None;
    }
    let flag = |s: &str| match s {
        "TRUE" => Some(true),
        "FALSE" => Some(false),
        _ => None,
    };
    let subdomains = flag(f[1])?;
    let secure = flag(f[3])?;
    let expires: i64 = f[4].parse().ok()?;
    let (domain, path, name, value) = (f[0], f[2], f[5], f[6]);
    let bad = |s: &str| s.bytes().any(|b| b < 0x20 || b == 0x7f);
    if domain.trim_start_matches('.').is_empty()
        || !path.starts_with('/')
        || name.is_empty()
        || bad(name)
        || bad(value)
        || name.len() + value.len() > super::parse::MAX_PAIR
    {
        return None;
    }
    let mut c = Cookie::new(name, value, domain, path);
    c.host_only = !subdomains;
    c.secure = secure;
    c.http_only = http_only;
    c.expires = (expires != 0).then_some(expires);
    Some(c)
}

/// The cookie-file text of `jar`'s unexpired cookies at `now`.
pub fn write(jar: &Jar, now: i64) -> String {
    let mut all: Vec<&Cookie> = jar.iter().filter(|c| !c.expired(now)).collect();
    all.sort_by(|a, b| (&a.domain, &a.path, &a.name).cmp(&(&b.domain, &b.path, &b.name)));
    let mut out = String::from(HEADER);
    let tf = |b: bool| if b { "TRUE" } else { "FALSE" };
    for c in all {
        if c.http_only {
            out.push_str("#HttpOnly_");
        }
        if !c.host_only {
            out.push('.');
        }
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            c.domain,
            tf(!c.host_only),
            c.path,
            tf(c.secure),
            c.expires.unwrap_or(0).max(0),
            c.name,
            c.value
        ));
    }
    out
}

/// Reads the cookie file at `path` into `jar`; a missing file loads nothing.
pub fn load(jar: &mut Jar, path: &Path, now: i64) -> io::Result<Loaded> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(read(jar, &String::from_utf8_lossy(&bytes), now)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Loaded::default()),
        Err(e) => Err(e),
    }
}

/// Writes `jar` to `path` (through a temporary file beside it, then a rename, so a
/// reader never sees half a file).
pub fn save(jar: &Jar, path: &Path, now: i64) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, write(jar, now))?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_lines_are_counted() {
        let mut jar = Jar::default();
        let text = "a\tTRUE\t/\tFALSE\t0\tn\n\
                    a\tMAYBE\t/\tFALSE\t0\tn\tv\n\
                    a\tTRUE\tnoslash\tFALSE\t0\tn\tv\n\
                    a\tTRUE\t/\tFALSE\tsoon\tn\tv\n\
                    .\tTRUE\t/\tFALSE\t0\tn\tv\n\
                    a\tTRUE\t/\tFALSE\t1\told\tv\n\
                    \n# comment\r\n\
                    a\tFALSE\t/\tFALSE\t0\tn\tv\r\n";
        let got = read(&mut jar, text, 100);
        assert_eq!(
            got,
            Loaded {
                stored: 1,
                malformed: 5
            }
        );
        assert_eq!(jar.len(), 1);
    }

    #[test]
    fn save_and_load_through_a_file() {
        let dir = std::env::temp_dir().join(format!("volley-cookie-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("jar.txt");
        let mut jar = Jar::default();
        let u = url::Url::parse("https://a.example.org/x/y").unwrap();
        assert!(jar.store(&u, "s=1; Secure; HttpOnly", 10));
        assert!(jar.store(
            &u,
            "d=2; Domain=example.org; Expires=Thu, 01 Jan 2099 00:00:00 GMT",
            10
        ));
        save(&jar, &p, 10).unwrap();
        let mut back = Jar::default();
        assert_eq!(load(&mut back, &p, 10).unwrap().stored, 2);
        assert_eq!(write(&back, 10), write(&jar, 10));
        assert_eq!(
            load(&mut back, &dir.join("absent"), 10).unwrap(),
            Loaded::default()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
