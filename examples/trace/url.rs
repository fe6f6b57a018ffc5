//! `http://HOST[:PORT][/PATH][?QUERY]`, split by hand (RFC 3986 §3, RFC 9110 §4.2.1).
//!
//! ```text
//! http-URI = "http" "://" authority path-abempty [ "?" query ]
//! authority = host [ ":" port ]        ; no userinfo: RFC 9110 §4.2.4 deprecates it
//! host      = IP-literal / IPv4address / reg-name   ; IP-literal = "[" IPv6 "]"
//! ```
//!
//! `ws://` is the same with another scheme (RFC 6455 §3) and asks for a WebSocket.
//! `https://` and `wss://` need TLS, which this client does not speak.

use std::fmt;

/// A URL this client can fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// The host to resolve: a name, an IPv4 address, or an IPv6 address without
    /// its brackets.
    pub host: String,
    /// The port, 80 when the URL names none (RFC 9110 §4.2.1).
    pub port: u16,
    /// The request-target in origin form (RFC 9112 §3.2.1): the path, `/` if the
    /// URL has none, and the query after `?`. The fragment (`#...`) is never sent.
    pub target: String,
    /// The URL's scheme was `ws://`.
    pub websocket: bool,
}

impl Url {
    /// Splits `text`, or says what is wrong with it.
    pub fn parse(text: &str) -> Result<Url, String> {
        let bad = |why: &str| format!("bad URL {text:?}: {why}");
        let (websocket, rest) = if let Some(rest) = strip_scheme(text, "http://") {
            (false, rest)
        } else if let Some(rest) = strip_scheme(text, "ws://") {
            (true, rest)
        } else if strip_scheme(text, "https://").is_some() || strip_scheme(text, "wss://").is_some()
        {
            return Err(bad(
                "TLS (https, wss) is not supported, only http:// and ws://",
            ));
        } else {
            return Err(bad("it must start with http:// or ws://"));
        };
        // The fragment is for the client alone (RFC 3986 §3.5).
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(split);
        if authority.contains('@') {
            return Err(bad("user information (user@host) is not supported"));
        }
        let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
            // IP-literal: "[" IPv6address "]" (RFC 3986 §3.2.2).
            let Some((v6, after)) = inner.split_once(']') else {
                return Err(bad("an IPv6 address needs its closing ]"));
            };
            if v6.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("not an IPv6 address between [ ]"));
            }
            match after {
                "" => (v6, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (v6, Some(port)),
                    None => return Err(bad("only :PORT may follow ]")),
                },
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:".contains(&b))
        {
            return Err(bad("the host may hold letters, digits, - . _ ~ only"));
        }
        let port = match port {
            None | Some("") => 80,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(bad("the port must be a number from 1 to 65535")),
            },
        };
        let target = match target {
            "" => "/".to_string(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_string(),
        };
        // Visible ASCII only: a space or a control byte would break the request line.
        if !target.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(
                "the path and query must be visible ASCII (percent-encode the rest)",
            ));
        }
        Ok(Url {
            host: host.to_string(),
            port,
            target,
            websocket,
        })
    }

    /// The `Host` header's value (RFC 9112 §3.2): the host, brackets around an
    /// IPv6 address, and the port unless it is the default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.websocket { "ws" } else { "http" };
        write!(f, "{scheme}://{}{}", self.host_header(), self.target)
    }
}

/// `text` without `scheme`, compared case-insensitively (RFC 3986 §3.1).
fn strip_scheme<'a>(text: &'a str, scheme: &str) -> Option<&'a str> {
    let head = text.get(..scheme.len())?;
    head.eq_ignore_ascii_case(scheme)
        .then(|| &text[scheme.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(host: &str, port: u16, target: &str) -> Url {
        Url {
            host: host.to_string(),
            port,
            target: target.to_string(),
            websocket: false,
        }
    }

    #[test]
    fn splits_host_port_path_and_query() {
        assert_eq!(
            Url::parse("http://example.com").unwrap(),
            url("example.com", 80, "/")
        );
        assert_eq!(
            Url::parse("http://127.0.0.1:8080/hello?x=1#frag").unwrap(),
            url("127.0.0.1", 8080, "/hello?x=1")
        );
        assert_eq!(Url::parse("HTTP://a?q").unwrap(), url("a", 80, "/?q"));
        assert_eq!(Url::parse("http://a:/p").unwrap(), url("a", 80, "/p"));
        let ws = Url::parse("ws://127.0.0.1:9001/").unwrap();
        assert!(ws.websocket);
        assert_eq!(ws.to_string(), "ws://127.0.0.1:9001/");
    }

    #[test]
    fn ipv6_literals_keep_their_brackets_in_host() {
        let u = Url::parse("http://[::1]:8080/x").unwrap();
        assert_eq!(u, url("::1", 8080, "/x"));
        assert_eq!(u.host_header(), "[::1]:8080");
        assert_eq!(Url::parse("http://[::1]").unwrap().host_header(), "[::1]");
    }

    #[test]
    fn bad_urls_say_why() {
        for (text, why) in [
            ("example.com", "must start with http://"),
            ("https://example.com", "TLS"),
            ("http://", "no host"),
            ("http://:80/", "no host"),
            ("http://a:0/", "port"),
            ("http://a:99999/", "port"),
            ("http://a:+80/", "port"),
            ("http://a:x/", "port"),
            ("http://[::1/", "closing ]"),
            ("http://[nope]/", "IPv6"),
            ("http://[::1]x/", "only :PORT"),
            ("http://u@a/", "user information"),
            ("http://a b/", "host may hold"),
            ("http://a/b c", "visible ASCII"),
        ] {
            let err = Url::parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
