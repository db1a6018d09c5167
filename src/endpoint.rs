//! Endpoint URL policy: absolute http(s) URLs, TLS except on loopback.

use crate::prelude::*;

use core::net::IpAddr;

use url::{Host, Url};

use crate::error::ConfigError;

/// Parses `text` as an absolute URL; `None` when it is not one, or when its host is not
/// ASCII (raw, or percent-encoded bytes above 0x7F).
///
/// The component carries no Unicode tables for internationalised domain names (see the
/// README): a non-ASCII host must be written in its `xn--` form. Such hosts are refused here,
/// before the URL parser's IDNA step, which would refuse them too but through a path that
/// asserts (in debug builds) on upper-case ASCII next to them.
pub fn parse_url(text: &str) -> Option<Url> {
    if host_needs_idna(text) {
        return None;
    }
    Url::parse(text).ok()
}

/// Whether the host part of `text` (after `scheme:` and any slashes, up to the first `/`,
/// `\\`, `?` or `#`, after the last `@`) holds a non-ASCII character or a percent-encoded
/// byte above 0x7F.
fn host_needs_idna(text: &str) -> bool {
    // The URL parser removes every ASCII tab and newline before it reads anything. (Bytes,
    // not characters, throughout: every delimiter is ASCII, which no byte of a multi-byte
    // character equals, and a byte loop is several times cheaper in the component.)
    let cleaned: Vec<u8>;
    let mut bytes = text.as_bytes();
    if bytes.iter().any(|b| matches!(b, b'\t' | b'\n' | b'\r')) {
        cleaned = bytes
            .iter()
            .copied()
            .filter(|b| !matches!(b, b'\t' | b'\n' | b'\r'))
            .collect();
        bytes = &cleaned;
    }
    let Some(colon) = bytes.iter().position(|&b| b == b':') else {
        return false;
    };
    let rest = &bytes[colon + 1..];
    let rest = &rest[rest
        .iter()
        .position(|b| !matches!(b, b'/' | b'\\'))
        .unwrap_or(rest.len())..];
    let authority = &rest[..rest
        .iter()
        .position(|b| matches!(b, b'/' | b'\\' | b'?' | b'#'))
        .unwrap_or(rest.len())];
    let host = match authority.iter().rposition(|&b| b == b'@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    host.iter().enumerate().any(|(at, &byte)| {
        !byte.is_ascii()
            || (byte == b'%'
                && host
                    .get(at + 1)
                    .is_some_and(|digit| matches!(digit, b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F'))
                && host.get(at + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// Parses `value` (the field `field`) as an endpoint URL the connector may use.
///
/// RFC 6749 §3.1 and §3.2 require TLS on the authorization and token endpoints; plain HTTP is
/// accepted only on loopback (127.0.0.0/8, ::1, `localhost`), as RFC 8252 §7.3 does for
/// redirects, so that local development and tests work. A fragment is refused (RFC 6749
/// §3.1, §3.1.2).
pub fn parse_endpoint(field: &str, value: &str) -> Result<Url, ConfigError> {
    let url = parse_url(value).ok_or_else(|| ConfigError::InvalidUrl(field.to_owned()))?;
    if url.fragment().is_some() || !url.has_host() || url.cannot_be_a_base() {
        return Err(ConfigError::InvalidUrl(field.to_owned()));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(ConfigError::InsecureUrl(field.to_owned())),
        _ => Err(ConfigError::InvalidUrl(field.to_owned())),
    }
}

/// True for URLs whose host is a loopback address or the name `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_that_would_need_idna_is_refused_before_the_url_parser() {
        for refused in [
            "https://Ex\u{e4}mple.com/",
            "https://user@\u{e4}.com/",
            "https:\\\\EXAMPLE\u{e4}.com/",
            "https://%C3%A4.com/",
            "https://a%c3%a4.com:8443/x",
            "https:/\n/EXAMPLE\u{e4}.com/",
            "https://\tEX\nAMPLE\u{e4}.com/",
        ] {
            assert_eq!(parse_url(refused), None, "{refused}");
        }
        for (accepted, host) in [
            (
                "https://EXAMPLE.com/p\u{e4}th?q=\u{e4}#\u{e4}",
                "example.com",
            ),
            ("https://\u{e4}user:p%C3%A4ss@example.com/", "example.com"),
            ("https://XN--MNCHEN-3YA.de/", "xn--mnchen-3ya.de"),
            ("https://a%41.com/", "aa.com"),
            ("http://127.0.0.1:8765/cb?code=%C3%A4", "127.0.0.1"),
        ] {
            let url = parse_url(accepted).unwrap_or_else(|| panic!("{accepted}"));
            assert_eq!(url.host_str(), Some(host), "{accepted}");
        }
        assert_eq!(parse_url("no scheme"), None);
    }

    #[test]
    fn accepts_https_and_loopback_http() {
        for ok in [
            "https://auth.example.com/authorize",
            "https://auth.example.com/authorize?tenant=a&x=1",
            "http://127.0.0.1:8080/cb",
            "http://[::1]:9000/cb",
            "http://localhost/cb",
            "http://LOCALHOST:1/cb",
        ] {
            assert!(parse_endpoint("authorize-url", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_plain_http_elsewhere() {
        for insecure in [
            "http://auth.example.com/authorize",
            "http://10.0.0.1/authorize",
            "http://localhost.example.com/authorize",
        ] {
            assert_eq!(
                parse_endpoint("token-url", insecure).unwrap_err(),
                ConfigError::InsecureUrl("token-url".into()),
                "{insecure}"
            );
        }
    }

    #[test]
    fn refuses_non_urls_other_schemes_and_fragments() {
        for invalid in [
            "",
            "not a url",
            "/relative/path",
            "ftp://auth.example.com/x",
            "javascript:alert(1)",
            "https://auth.example.com/authorize#frag",
            "mailto:someone@example.com",
        ] {
            assert_eq!(
                parse_endpoint("authorize-url", invalid).unwrap_err(),
                ConfigError::InvalidUrl("authorize-url".into()),
                "{invalid}"
            );
        }
    }
}
