//! Endpoint URL policy: absolute http(s) URLs, TLS except on loopback.

use crate::prelude::*;

use core::net::IpAddr;

use url::{Host, Url};

use crate::error::ConfigError;

/// Parses `value` (the field `field`) as an endpoint URL the connector may use.
///
/// RFC 6749 §3.1 and §3.2 require TLS on the authorization and token endpoints; plain HTTP is
/// accepted only on loopback (127.0.0.0/8, ::1, `localhost`), as RFC 8252 §7.3 does for
/// redirects, so that local development and tests work. A fragment is refused (RFC 6749
/// §3.1, §3.1.2).
pub fn parse_endpoint(field: &str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|_| ConfigError::InvalidUrl(field.to_owned()))?;
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
