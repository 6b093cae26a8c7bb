//! `--resume FILE`: which targets an earlier run already answered.
//!
//! FILE is the JSON Lines output of an earlier run with the same input and options.
//! Every whole line's `n` goes into a bitset (an eighth of a byte per target, so a
//! hundred million targets cost 12.5 MB); a last line cut short by a crash is cut
//! off, so appending starts on a fresh line. Lines that are not volley's JSON are
//! ignored.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

/// The set of `n` already done.
#[derive(Debug, Default, Clone)]
pub struct Done(Vec<u64>);

impl Done {
    /// True when target `n` has a result already.
    pub fn contains(&self, n: u64) -> bool {
        let (w, b) = ((n / 64) as usize, n % 64);
        self.0.get(w).is_some_and(|x| x & (1 << b) != 0)
    }

    fn insert(&mut self, n: u64) {
        let (w, b) = ((n / 64) as usize, n % 64);
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << b;
    }

    /// How many targets are done.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

/// The `n` of one of our JSON lines (`{"n":123,...`).
fn n_of(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"n\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 || rest.get(digits) != Some(&b',') || !line.ends_with(b"}") {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// Reads FILE (a missing file is an empty one) and cuts a partial last line.
pub fn load(path: &Path) -> std::io::Result<Done> {
    let mut done = Done::default();
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(done),
        Err(e) => return Err(e),
    };
    let mut whole = 0u64;
    {
        let mut r = BufReader::with_capacity(1 << 16, &mut f);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = r.read_until(b'\n', &mut line)?;
            if n == 0 || !line.ends_with(b"\n") {
                break;
            }
            whole += n as u64;
            if let Some(x) = n_of(&line[..line.len() - 1]) {
                done.insert(x);
            }
        }
    }
    if f.seek(SeekFrom::End(0))? != whole {
        f.set_len(whole)?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_cuts_partial_line() {
        let p = std::env::temp_dir().join(format!("volley-resume-{}", std::process::id()));
        std::fs::write(
            &p,
            "{\"n\":3,\"x\":1}\nnot json\n{\"n\":70,\"x\":2}\n{\"n\":9,\"x\"",
        )
        .unwrap();
        let d = load(&p).unwrap();
        assert!(d.contains(3) && d.contains(70) && !d.contains(9) && !d.contains(4));
        assert_eq!(d.len(), 2);
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"n\":3,\"x\":1}\nnot json\n{\"n\":70,\"x\":2}\n"
        );
        std::fs::remove_file(&p).unwrap();
        assert_eq!(load(&p).unwrap().len(), 0);
    }
}
