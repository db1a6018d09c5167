//! Building a profile from an issuer's metadata: RFC 8414 (OAuth 2.0 Authorization Server
//! Metadata) and OpenID Connect Discovery 1.0.

use crate::prelude::*;

use serde_json::{Map, Value};

use crate::client_auth::SigningAlgorithm;
use crate::endpoint::parse_endpoint;
use crate::error::{ConfigError, DiscoveryError, Error, InvalidResponse};
use crate::http::{HttpRequest, HttpResponse, Method};
use crate::profile::{ClientAuthMethod, KeyValue, PkceMethod, ProviderProfile};
use crate::token::excerpt;

/// The metadata URLs to try, in order: RFC 8414 §3.1 (the well-known suffix inserted between
/// host and path), then OpenID Connect Discovery §4 (appended to the issuer).
pub fn metadata_urls(issuer: &str) -> Result<Vec<String>, Error> {
    let url = parse_endpoint("issuer", issuer)?;
    if url.query().is_some() {
        return Err(ConfigError::InvalidUrl("issuer".into()).into());
    }
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    // From the parsed issuer, not the raw text: the parser drops surrounding whitespace that
    // would make the appended URL invalid.
    Ok(vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!(
            "{}/.well-known/openid-configuration",
            url.as_str().trim_end_matches('/')
        ),
    ])
}

/// Discovers `issuer`'s profile, sending each metadata request through `send`: the first
/// document that answers 200 with JSON decides (an issuer mismatch or a missing field is an
/// error, not a reason to try the next URL). A 200 that is not JSON (a web app's catch-all
/// page) moves on to the next URL; when none succeeds, the last non-JSON answer is the
/// `invalid-response`, else `not-found` with the last status.
pub fn discover(
    issuer: &str,
    mut send: impl FnMut(HttpRequest) -> Result<HttpResponse, Error>,
) -> Result<ProviderProfile, Error> {
    let mut last_status = 0;
    let mut not_json = None;
    for url in metadata_urls(issuer)? {
        let response = send(metadata_request(&url))?;
        last_status = response.status;
        match profile_from_response(issuer, &response) {
            None => {}
            Some(Err(error @ Error::InvalidResponse(_))) => not_json = Some(error),
            Some(found) => return found,
        }
    }
    Err(not_json.unwrap_or(Error::Discovery(DiscoveryError::NotFound(last_status))))
}

/// A GET for one metadata URL.
pub fn metadata_request(url: &str) -> HttpRequest {
    HttpRequest {
        method: Method::Get,
        url: url.to_owned(),
        headers: vec![KeyValue::new("Accept", "application/json")],
        body: vec![],
    }
}

/// The profile a metadata document describes, or `None` when the response is not a 200 (try
/// the next URL).
pub fn profile_from_response(
    issuer: &str,
    response: &HttpResponse,
) -> Option<Result<ProviderProfile, Error>> {
    if response.status != 200 {
        return None;
    }
    Some(profile_from_document(issuer, response))
}

fn profile_from_document(issuer: &str, response: &HttpResponse) -> Result<ProviderProfile, Error> {
    // Metadata documents are a few KB; a larger body could expand far beyond its size.
    let small_enough = response.body.len() <= crate::token::MAX_TOKEN_RESPONSE_BYTES;
    let parsed = small_enough.then(|| serde_json::from_slice::<Value>(&response.body));
    let Some(Ok(Value::Object(document))) = parsed else {
        return Err(Error::InvalidResponse(InvalidResponse {
            status: response.status,
            reason: "metadata is not a JSON object".into(),
            excerpt: excerpt(&response.body, &[]),
        }));
    };
    let text = |name: &str| {
        document
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let required = |name: &str| {
        text(name).ok_or_else(|| Error::Discovery(DiscoveryError::MissingField(name.to_owned())))
    };
    // RFC 8414 §3.3: the issuer in the document must be identical to the one asked for.
    let document_issuer = required("issuer")?;
    if document_issuer != issuer {
        return Err(Error::Discovery(DiscoveryError::IssuerMismatch(
            document_issuer,
        )));
    }
    let token_url = required("token_endpoint")?;
    let profile = ProviderProfile {
        id: crate::endpoint::parse_url(issuer)
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_default(),
        issuer: Some(document_issuer),
        authorize_url: text("authorization_endpoint"),
        revocation_url: text("revocation_endpoint"),
        introspection_url: text("introspection_endpoint"),
        device_authorization_url: text("device_authorization_endpoint"),
        pushed_authorization_request_url: text("pushed_authorization_request_endpoint"),
        requires_pushed_authorization_requests: document
            .get("require_pushed_authorization_requests")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        registration_url: text("registration_endpoint"),
        dpop_algorithms: strings(&document, "dpop_signing_alg_values_supported")
            .unwrap_or_default()
            .into_iter()
            .filter_map(SigningAlgorithm::from_jws)
            .collect(),
        userinfo_url: text("userinfo_endpoint"),
        default_scopes: default_scopes(&document),
        pkce: pkce_method(&document),
        client_auth: client_auth(&document),
        requires_iss: document
            .get("authorization_response_iss_parameter_supported")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        // Everything else as a profile of only a token URL has it.
        ..ProviderProfile::new(token_url)
    };
    profile.validate()?;
    Ok(profile)
}

fn strings<'a>(document: &'a Map<String, Value>, name: &str) -> Option<Vec<&'a str>> {
    document
        .get(name)?
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
}

/// S256 unless the server lists only `plain`. An absent list means the server did not say
/// (RFC 8414 §2); S256 parameters are ignored by servers without PKCE, so it is the safe
/// default.
fn pkce_method(document: &Map<String, Value>) -> PkceMethod {
    match strings(document, "code_challenge_methods_supported") {
        Some(methods) if !methods.contains(&"S256") && methods.contains(&"plain") => {
            PkceMethod::Plain
        }
        _ => PkceMethod::S256,
    }
}

/// `client_secret_basic` when listed or when the list is absent (its RFC 8414 §2 default),
/// else `client_secret_post` when listed, else `none` when that is all the server takes.
fn client_auth(document: &Map<String, Value>) -> ClientAuthMethod {
    match strings(document, "token_endpoint_auth_methods_supported") {
        None => ClientAuthMethod::ClientSecretBasic,
        Some(methods) if methods.contains(&"client_secret_basic") => {
            ClientAuthMethod::ClientSecretBasic
        }
        Some(methods) if methods.contains(&"client_secret_post") => {
            ClientAuthMethod::ClientSecretPost
        }
        Some(methods) if methods.contains(&"none") => ClientAuthMethod::None,
        Some(_) => ClientAuthMethod::ClientSecretBasic,
    }
}

/// `openid` when the server is an OpenID Provider (it lists that scope), else none.
fn default_scopes(document: &Map<String, Value>) -> Vec<String> {
    match strings(document, "scopes_supported") {
        Some(scopes) if scopes.contains(&"openid") => vec!["openid".to_owned()],
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn metadata_urls_follow_rfc8414_path_insertion() {
        assert_eq!(
            metadata_urls("https://auth.example.com").unwrap(),
            [
                "https://auth.example.com/.well-known/oauth-authorization-server",
                "https://auth.example.com/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            metadata_urls("https://auth.example.com/tenant/1/").unwrap(),
            [
                "https://auth.example.com/.well-known/oauth-authorization-server/tenant/1",
                "https://auth.example.com/tenant/1/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            metadata_urls("http://auth.example.com").unwrap_err(),
            Error::Configuration(ConfigError::InsecureUrl("issuer".into()))
        );
        assert_eq!(
            metadata_urls("https://auth.example.com?x=1").unwrap_err(),
            Error::Configuration(ConfigError::InvalidUrl("issuer".into()))
        );
    }

    /// Found by fuzzing (target `discovery`, issuer `https://a\u{1}\0\0\0\0\0\0\0`): the
    /// OpenID URL was built from the raw issuer text, which the URL parser accepts with
    /// trailing control characters or spaces, giving an invalid
    /// `https://a\u{1}\0\0\0\0\0\0\0/.well-known/openid-configuration`.
    #[test]
    fn metadata_urls_are_valid_for_an_issuer_the_parser_trims() {
        for issuer in [
            "https://a\u{1}\0\0\0\0\0\0\0",
            "https://a        ",
            " https://a/\t",
            "https://a\n",
        ] {
            let urls = metadata_urls(issuer).unwrap();
            assert_eq!(
                urls,
                [
                    "https://a/.well-known/oauth-authorization-server",
                    "https://a/.well-known/openid-configuration"
                ],
                "{issuer:?}"
            );
            for url in &urls {
                parse_endpoint("metadata", url).unwrap();
            }
        }
    }

    #[test]
    fn document_to_profile_with_safe_defaults() {
        let profile = profile_from_response(
            "https://auth.example.com",
            &response(
                200,
                r#"{"issuer":"https://auth.example.com",
                    "authorization_endpoint":"https://auth.example.com/authorize",
                    "token_endpoint":"https://auth.example.com/token",
                    "revocation_endpoint":"https://auth.example.com/revoke",
                    "device_authorization_endpoint":"https://auth.example.com/device",
                    "code_challenge_methods_supported":["plain"],
                    "token_endpoint_auth_methods_supported":["client_secret_post","private_key_jwt"],
                    "authorization_response_iss_parameter_supported":true,
                    "pushed_authorization_request_endpoint":"https://auth.example.com/par",
                    "require_pushed_authorization_requests":true,
                    "registration_endpoint":"https://auth.example.com/reg",
                    "dpop_signing_alg_values_supported":["ES256","HS256","EdDSA"],
                    "scopes_supported":["openid","email"]}"#,
            ),
        )
        .unwrap()
        .unwrap();
        assert_eq!(profile.id, "auth.example.com");
        assert_eq!(
            profile.authorize_url.as_deref(),
            Some("https://auth.example.com/authorize")
        );
        assert_eq!(
            profile.revocation_url.as_deref(),
            Some("https://auth.example.com/revoke")
        );
        assert_eq!(profile.pkce, PkceMethod::Plain);
        assert_eq!(profile.client_auth, ClientAuthMethod::ClientSecretPost);
        assert!(profile.requires_iss);
        assert_eq!(profile.default_scopes, ["openid"]);
        assert_eq!(
            profile.pushed_authorization_request_url.as_deref(),
            Some("https://auth.example.com/par")
        );
        assert!(profile.requires_pushed_authorization_requests);
        assert_eq!(
            profile.registration_url.as_deref(),
            Some("https://auth.example.com/reg")
        );
        // Algorithms the connector cannot sign with (HS256) are left out.
        assert_eq!(
            profile.dpop_algorithms,
            [SigningAlgorithm::Es256, SigningAlgorithm::EdDsa]
        );

        let minimal = profile_from_response(
            "https://a.example",
            &response(
                200,
                r#"{"issuer":"https://a.example","token_endpoint":"https://a.example/t"}"#,
            ),
        )
        .unwrap()
        .unwrap();
        assert_eq!(minimal.pkce, PkceMethod::S256);
        assert_eq!(minimal.client_auth, ClientAuthMethod::ClientSecretBasic);
        assert!(!minimal.requires_iss);
        assert!(!minimal.requires_pushed_authorization_requests);
        assert_eq!(minimal.pushed_authorization_request_url, None);
        assert!(minimal.dpop_algorithms.is_empty());
    }

    #[test]
    fn errors_are_typed() {
        let issuer = "https://a.example";
        assert!(profile_from_response(issuer, &response(404, "")).is_none());
        let check = |body: &str| {
            profile_from_response(issuer, &response(200, body))
                .unwrap()
                .unwrap_err()
        };
        assert_eq!(
            check(r#"{"issuer":"https://evil.example","token_endpoint":"https://a.example/t"}"#),
            Error::Discovery(DiscoveryError::IssuerMismatch(
                "https://evil.example".into()
            ))
        );
        assert_eq!(
            check(r#"{"issuer":"https://a.example"}"#),
            Error::Discovery(DiscoveryError::MissingField("token_endpoint".into()))
        );
        assert_eq!(
            check(r#"{"token_endpoint":"https://a.example/t"}"#),
            Error::Discovery(DiscoveryError::MissingField("issuer".into()))
        );
        assert!(matches!(check("<html>"), Error::InvalidResponse(_)));
        assert_eq!(
            check(r#"{"issuer":"https://a.example","token_endpoint":"http://a.example/t"}"#),
            Error::Configuration(ConfigError::InsecureUrl("token-url".into()))
        );
    }
}
