//! The query of a request-target: `name=value` pairs, percent-decoded.
//!
//! # The format
//!
//! RFC 3986 §3.4 only says that the query is what follows the first `?` of the
//! target, up to the end (a request-target carries no `#fragment`). How it is cut
//! into pairs is the convention browsers use for forms and for
//! `URLSearchParams`, the WHATWG URL standard's `application/x-www-form-urlencoded`
//! parser (§5.1):
//!
//! ```text
//! query  = pair *( "&" pair )      empty pairs (`a=1&&b=2`) are skipped
//! pair   = name [ "=" value ]      no `=`: the value is empty
//! ```
//!
//! In names and values, `+` stands for a space and `%XX` for the byte with hex
//! value XX (RFC 3986 §2.1), so `jobId=job%3A17` is `jobId` = `job:17`.
//!
//! # Where this is stricter than a browser
//!
//! A browser passes a `%` that is not followed by two hex digits through as it is,
//! and replaces bytes that are not UTF-8 with U+FFFD. A server that did the same
//! would answer a request for something the client did not ask for; here both are
//! an error ([`QueryError`]), which a server answers with 400 naming the
//! parameter. When a name appears more than once, the first one counts (as
//! `URLSearchParams.get` does).

use std::borrow::Cow;

use thiserror::Error;

/// Why a query parameter could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum QueryError {
    /// A `%` not followed by two hex digits.
    #[error("a '%' not followed by two hex digits")]
    BadEscape,
    /// The decoded bytes are not UTF-8.
    #[error("not UTF-8 once percent-decoded")]
    NotUtf8,
}

/// The value of the first parameter called `name` in `query`, percent-decoded;
/// `Ok(None)` if there is none. Names are compared after decoding.
///
/// ```
/// use wirepatterns::http::query::param;
/// assert_eq!(param("jobId=job%3A17&wait=5", "jobId").unwrap().as_deref(), Some("job:17"));
/// assert_eq!(param("a=1", "jobId").unwrap(), None);
/// assert!(param("jobId=job%3", "jobId").is_err());
/// ```
pub fn param<'a>(query: &'a str, name: &str) -> Result<Option<Cow<'a, str>>, QueryError> {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(n)? == name {
            return decode(v).map(Some);
        }
    }
    Ok(None)
}

/// Decodes one name or value: `+` is a space, `%XX` the byte XX. Borrows when
/// there is nothing to decode.
pub fn decode(text: &str) -> Result<Cow<'_, str>, QueryError> {
    if !text.bytes().any(|b| b == b'%' || b == b'+') {
        return Ok(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|&h| hex(h));
                let lo = bytes.get(i + 2).and_then(|&l| hex(l));
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(QueryError::BadEscape);
                };
                out.push(hi << 4 | lo);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| QueryError::NotUtf8)
}

/// The value of one hex digit.
fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(query: &str, name: &str) -> Option<String> {
        param(query, name).expect("decodes").map(Cow::into_owned)
    }

    #[test]
    fn pairs_are_split_and_decoded() {
        assert_eq!(get("jobId=job%3A17", "jobId").as_deref(), Some("job:17"));
        assert_eq!(get("jobId=job%3a17", "jobId").as_deref(), Some("job:17"));
        assert_eq!(get("a=1&&b=x+y", "b").as_deref(), Some("x y"));
        assert_eq!(get("flag&b=2", "flag").as_deref(), Some(""));
        assert_eq!(get("a=1&a=2", "a").as_deref(), Some("1"));
        assert_eq!(get("a%3D=1", "a=").as_deref(), Some("1"));
        assert_eq!(get("x=%E2%9C%93", "x").as_deref(), Some("✓"));
        assert_eq!(get("a=1", "b"), None);
        assert_eq!(get("", "b"), None);
        assert!(matches!(
            param("a=plain", "a"),
            Ok(Some(Cow::Borrowed("plain")))
        ));
    }

    #[test]
    fn bad_escapes_and_bad_utf8_are_errors() {
        assert_eq!(param("a=%", "a"), Err(QueryError::BadEscape));
        assert_eq!(param("a=%4", "a"), Err(QueryError::BadEscape));
        assert_eq!(param("a=%zz", "a"), Err(QueryError::BadEscape));
        assert_eq!(param("a=%FF", "a"), Err(QueryError::NotUtf8));
        // A bad escape in an earlier pair's name is an error too: it cannot be
        // told whether that pair was the one asked for.
        assert_eq!(param("%=1&a=2", "a"), Err(QueryError::BadEscape));
    }
}
