//! Differential tests: the hand parser against httparse, on generated request heads.
//!
//! httparse is the oracle for the *syntax* of a head: where the request line and each
//! field line start and end, which bytes may appear where, and where the head ends.
//! On every generated head the two parsers must agree on accept or reject, and on a
//! head both accept, on every field: method, target, version, each header's name and
//! value (both strip the OWS around a value), and the head's length.
//!
//! The heads come from a generator of mostly valid requests (methods from a list and
//! random tokens; origin-form targets with queries, sometimes `*`, absolute-form or
//! authority-form; token header names; values of printable ASCII, obs-text and tabs;
//! random OWS; CRLF or bare LF per line; HTTP/1.0 or 1.1), and from mutations of those
//! (a byte inserted, deleted or replaced, biased towards the bytes the grammar cares
//! about: CR, LF, SP, HTAB, `:`, NUL, DEL, obs-text).
//!
//! # Where the two differ on purpose
//!
//! httparse only checks syntax and leaves the meaning of the fields to its caller.
//! This parser enforces the rules RFC 9112 puts on a server, so on some heads httparse
//! accepts, it must reject, and with the error naming that rule ([`rules_broken`]
//! computes which, from httparse's parse of the same bytes):
//!
//! | rule | RFC | our error |
//! |---|---|---|
//! | an HTTP/1.1 request has a Host field | RFC 9112 §3.2 (MUST respond 400) | `MissingHost` |
//! | at most one Host field | RFC 9112 §3.2 (MUST respond 400) | `DuplicateHost` |
//! | the Host value is `uri-host [":" port]` (or empty) | RFC 9112 §3.2 (MUST respond 400), RFC 9110 §7.2, RFC 3986 §3.2.2 | `InvalidHost` |
//! | Content-Length is `1*DIGIT`, repeated only with one value | RFC 9110 §8.6, RFC 9112 §6.3 rule 5 | `InvalidContentLength`, `ConflictingContentLength` |
//! | not both Content-Length and Transfer-Encoding | RFC 9112 §6.1 (MAY reject; we do, against smuggling) | `ContentLengthWithTransferEncoding` |
//! | chunked is the final coding, once; other codings not implemented | RFC 9112 §6.3 rule 4, §6.1 | `ChunkedNotLast`, `UnsupportedTransferCoding` |
//! | the target's form fits the method (`*` only for OPTIONS, authority-form only and always for CONNECT) | RFC 9112 §3.2.3, §3.2.4 | `TargetFormMismatch`, `InvalidTarget` |
//! | a target that is none of the four forms | RFC 9112 §3.2 | `InvalidTarget` |
//! | every line of the head ends in CRLF (unless `Limits::allow_bare_lf`) | RFC 9112 §2.2 (MAY accept a bare LF; we refuse it by default, against smuggling) | `BareLf` |
//! | chunked takes no parameters | RFC 9112 §7.1 (SHOULD be treated as an error) | `ChunkedWithParameters` |
//!
//! [`rules_broken`] reads these rules from the RFCs' grammar (RFC 3986 for hosts and
//! URIs, the list syntax of RFC 9110 §5.6.1 for Content-Length and
//! Transfer-Encoding), with helpers of its own that share no code and no structure
//! with the parser's: where the expected answer was derived with a copy of the
//! parser's helpers, a mistake in both would pass unseen.
//!
//! And two places where this parser accepts what httparse rejects; the test maps
//! each to the head httparse would accept (same length, same offsets) and compares
//! with that ([`normalize`]):
//!
//! - `HTTP/1.x` with x from 2 to 9: RFC 9110 §6.2 says a server should answer a
//!   higher minor version of a major version it speaks as the highest minor it
//!   supports; we parse it as HTTP/1.1. httparse only knows `HTTP/1.0` and
//!   `HTTP/1.1`.
//! - A target with obs-text that is not UTF-8: both accept bytes 0x80-0xFF in a
//!   target (browsers send them unescaped), but httparse hands the target out as
//!   `&str` and so rejects bytes that are not UTF-8. We keep the bytes
//!   (`Request::target_bytes`).
//!
//! Where both reject, the errors are not compared: httparse's error kinds are coarser
//! (`Token`, `NewLine`...) than ours, which name the rule. Where httparse reports an
//! error before the head is complete, we answer "need more" until the empty line
//! arrives (we judge a head once it is whole); the test then completes the head with
//! an empty line and requires that we reject it too.
//!
//! Every head is judged twice: by the default parser, for which a bare LF ending a
//! line breaks a rule, and by one with `Limits::allow_bare_lf`, which must read
//! bare-LF heads exactly as httparse does.
//!
//! Besides agreement with httparse, two properties of our parser alone: feeding a
//! head in pieces (a growing buffer, as a server reads it) gives the same result as
//! feeding it whole, and two pipelined heads parse like each one alone.

use proptest::prelude::*;
use proptest::sample::Index;
use wirepatterns::http::{HttpError, Limits, RequestParser, Status, Version};

/// Cases per property: enough to find a disagreement in a few seconds, few enough
/// for CI. Override with `PROPTEST_CASES`.
const CASES: u32 = 1500;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(CASES),
        // Integration tests have no lib.rs beside them for proptest's regression
        // files; a failure prints its minimal input instead.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------
// Both parsers, reduced to the same shape.
// ---------------------------------------------------------------------------------

/// Where a piece of the head lies in the buffer.
type Span = (usize, usize);

/// A parsed head, as offsets into the buffer (so two parsers reading the same bytes
/// can be compared even when one of them was shown a normalized copy).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    method: Span,
    target: Span,
    /// 0 or 1: HTTP/1.0 or HTTP/1.1.
    minor: u8,
    headers: Vec<(Span, Span)>,
    head_len: usize,
}

impl Head {
    fn text<'b>(&self, buf: &'b [u8], span: Span) -> &'b [u8] {
        &buf[span.0..span.1]
    }

    /// The fields as bytes of `buf`, for comparisons and messages. Empty values are
    /// compared as bytes, not offsets: an empty slice's position means nothing.
    fn fields<'b>(&self, buf: &'b [u8]) -> HeadText<'b> {
        HeadText {
            method: self.text(buf, self.method),
            target: self.text(buf, self.target),
            minor: self.minor,
            headers: self
                .headers
                .iter()
                .map(|&(n, v)| (self.text(buf, n), self.text(buf, v)))
                .collect(),
            head_len: self.head_len,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct HeadText<'b> {
    method: &'b [u8],
    target: &'b [u8],
    minor: u8,
    headers: Vec<(&'b [u8], &'b [u8])>,
    head_len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome<E> {
    Complete(Head),
    Partial,
    Error(E),
}

/// Where `part` (a slice of `buf`) lies in `buf`.
fn span_in(buf: &[u8], part: &[u8]) -> Span {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    assert!(start + part.len() <= buf.len(), "slice outside the buffer");
    (start, start + part.len())
}

fn ours_with(parser: &mut RequestParser, buf: &[u8]) -> Outcome<HttpError> {
    match parser.parse(buf) {
        Ok(Status::Complete(req)) => Outcome::Complete(Head {
            method: span_in(buf, req.method().as_bytes()),
            target: span_in(buf, req.target_bytes()),
            minor: match req.version() {
                Version::Http10 => 0,
                Version::Http11 => 1,
            },
            headers: req
                .headers()
                .map(|h| (span_in(buf, h.name.as_bytes()), span_in(buf, h.value)))
                .collect(),
            head_len: req.head_len(),
        }),
        Ok(Status::Partial) => Outcome::Partial,
        Err(e) => Outcome::Error(e),
    }
}

fn ours(buf: &[u8]) -> Outcome<HttpError> {
    ours_with(&mut RequestParser::default(), buf)
}

/// Our parser with `Limits::allow_bare_lf`: RFC 9112 §2.2's MAY taken, as httparse
/// takes it.
fn ours_lenient(buf: &[u8]) -> Outcome<HttpError> {
    let limits = Limits {
        allow_bare_lf: true,
        ..Limits::default()
    };
    ours_with(&mut RequestParser::new(limits), buf)
}

fn theirs(buf: &[u8]) -> Outcome<httparse::Error> {
    // More slots than our limit of 100 fields, so httparse's own limit never decides.
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(head_len)) => Outcome::Complete(Head {
            method: span_in(buf, req.method.unwrap_or_default().as_bytes()),
            target: span_in(buf, req.path.unwrap_or_default().as_bytes()),
            minor: req.version.unwrap_or_default(),
            headers: req
                .headers
                .iter()
                .map(|h| (span_in(buf, h.name.as_bytes()), span_in(buf, h.value)))
                .collect(),
            head_len,
        }),
        Ok(httparse::Status::Partial) => Outcome::Partial,
        Err(e) => Outcome::Error(e),
    }
}

// ---------------------------------------------------------------------------------
// The documented differences.
// ---------------------------------------------------------------------------------

/// The request line of `buf`: the bytes after any leading empty lines, up to the
/// first LF. `None` if there is no LF.
fn request_line(buf: &[u8]) -> Option<Span> {
    let mut start = 0;
    loop {
        match buf.get(start..) {
            Some([b'\n', ..]) => start += 1,
            Some([b'\r', b'\n', ..]) => start += 2,
            Some(_) => break,
            None => return None,
        }
    }
    let lf = start + buf[start..].iter().position(|&b| b == b'\n')?;
    Some((start, lf))
}

/// The head httparse would accept for the leniencies listed in the module docs, with
/// the same length and offsets: `HTTP/1.2`-`HTTP/1.9` becomes `HTTP/1.1`, and a
/// target's bytes >= 0x80 become `x` when they are not UTF-8.
fn normalize(buf: &[u8]) -> Vec<u8> {
    let mut out = buf.to_vec();
    let Some((start, lf)) = request_line(buf) else {
        return out;
    };
    let line = &buf[start..lf];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // RFC 9110 §6.2: HTTP/1.x, x > 1, is answered as HTTP/1.1.
    if let [.., b' ', b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor] = line
        && (b'2'..=b'9').contains(minor)
    {
        out[start + line.len() - 1] = b'1';
    }
    // A target with obs-text that is not UTF-8.
    let mut parts = line.splitn(3, |&b| b == b' ');
    if let (Some(method), Some(target), Some(_)) = (parts.next(), parts.next(), parts.next())
        && std::str::from_utf8(target).is_err()
    {
        let at = start + method.len() + 1;
        for b in &mut out[at..at + target.len()] {
            if *b >= 0x80 {
                *b = b'x';
            }
        }
    }
    out
}

// The oracle's own reading of the RFCs. Written from the grammar's text, not from
// the parser: a mistake shared by both would otherwise be invisible.

/// OWS = *( SP / HTAB ) (RFC 9110 §5.6.3).
fn is_ows(b: &u8) -> bool {
    *b == b' ' || *b == b'\t'
}

/// The non-empty runs of non-OWS bytes in `s`: what is left of a list element once
/// the OWS around it is dropped, and a way to see that it was one word.
fn words(s: &[u8]) -> Vec<&[u8]> {
    s.split(is_ows).filter(|w| !w.is_empty()).collect()
}

/// The elements of a list-based field (`#element`, RFC 9110 §5.6.1), over all of
/// its field lines combined in order (RFC 9110 §5.3). Empty elements (nothing but
/// OWS) are dropped: "a recipient MUST parse and ignore a reasonable number of
/// empty list elements".
fn list_elements<'b>(lines: &[&'b [u8]]) -> Vec<&'b [u8]> {
    lines
        .iter()
        .flat_map(|line| line.split(|&b| b == b','))
        .filter(|element| !words(element).is_empty())
        .collect()
}

/// tchar (RFC 9110 §5.6.2).
fn is_tchar(b: &u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b)
}

/// unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986 §2.3).
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

/// sub-delims = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="
/// (RFC 3986 §2.2).
fn is_sub_delim(b: u8) -> bool {
    b"!$&'()*+,;=".contains(&b)
}

/// reg-name = *( unreserved / pct-encoded / sub-delims ), with
/// pct-encoded = "%" HEXDIG HEXDIG (RFC 3986 §3.2.2, §2.1).
fn is_reg_name(mut s: &[u8]) -> bool {
    loop {
        s = match s {
            [] => return true,
            [b'%', hi, lo, rest @ ..] if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => rest,
            [b, rest @ ..] if is_unreserved(*b) || is_sub_delim(*b) => rest,
            _ => return false,
        }
    }
}

/// IP-literal = "[" ( IPv6address / IPvFuture ) "]", with
/// IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
/// (RFC 3986 §3.2.2; the "v" matches "V" too: ABNF strings are case-insensitive,
/// RFC 5234 §2.3). IPv6address is left to the standard library's parser.
fn is_ip_literal(s: &[u8]) -> bool {
    let Some(inner) = s.strip_prefix(b"[").and_then(|s| s.strip_suffix(b"]")) else {
        return false;
    };
    if let Some(future) = inner
        .strip_prefix(b"v")
        .or_else(|| inner.strip_prefix(b"V"))
    {
        let Some(dot) = future.iter().position(|&b| b == b'.') else {
            return false;
        };
        let (version, rest) = (&future[..dot], &future[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !rest.is_empty()
            && rest
                .iter()
                .all(|&b| is_unreserved(b) || is_sub_delim(b) || b == b':');
    }
    std::str::from_utf8(inner).is_ok_and(|text| text.parse::<std::net::Ipv6Addr>().is_ok())
}

/// host = IP-literal / IPv4address / reg-name (RFC 3986 §3.2.2; every
/// IPv4address is also a reg-name).
fn is_uri_host(s: &[u8]) -> bool {
    is_ip_literal(s) || is_reg_name(s)
}

/// Splits `uri-host [ ":" port ]` into the host and the port (if there is a
/// colon), checking port = *DIGIT (RFC 3986 §3.2.3). A reg-name holds no colon
/// and an IP-literal ends with `]`, so the port is after the first colon that
/// follows the host. `None` if what follows the host is not a port.
fn host_and_port(s: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let host_end = if s.first() == Some(&b'[') {
        s.iter().position(|&b| b == b']').map_or(s.len(), |i| i + 1)
    } else {
        s.iter().position(|&b| b == b':').unwrap_or(s.len())
    };
    let (host, rest) = s.split_at(host_end);
    match rest {
        [] => Some((host, None)),
        [b':', port @ ..] if port.iter().all(u8::is_ascii_digit) => Some((host, Some(port))),
        _ => None,
    }
}

/// Host = uri-host [ ":" port ] (RFC 9110 §7.2), or empty (RFC 9112 §3.2: sent
/// when the target URI has no authority).
fn is_host_field_value(value: &[u8]) -> bool {
    value.is_empty() || host_and_port(value).is_some_and(|(host, _)| is_uri_host(host))
}

/// The form of a request-target (RFC 9112 §3.2), by its grammar alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// origin-form = absolute-path [ "?" query ]; absolute-path = 1*( "/" segment ).
    Origin,
    /// absolute-form = absolute-URI; this server takes the URIs HTTP uses, whose
    /// hier-part is "//" authority (RFC 9110 §4.2.1-4.2.2): `scheme "://" ...`, with
    /// scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986 §3.1).
    Absolute,
    /// authority-form = uri-host ":" port.
    Authority,
    /// asterisk-form = "*".
    Asterisk,
}

fn form_of(target: &[u8]) -> Option<Form> {
    if target == b"*" {
        return Some(Form::Asterisk);
    }
    if target.starts_with(b"/") {
        return Some(Form::Origin);
    }
    if let Some(at) = target.windows(3).position(|w| w == b"://")
        && let [first, rest @ ..] = &target[..at]
        && first.is_ascii_alphabetic()
        && rest
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return Some(Form::Absolute);
    }
    match host_and_port(target) {
        Some((host, Some(_))) if is_uri_host(host) => Some(Form::Authority),
        _ => None,
    }
}

/// The rules of RFC 9112 that a head httparse accepted breaks, each as the error we
/// must answer with. Empty: we must accept the head too. (When several rules are
/// broken, we may name any one of them: the first one met in the head.)
/// The rules the default parser enforces that `head` (httparse's parse of `buf`)
/// breaks.
fn rules_broken(buf: &[u8], head: &Head) -> Vec<HttpError> {
    rules_broken_by(buf, head, false)
}

/// The rules a parser enforces that `head` breaks; `allow_bare_lf` as in `Limits`.
fn rules_broken_by(buf: &[u8], head: &Head, allow_bare_lf: bool) -> Vec<HttpError> {
    let h = head.fields(buf);
    let mut broken = Vec::new();

    // RFC 9112 §2.1: each line of the head (the empty lines before the request
    // line included) ends in CRLF; §2.2 only allows a recipient to take a bare LF.
    let lines = &buf[..head.head_len.min(buf.len())];
    if !allow_bare_lf
        && lines
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\n' && lines.get(i.wrapping_sub(1)) != Some(&b'\r'))
    {
        broken.push(HttpError::BareLf);
    }

    // RFC 9112 §3.2: the request-target takes one of four forms, and the method
    // decides which: CONNECT uses authority-form and only it (§3.2.3, RFC 9110
    // §9.3.6), asterisk-form is only for a server-wide OPTIONS (§3.2.4).
    let connect = h.method == b"CONNECT";
    match form_of(h.target) {
        None => broken.push(HttpError::InvalidTarget),
        Some(Form::Authority) if connect => {}
        Some(Form::Origin | Form::Absolute) if !connect => {}
        Some(Form::Asterisk) if h.method == b"OPTIONS" => {}
        // An authority-form target in a request other than CONNECT is also none
        // of the forms such a request may take: either name fits.
        Some(Form::Authority) => {
            broken.push(HttpError::TargetFormMismatch);
            broken.push(HttpError::InvalidTarget);
        }
        Some(_) => broken.push(HttpError::TargetFormMismatch),
    }
    if h.target.len() > 8 * 1024 {
        broken.push(HttpError::TargetTooLong);
    }
    if h.headers.len() > 100 || h.head_len > 16 * 1024 {
        broken.push(HttpError::HeadTooLarge);
    }

    let named = |name: &str| -> Vec<&[u8]> {
        h.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|&(_, v)| v)
            .collect()
    };

    // RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one in 1.0, and a
    // server MUST answer 400 to a Host field with an invalid value.
    let hosts = named("host");
    if hosts.is_empty() && h.minor == 1 {
        broken.push(HttpError::MissingHost);
    }
    if hosts.len() > 1 {
        broken.push(HttpError::DuplicateHost);
    }
    if hosts.iter().any(|v| !is_host_field_value(v)) {
        broken.push(HttpError::InvalidHost);
    }

    // RFC 9110 §8.6: Content-Length = 1*DIGIT. A comma-separated list of the same
    // value, or the same value on several lines, may be taken as that value;
    // values that differ are an unrecoverable error (RFC 9112 §6.3 rule 5). This is
    // not a list field, so an empty element is no value: invalid. A value too big
    // for 64 bits is invalid too (RFC 9110 §8.6: prevent overflow).
    let lengths = named("content-length");
    let mut values = Vec::new();
    for piece in lengths.iter().flat_map(|v| v.split(|&b| b == b',')) {
        let value = match words(piece).as_slice() {
            [digits] if digits.iter().all(u8::is_ascii_digit) => std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse::<u64>().ok()),
            _ => None,
        };
        match value {
            Some(n) => values.push(n),
            None => broken.push(HttpError::InvalidContentLength),
        }
    }
    if values.iter().any(|&n| n != values[0]) {
        broken.push(HttpError::ConflictingContentLength);
    }

    // RFC 9112 §6.1: Transfer-Encoding = #transfer-coding, and
    // transfer-coding = token *( OWS ";" OWS transfer-parameter ).
    let codings = named("transfer-encoding");
    if !codings.is_empty() {
        // §6.1: a sender MUST NOT send both; we reject it (against smuggling).
        if !lengths.is_empty() {
            broken.push(HttpError::ContentLengthWithTransferEncoding);
        }
        // Each coding's name, `None` where the element is not a token.
        let names: Vec<Option<&[u8]>> = list_elements(&codings)
            .into_iter()
            .map(|element| {
                let before_parameters = element.split(|&b| b == b';').next().unwrap_or_default();
                match words(before_parameters).as_slice() {
                    [name] if name.iter().all(is_tchar) => Some(*name),
                    _ => None,
                }
            })
            .collect();
        let is_chunked = |n: &Option<&[u8]>| n.is_some_and(|n| n.eq_ignore_ascii_case(b"chunked"));
        // §6.3 rule 4: chunked is not the final coding: 400. §6.1: chunked MUST NOT
        // be applied more than once.
        let chunked = names.iter().filter(|n| is_chunked(n)).count();
        if chunked != 1 || !names.last().is_some_and(is_chunked) {
            broken.push(HttpError::ChunkedNotLast);
        }
        // §6.1: a coding the server does not understand: 501.
        if names.iter().any(|n| !is_chunked(n)) {
            broken.push(HttpError::UnsupportedTransferCoding);
        }
        // RFC 9112 §7.1: chunked defines no parameters; their presence SHOULD be
        // treated as an error.
        if list_elements(&codings).into_iter().any(|element| {
            let mut parts = element.split(|&b| b == b';');
            let name = parts.next().unwrap_or_default();
            matches!(words(name).as_slice(), [n] if n.eq_ignore_ascii_case(b"chunked"))
                && parts.next().is_some()
        }) {
            broken.push(HttpError::ChunkedWithParameters);
        }
    }
    broken
}

/// The verdict on one input: `Ok` if the two parsers agree (up to the documented
/// differences), or what went wrong.
fn compare(buf: &[u8]) -> Result<(), String> {
    let oracle = theirs(&normalize(buf));
    judge(buf, ours(buf), oracle.clone())?;
    judge_by(buf, ours_lenient(buf), oracle, true).map_err(|e| format!("allowing bare LF: {e}"))
}

/// [`compare`]'s verdict on the default parser, given both outcomes on `buf`.
fn judge(
    buf: &[u8],
    mine: Outcome<HttpError>,
    oracle: Outcome<httparse::Error>,
) -> Result<(), String> {
    judge_by(buf, mine, oracle, false)
}

/// [`compare`]'s verdict for a parser with `allow_bare_lf`.
fn judge_by(
    buf: &[u8],
    mine: Outcome<HttpError>,
    oracle: Outcome<httparse::Error>,
    allow_bare_lf: bool,
) -> Result<(), String> {
    let show = || format!("input {:?}", String::from_utf8_lossy(buf));
    let rules_broken = |buf: &[u8], head: &Head| rules_broken_by(buf, head, allow_bare_lf);
    match (&mine, &oracle) {
        (Outcome::Complete(a), Outcome::Complete(b)) => {
            let broken = rules_broken(buf, b);
            if !broken.is_empty() {
                return Err(format!(
                    "accepted a head that breaks {broken:?}: {}",
                    show()
                ));
            }
            if a.fields(buf) != b.fields(buf) {
                return Err(format!(
                    "fields differ:\n ours     {:?}\n httparse {:?}\n{}",
                    a.fields(buf),
                    b.fields(buf),
                    show()
                ));
            }
            if a.headers.iter().zip(&b.headers).any(|(x, y)| x.0 != y.0)
                || a.method != b.method
                || a.target != b.target
            {
                return Err(format!("same bytes at other offsets: {}", show()));
            }
            Ok(())
        }
        (Outcome::Error(e), Outcome::Complete(b)) => {
            let broken = rules_broken(buf, b);
            if broken.contains(e) {
                Ok(())
            } else {
                Err(format!(
                    "rejected with {e:?} a head httparse accepts, breaking only {broken:?}: {}",
                    show()
                ))
            }
        }
        (Outcome::Complete(_), _) => Err(format!(
            "accepted a head httparse answers {oracle:?}: {}",
            show()
        )),
        (Outcome::Partial, Outcome::Complete(_)) => Err(format!(
            "still waiting on a head httparse finds complete: {}",
            show()
        )),
        (Outcome::Error(e), Outcome::Partial) => Err(format!(
            "rejected with {e:?} a head httparse still waits on: {}",
            show()
        )),
        (Outcome::Error(_), Outcome::Error(_)) | (Outcome::Partial, Outcome::Partial) => Ok(()),
        (Outcome::Partial, Outcome::Error(_)) => {
            // httparse saw the fault before the head ended; we judge the head once
            // it is whole. Complete it, and we must reject it then.
            let mut whole = buf.to_vec();
            whole.extend_from_slice(b"\r\n\r\n");
            let again = if allow_bare_lf {
                ours_lenient(&whole)
            } else {
                ours(&whole)
            };
            match again {
                Outcome::Error(_) => Ok(()),
                other => Err(format!(
                    "httparse rejects {oracle:?}, we answer {other:?} once the head is complete: {}",
                    show()
                )),
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// The generator.
// ---------------------------------------------------------------------------------

/// One generated header field line.
#[derive(Debug, Clone)]
struct Field {
    name: Vec<u8>,
    before: Vec<u8>,
    value: Vec<u8>,
    after: Vec<u8>,
    crlf: bool,
}

/// A generated head, before rendering.
#[derive(Debug, Clone)]
struct Spec {
    empty_lines: Vec<bool>,
    method: Vec<u8>,
    target: Vec<u8>,
    minor: u8,
    line_crlf: bool,
    fields: Vec<Field>,
    end_crlf: bool,
}

impl Spec {
    fn render(&self) -> Vec<u8> {
        let eol = |crlf: bool| -> &'static [u8] { if crlf { b"\r\n" } else { b"\n" } };
        let mut out = Vec::new();
        for &crlf in &self.empty_lines {
            out.extend_from_slice(eol(crlf));
        }
        out.extend_from_slice(&self.method);
        out.push(b' ');
        out.extend_from_slice(&self.target);
        out.extend_from_slice(format!(" HTTP/1.{}", self.minor).as_bytes());
        out.extend_from_slice(eol(self.line_crlf));
        for f in &self.fields {
            out.extend_from_slice(&f.name);
            out.push(b':');
            out.extend_from_slice(&f.before);
            out.extend_from_slice(&f.value);
            out.extend_from_slice(&f.after);
            out.extend_from_slice(eol(f.crlf));
        }
        out.extend_from_slice(eol(self.end_crlf));
        out
    }
}

const TCHARS: &str = "[A-Za-z0-9!#$%&'*+.^_`|~-]";

fn token(max: usize) -> BoxedStrategy<Vec<u8>> {
    proptest::string::string_regex(&format!("{TCHARS}{{1,{max}}}"))
        .expect("valid regex")
        .prop_map(String::into_bytes)
        .boxed()
}

fn method() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        32 => prop::sample::select(vec![
            "GET", "GET", "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "TRACE",
        ])
        .prop_map(|m| m.as_bytes().to_vec()),
        1 => Just(b"CONNECT".to_vec()),
        6 => token(10),
    ]
    .boxed()
}

fn target() -> BoxedStrategy<Vec<u8>> {
    let segment = "[A-Za-z0-9._~!$&'()*+,;=:@%-]{0,12}";
    let origin = proptest::string::string_regex(&format!(
        "(/{segment}){{1,4}}(\\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]{{0,20}})?"
    ))
    .expect("valid regex")
    .prop_map(String::into_bytes);
    prop_oneof![
        30 => origin,
        1 => Just(b"*".to_vec()),
        1 => proptest::string::string_regex("http://[a-z0-9.-]{1,12}(:[0-9]{1,5})?(/[a-z0-9]{0,8}){0,3}")
            .expect("valid regex")
            .prop_map(String::into_bytes),
        1 => proptest::string::string_regex("[a-z0-9.-]{1,12}:[0-9]{1,5}")
            .expect("valid regex")
            .prop_map(String::into_bytes),
        // Browsers send UTF-8 unescaped now and then.
        1 => Just("/caf\u{e9}/\u{1f600}".as_bytes().to_vec()),
    ]
    .boxed()
}

fn ows() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        6 => Just(b" ".to_vec()),
        2 => Just(Vec::new()),
        1 => prop::collection::vec(prop::sample::select(vec![b' ', b'\t']), 0..4),
    ]
    .boxed()
}

/// A field value: printable ASCII, with now and then obs-text, SP or HTAB inside.
fn value() -> BoxedStrategy<Vec<u8>> {
    let byte = prop_oneof![
        20 => 0x21u8..=0x7e,
        2 => Just(b' '),
        1 => Just(b'\t'),
        1 => 0x80u8..=0xff,
    ];
    prop::collection::vec(byte, 0..40).boxed()
}

fn header_name() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "Accept", "User-Agent", "Accept-Encoding", "Cookie", "Connection", "Expect",
            "X-Request-Id", "Content-Type", "Cache-Control",
        ])
        .prop_map(|n| n.as_bytes().to_vec()),
        2 => token(20),
    ]
    .boxed()
}

fn field_with(
    name: impl Strategy<Value = Vec<u8>> + 'static,
    value: impl Strategy<Value = Vec<u8>> + 'static,
) -> BoxedStrategy<Field> {
    (name, ows(), value, ows(), prop::bool::weighted(0.9))
        .prop_map(|(name, before, value, after, crlf)| Field {
            name,
            before,
            value,
            after,
            crlf,
        })
        .boxed()
}

fn host_value() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        20 => proptest::string::string_regex("[a-z0-9-]{1,10}(\\.[a-z0-9-]{1,10}){0,2}(:[0-9]{1,5})?")
            .expect("valid regex")
            .prop_map(String::into_bytes),
        1 => Just(b"[::1]:8080".to_vec()),
        1 => Just(Vec::new()),
        // Not a host: we answer 400 InvalidHost.
        1 => Just(b"a b".to_vec()),
    ]
    .boxed()
}

/// The fields that decide framing, mostly valid, sometimes breaking a rule on
/// purpose (the model in `rules_broken` knows which).
fn framing_fields() -> BoxedStrategy<Vec<Field>> {
    let cl = |v: &'static str| field_with(Just(b"Content-Length".to_vec()), Just(v.into()));
    let te = |v: &'static str| field_with(Just(b"Transfer-Encoding".to_vec()), Just(v.into()));
    prop_oneof![
        24 => Just(Vec::new()),
        6 => (0u64..100_000).prop_flat_map(|n| {
            field_with(Just(b"Content-Length".to_vec()), Just(n.to_string().into_bytes()))
        }).prop_map(|f| vec![f]),
        6 => te("chunked").prop_map(|f| vec![f]),
        1 => (cl("5"), te("chunked")).prop_map(|(a, b)| vec![a, b]),
        1 => (cl("5"), cl("6")).prop_map(|(a, b)| vec![a, b]),
        1 => (cl("7"), cl("7")).prop_map(|(a, b)| vec![a, b]),
        1 => prop::sample::select(vec!["-1", "1.5", "", "0x10", "5, 5", "5, 6", "99999999999999999999"])
            .prop_flat_map(cl).prop_map(|f| vec![f]),
        1 => prop::sample::select(vec!["gzip", "gzip, chunked", "chunked, gzip", "chunked, chunked", "Chunked", "chunked;q=1"])
            .prop_flat_map(te).prop_map(|f| vec![f]),
    ]
    .boxed()
}

fn spec() -> BoxedStrategy<Spec> {
    (
        prop::collection::vec(any::<bool>(), 0..=1),
        method(),
        target(),
        prop::sample::select(vec![1u8, 1, 1, 0]),
        prop::bool::weighted(0.9),
        prop::collection::vec(field_with(header_name(), value()), 0..12),
        // How many Host fields: one, as HTTP/1.1 requires, or now and then none or two.
        prop::sample::select([vec![1usize; 18], vec![0, 2]].concat()),
        prop::collection::vec(field_with(Just(b"Host".to_vec()), host_value()), 2),
        framing_fields(),
        any::<Index>(),
        prop::bool::weighted(0.9),
    )
        .prop_map(
            |(
                empty_lines,
                method,
                target,
                minor,
                line_crlf,
                mut fields,
                hosts,
                host_fields,
                framing,
                at,
                end_crlf,
            )| {
                for host in host_fields.into_iter().take(hosts) {
                    let i = at.index(fields.len() + 1);
                    fields.insert(i, host);
                }
                for f in framing {
                    let i = at.index(fields.len() + 1);
                    fields.insert(i, f);
                }
                Spec {
                    empty_lines,
                    method,
                    target,
                    minor,
                    line_crlf,
                    fields,
                    end_crlf,
                }
            },
        )
        .boxed()
}

/// One edit of a head.
#[derive(Debug, Clone)]
enum Mutation {
    Insert(Index, u8),
    Delete(Index),
    Replace(Index, u8),
}

/// Bytes a mutation puts in, biased towards the ones the grammar treats specially.
fn edit_byte() -> BoxedStrategy<u8> {
    prop_oneof![
        3 => prop::sample::select(vec![b'\r', b'\n', b' ', b'\t', b':', 0u8, 0x7f, b'/', b'.', b'0', b'9', b'H']),
        1 => 0x80u8..=0xff,
        2 => any::<u8>(),
    ]
    .boxed()
}

fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        (any::<Index>(), edit_byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Delete),
        (any::<Index>(), edit_byte()).prop_map(|(i, b)| Mutation::Replace(i, b)),
    ]
    .boxed()
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        match *m {
            Mutation::Insert(i, b) => bytes.insert(i.index(bytes.len() + 1), b),
            Mutation::Delete(i) => {
                bytes.remove(i.index(bytes.len()));
            }
            Mutation::Replace(i, b) => {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
        }
    }
    bytes
}

/// A generated head with 1 to 3 edits.
fn mutated() -> BoxedStrategy<Vec<u8>> {
    (spec(), prop::collection::vec(mutation(), 1..=3))
        .prop_map(|(spec, edits)| apply(spec.render(), &edits))
        .boxed()
}

/// Feeds `buf` to one parser as a server would: a growing buffer, cut at `cuts`,
/// then whole. Returns the first outcome that is not Partial, or Partial.
fn fed_in_pieces(buf: &[u8], cuts: &[Index]) -> Outcome<HttpError> {
    let mut ends: Vec<usize> = cuts.iter().map(|c| c.index(buf.len() + 1)).collect();
    ends.sort_unstable();
    ends.push(buf.len());
    let mut parser = RequestParser::default();
    for end in ends {
        match ours_with(&mut parser, &buf[..end]) {
            Outcome::Partial => {}
            done => return done,
        }
    }
    Outcome::Partial
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn generated_heads_parse_like_httparse(spec in spec()) {
        let head = spec.render();
        if let Err(why) = compare(&head) {
            return Err(TestCaseError::fail(why));
        }
        // The generator makes whole heads: both parsers must see them whole.
        prop_assert!(!matches!(theirs(&normalize(&head)), Outcome::Partial));
    }

    #[test]
    fn mutated_heads_are_accepted_and_rejected_like_httparse(head in mutated()) {
        if let Err(why) = compare(&head) {
            return Err(TestCaseError::fail(why));
        }
    }

    #[test]
    fn field_sections_from_a_small_alphabet_are_judged_like_httparse(
        request_line in prop::sample::select(vec![
            &b"GET / HTTP/1.1\r\nHost: a\r\n"[..],
            &b"POST /x HTTP/1.0\n"[..],
        ]),
        fields in prop::collection::vec(
            prop::sample::select(b"aZ-:: \t\r\n\n\x80\0\x7f".to_vec()),
            0..40,
        ),
    ) {
        // Dense in the bytes that end names, values and lines, so the field-line
        // grammar is hit at every position; the empty line at the end makes most of
        // these heads complete.
        let mut head = request_line.to_vec();
        head.extend_from_slice(&fields);
        head.extend_from_slice(b"\r\n\r\n");
        if let Err(why) = compare(&head) {
            return Err(TestCaseError::fail(why));
        }
    }

    #[test]
    fn heads_fed_in_pieces_parse_like_heads_fed_whole(
        head in prop_oneof![spec().prop_map(|s| s.render()), mutated()],
        cuts in prop::collection::vec(any::<Index>(), 1..8),
    ) {
        prop_assert_eq!(fed_in_pieces(&head, &cuts), ours(&head));
    }

    #[test]
    fn heads_fed_one_byte_at_a_time_parse_like_heads_fed_whole(spec in spec()) {
        let head = spec.render();
        let mut parser = RequestParser::default();
        let mut outcome = Outcome::Partial;
        for end in 0..=head.len() {
            outcome = ours_with(&mut parser, &head[..end]);
            if outcome != Outcome::Partial {
                prop_assert_eq!(end, head.len(), "finished before the last byte");
                break;
            }
        }
        prop_assert_eq!(outcome, ours(&head));
    }

    #[test]
    fn pipelined_heads_parse_like_each_alone(a in spec(), b in spec()) {
        // Pipelining needs the first request to end with its head: no body.
        let no_body = |mut s: Spec| {
            s.fields.retain(|f| {
                !f.name.eq_ignore_ascii_case(b"content-length")
                    && !f.name.eq_ignore_ascii_case(b"transfer-encoding")
            });
            s.render()
        };
        let (a, b) = (no_body(a), no_body(b));
        let (Outcome::Complete(first), Outcome::Complete(second)) = (ours(&a), ours(&b)) else {
            return Ok(());
        };
        let mut both = a.clone();
        both.extend_from_slice(&b);
        let mut parser = RequestParser::default();
        let Outcome::Complete(one) = ours_with(&mut parser, &both) else {
            return Err(TestCaseError::fail("first of two pipelined heads not complete"));
        };
        prop_assert_eq!(one.fields(&both), first.fields(&a));
        let rest = &both[one.head_len..];
        let Outcome::Complete(two) = ours_with(&mut parser, rest) else {
            return Err(TestCaseError::fail("second of two pipelined heads not complete"));
        };
        prop_assert_eq!(two.fields(rest), second.fields(&b));
    }
}

/// The oracle's own sanity: the documented differences are real (if httparse ever
/// changes on one of them, the mapping in `normalize` must change too).
#[test]
fn documented_differences_hold() {
    let minor = b"GET / HTTP/1.7\r\nHost: a\r\n\r\n";
    assert_eq!(theirs(minor), Outcome::Error(httparse::Error::Version));
    assert!(matches!(
        ours(minor),
        Outcome::Complete(Head { minor: 1, .. })
    ));
    assert!(matches!(theirs(&normalize(minor)), Outcome::Complete(_)));

    let latin1 = b"GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(theirs(latin1), Outcome::Error(httparse::Error::Token));
    assert!(matches!(ours(latin1), Outcome::Complete(_)));
    assert_eq!(compare(latin1), Ok(()));

    let no_host = b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n";
    assert!(matches!(theirs(no_host), Outcome::Complete(_)));
    assert_eq!(ours(no_host), Outcome::Error(HttpError::MissingHost));
    assert_eq!(compare(no_host), Ok(()));

    // A bare LF: httparse takes RFC 9112 §2.2's MAY, we do only when allowed.
    let bare_lf = b"GET / HTTP/1.1\nHost: a\n\n";
    assert!(matches!(theirs(bare_lf), Outcome::Complete(_)));
    assert_eq!(ours(bare_lf), Outcome::Error(HttpError::BareLf));
    let (Outcome::Complete(lenient), Outcome::Complete(oracle)) =
        (ours_lenient(bare_lf), theirs(bare_lf))
    else {
        panic!("both accept {bare_lf:?} when a bare LF is allowed")
    };
    assert_eq!(lenient, oracle);
    assert_eq!(compare(bare_lf), Ok(()));

    // chunked with parameters: httparse leaves Transfer-Encoding to its caller.
    let params = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n";
    assert!(matches!(theirs(params), Outcome::Complete(_)));
    assert_eq!(
        ours(params),
        Outcome::Error(HttpError::ChunkedWithParameters)
    );
    assert_eq!(compare(params), Ok(()));
}

/// The verdict is able to fail: each kind of disagreement is reported, not waved
/// through.
#[test]
fn judge_reports_each_kind_of_disagreement() {
    let a = b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(judge(a, ours(a), theirs(a)), Ok(()));
    // A field that differs: httparse's target cut one byte short.
    let Outcome::Complete(mut short) = theirs(a) else {
        panic!("httparse accepts {a:?}")
    };
    short.target.1 -= 1;
    let err = judge(a, ours(a), Outcome::Complete(short)).unwrap_err();
    assert!(err.starts_with("fields differ"), "{err}");
    // We reject what httparse accepts, for a rule the head does not break.
    let err = judge(a, Outcome::Error(HttpError::BareCr), theirs(a)).unwrap_err();
    assert!(err.starts_with("rejected with BareCr"), "{err}");
    // We accept what httparse rejects.
    let err = judge(a, ours(a), Outcome::Error(httparse::Error::Token)).unwrap_err();
    assert!(err.starts_with("accepted a head httparse answers"), "{err}");
    // We wait where httparse has the whole head.
    let err = judge(a, Outcome::Partial, theirs(a)).unwrap_err();
    assert!(err.starts_with("still waiting"), "{err}");
    // And a head that breaks a rule we enforce is only accepted with that error.
    let dup = b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
    let Outcome::Complete(head) = theirs(dup) else {
        panic!("httparse accepts a duplicate Host")
    };
    assert_eq!(rules_broken(dup, &head), vec![HttpError::DuplicateHost]);
    assert_eq!(compare(dup), Ok(()));
    let err = judge(dup, Outcome::Error(HttpError::MissingHost), theirs(dup)).unwrap_err();
    assert!(err.starts_with("rejected with MissingHost"), "{err}");
}

/// Found by `heads_fed_in_pieces_parse_like_heads_fed_whole` (and the `parse_request`
/// fuzz target): a request line that starts with HTAB gets `InvalidMethod` when its
/// first byte arrives alone (the early method check answers before the head ends)
/// but `InvalidRequestLine` when the head arrives whole. Both are 400, with different
/// bodies: the answer must not depend on how the bytes were split.
/// FAILS until the early check treats a leading HTAB like a leading SP.
#[test]
fn leading_htab_gets_the_same_error_whole_or_in_pieces() {
    let head = b"\tGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut parser = RequestParser::default();
    let first_byte_alone = ours_with(&mut parser, &head[..1]);
    assert_eq!(first_byte_alone, ours(head));
}

/// The oracle's reading of the grammar, on vectors written from the RFCs' text: a
/// mistake here would make every property above judge by the wrong rule.
#[test]
fn oracle_reads_hosts_targets_and_framing_fields_by_the_rfcs() {
    for ok in [
        &b""[..],
        b"example.com",
        b"example.com:8080",
        b"example.com:",
        b"127.0.0.1:80",
        b"[::1]",
        b"[::1]:8080",
        b"[::ffff:192.0.2.1]",
        b"[v7.a:b]",
        b"[V7.a:b]",
        b"ex%41mple",
        b"a!$&'()*+,;=-._~",
    ] {
        assert!(is_host_field_value(ok), "{:?}", String::from_utf8_lossy(ok));
    }
    for bad in [
        &b"a b"[..],
        b"a:b",
        b"a:80:81",
        b"a%4",
        b"a%zz",
        b"[::1",
        b"[zz]",
        b"[::1]x",
        b"a/b",
        b"a@b",
        b"[v.x]",
    ] {
        assert!(
            !is_host_field_value(bad),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }

    assert_eq!(form_of(b"/a?b"), Some(Form::Origin));
    assert_eq!(form_of(b"*"), Some(Form::Asterisk));
    assert_eq!(form_of(b"http://a/b"), Some(Form::Absolute));
    assert_eq!(form_of(b"h+t.t-p1://a"), Some(Form::Absolute));
    assert_eq!(form_of(b"a.b:443"), Some(Form::Authority));
    assert_eq!(form_of(b"[::1]:443"), Some(Form::Authority));
    for none in [&b"a"[..], b"1http://a", b"a:b", b"a:80/x", b"**"] {
        assert_eq!(form_of(none), None, "{:?}", String::from_utf8_lossy(none));
    }

    let broken = |head: &[u8]| {
        let Outcome::Complete(parsed) = theirs(head) else {
            panic!("httparse accepts {:?}", String::from_utf8_lossy(head))
        };
        rules_broken(head, &parsed)
    };
    use HttpError::*;
    let cases: [(&[u8], Vec<HttpError>); 17] = [
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", vec![]),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", vec![ConflictingContentLength]),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", vec![InvalidContentLength]),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", vec![InvalidContentLength]),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", vec![InvalidContentLength]),
        (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", vec![UnsupportedTransferCoding]),
        (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", vec![ChunkedNotLast, UnsupportedTransferCoding]),
        (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", vec![ChunkedNotLast]),
        (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , Chunked\r\n\r\n", vec![]),
        (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , Chunked ;q=1\r\n\r\n", vec![ChunkedWithParameters]),
        (b"GET / HTTP/1.1\nHost: a\r\n\r\n", vec![BareLf]),
        (b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", vec![BareLf]),
        (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", vec![ContentLengthWithTransferEncoding]),
        (b"CONNECT a:80 HTTP/1.1\r\nHost: a:80\r\n\r\n", vec![]),
        (b"CONNECT /a HTTP/1.1\r\nHost: a\r\n\r\n", vec![TargetFormMismatch]),
        (b"GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n", vec![TargetFormMismatch, InvalidTarget]),
        (b"OPTIONS * HTTP/1.0\r\nHost: a:b\r\n\r\n", vec![InvalidHost]),
    ];
    for (head, expected) in cases {
        assert_eq!(
            broken(head),
            expected,
            "{:?}",
            String::from_utf8_lossy(head)
        );
    }
}

/// Found by `mutated_heads_are_accepted_and_rejected_like_httparse` once the oracle
/// read the Host grammar from RFC 3986 instead of the parser's byte table: RFC 9112
/// §3.2 says a server MUST answer 400 to a Host field with an invalid value, and
/// Host = uri-host [ ":" port ] (RFC 9110 §7.2). The parser checks only that every
/// byte may occur somewhere in a host, so it accepts these.
/// FAILS until the parser checks the Host value's grammar.
#[test]
fn rfc9112_3_2_host_value_outside_the_uri_host_grammar_is_400() {
    let answers: Vec<(String, Outcome<HttpError>)> = [
        &b":aaaa"[..],
        b"a:b",
        b"a:80:81",
        b"$[::1]:8080",
        b"[a.a0",
        b"a%zz",
    ]
    .iter()
    .map(|value| {
        let mut head = b"GET / HTTP/1.1\r\nHost: ".to_vec();
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n\r\n");
        (String::from_utf8_lossy(value).into_owned(), ours(&head))
    })
    .filter(|(_, answer)| *answer != Outcome::Error(HttpError::InvalidHost))
    .collect();
    assert!(
        answers.is_empty(),
        "not rejected with InvalidHost: {answers:?}"
    );
}

/// Found by the same property: authority-form = uri-host ":" port (RFC 9112
/// §3.2.3), but the parser takes any CONNECT target with a colon that is not one of
/// the other forms.
/// FAILS until the parser checks the authority-form's grammar.
#[test]
fn rfc9112_3_2_3_connect_target_outside_the_authority_grammar_is_400() {
    let answers: Vec<(String, Outcome<HttpError>)> = [&b"a:b"[..], b"a:80/x", b"\xff:0"]
        .iter()
        .map(|target| {
            let mut head = b"CONNECT ".to_vec();
            head.extend_from_slice(target);
            head.extend_from_slice(b" HTTP/1.1\r\nHost: a:80\r\n\r\n");
            (String::from_utf8_lossy(target).into_owned(), ours(&head))
        })
        .filter(|(_, answer)| *answer != Outcome::Error(HttpError::InvalidTarget))
        .collect();
    assert!(
        answers.is_empty(),
        "not rejected with InvalidTarget: {answers:?}"
    );
}
