//! Authorization-server metadata (RFC 8414, OpenID Connect Discovery):
//! `discovery::metadata_urls` on arbitrary issuers, `discovery::profile_from_response` and
//! `discovery::discover` on arbitrary metadata answers.
//!
//! Input: the issuer on the first line, then an HTTP response (see `fuzz_support`) that
//! answers every metadata request.
#![no_main]

use fuzz_support::{check_error, http_response};
use libfuzzer_sys::fuzz_target;
use oauth_connector::discovery;
use oauth_connector::endpoint::parse_endpoint;
use oauth_connector::error::{DiscoveryError, Error};
use oauth_connector::http::Method;
use oauth_connector::profile::ProviderProfile;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let at = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let issuer = String::from_utf8_lossy(&data[..at]);
    let issuer = issuer.strip_suffix('\r').unwrap_or(&issuer);
    let input = http_response(data.get(at + 1..).unwrap_or_default());
    let response = &input.response;

    let urls = discovery::metadata_urls(issuer);
    match &urls {
        Ok(urls) => {
            assert_eq!(urls.len(), 2);
            let issuer_url =
                oauth_connector::endpoint::parse_url(issuer).expect("accepted issuer is a URL");
            for (url, suffix) in urls.iter().zip([
                "/.well-known/oauth-authorization-server",
                "/.well-known/openid-configuration",
            ]) {
                // Each is an endpoint the connector may call, on the issuer's origin.
                let parsed = parse_endpoint("metadata", url)
                    .unwrap_or_else(|error| panic!("{issuer} -> {url}: {error:?}"));
                assert_eq!(
                    parsed.origin(),
                    issuer_url.origin(),
                    "{issuer} -> {url}: another origin"
                );
                assert!(parsed.query().is_none(), "{issuer} -> {url}: a query");
                assert!(url.contains(suffix), "{issuer} -> {url}");
                let request = discovery::metadata_request(url);
                assert_eq!(request.method, Method::Get);
                assert_eq!(&request.url, url);
            }
        }
        Err(error) => {
            check_error(error, &[]);
            assert!(matches!(error, Error::Configuration(_)), "{error:?}");
        }
    }

    let found = discovery::profile_from_response(issuer, response);
    match &found {
        None => assert_ne!(response.status, 200),
        Some(result) => {
            assert_eq!(response.status, 200);
            check_profile(issuer, response, result);
        }
    }

    let mut sent = vec![];
    let discovered = discovery::discover(issuer, |request| {
        sent.push(request.url.clone());
        Ok(response.clone())
    });
    match &urls {
        Ok(urls) => {
            // The first 200 with JSON decides; anything else moves on to the next URL.
            let decides =
                matches!(&found, Some(result) if !matches!(result, Err(Error::InvalidResponse(_))));
            let expected = if decides { 1 } else { 2 };
            assert_eq!(sent, urls[..expected]);
        }
        Err(error) => {
            assert!(sent.is_empty());
            assert_eq!(discovered.as_ref().err(), Some(error));
        }
    }
    match (&found, &discovered) {
        (Some(Ok(one)), Ok(other)) => assert_eq!(one, other),
        (Some(Ok(_)), Err(error)) => assert!(urls.is_err(), "{error:?}"),
        (Some(Err(_)), Ok(profile)) => panic!("discover accepted {profile:?}"),
        (Some(Err(one)), Err(other)) if urls.is_ok() => assert_eq!(one, other),
        (None, result) if urls.is_ok() => assert_eq!(
            result.as_ref().err(),
            Some(&Error::Discovery(DiscoveryError::NotFound(response.status)))
        ),
        _ => {}
    }
});

fn check_profile(
    issuer: &str,
    response: &oauth_connector::http::HttpResponse,
    result: &Result<ProviderProfile, Error>,
) {
    let document = match serde_json::from_slice::<Value>(&response.body) {
        Ok(Value::Object(document)) => Some(document),
        _ => None,
    };
    let text = |name: &str| {
        document
            .as_ref()
            .and_then(|d| d.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match result {
        Ok(profile) => {
            assert_eq!(profile.issuer.as_deref(), Some(issuer));
            assert_eq!(text("issuer").as_deref(), Some(issuer));
            assert_eq!(Some(profile.token_url.clone()), text("token_endpoint"));
            assert_eq!(profile.authorize_url, text("authorization_endpoint"));
            assert_eq!(profile.revocation_url, text("revocation_endpoint"));
            assert_eq!(profile.introspection_url, text("introspection_endpoint"));
            assert_eq!(
                profile.device_authorization_url,
                text("device_authorization_endpoint")
            );
            assert_eq!(profile.userinfo_url, text("userinfo_endpoint"));
            assert_eq!(profile.validate(), Ok(()), "discovered profile is invalid");
            assert!(profile.variables.is_empty());
        }
        Err(Error::InvalidResponse(invalid)) => {
            assert!(document.is_none(), "a JSON object refused as not JSON");
            assert_eq!(invalid.status, response.status);
        }
        Err(Error::Discovery(DiscoveryError::IssuerMismatch(other))) => {
            assert_ne!(other, issuer);
            assert_eq!(text("issuer").as_ref(), Some(other));
        }
        Err(Error::Discovery(DiscoveryError::MissingField(name))) => {
            assert!(name == "issuer" || name == "token_endpoint", "{name}");
            assert_eq!(text(name), None);
        }
        Err(Error::Configuration(_)) => assert!(document.is_some()),
        Err(other) => panic!("profile_from_response: {other:?}"),
    }
    if let Err(error) = result {
        check_error(error, &[]);
    }
}
