//! `--title`: the text of an HTML body's first `<title>`.
//!
//! Invariant: the scan is bounded — the handler keeps at most [`TITLE_SCAN`] bytes of
//! a body, and the search here is linear in what it is given.

/// How much of a decoded body is kept to find its title.
pub const TITLE_SCAN: usize = 64 * 1024;

/// Finds the text of the first HTML `<title>` in `body` (whitespace collapsed, the
/// common entities decoded).
pub fn html_title(body: &[u8]) -> Option<String> {
    let lower: Vec<u8> = body.iter().map(u8::to_ascii_lowercase).collect();
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay.get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    let open = find(&lower, b"<title", 0)?;
    let start = find(&lower, b">", open)? + 1;
    let end = find(&lower, b"</title", start).unwrap_or(body.len());
    let raw = String::from_utf8_lossy(&body[start..end]);
    let text = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles() {
        assert_eq!(
            html_title(b"<html><TITLE lang=en>\n A &amp; B  </title>").as_deref(),
            Some("A & B")
        );
        assert_eq!(html_title(b"<p>no title</p>"), None);
        assert_eq!(
            html_title(b"<title>unterminated").as_deref(),
            Some("unterminated")
        );
        assert_eq!(html_title(b"<title"), None);
    }
}
