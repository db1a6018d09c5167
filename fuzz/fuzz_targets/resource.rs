//! Connecting from a resource URL on arbitrary answers: protected-resource metadata
//! (RFC 9728: `registration::metadata_url_from_challenge`, `well_known_urls`,
//! `resource_from_response`, `discover_resource`), dynamic client registration (RFC 7591:
//! `registration::finish_register`) and DPoP nonces (RFC 9449: `dpop::nonce_challenge`,
//! `target_uri`, `Nonces`).
//!
//! Input: the resource URL on the first line, then an HTTP response (see `fuzz_support`), and
//! optionally a line `%%` and a second HTTP response. Each response is read by every
//! single-answer function; `discover_resource` gets the first as the answer to its probe and
//! the second (else the first again) as the answer to every metadata request. The first
//! `X-Fuzz-Secret` line, if any, is the registration's initial access token.
#![no_main]

use fuzz_support::{check_error, check_excerpt, checkable, http_response};
use libfuzzer_sys::fuzz_target;
use oauth_connector::dpop::{self, MAX_NONCE_BYTES, MAX_REMEMBERED_NONCES, Nonces};
use oauth_connector::endpoint::{parse_endpoint, parse_url};
use oauth_connector::error::{DiscoveryError, Error, OAuthError};
use oauth_connector::http::{HttpRequest, HttpResponse, Method};
use oauth_connector::profile::ClientAuthMethod;
use oauth_connector::registration::{
    self, ClientMetadata, ProtectedResource, RegisteredClient, WELL_KNOWN,
};
use oauth_connector::secret::Secret;
use oauth_connector::token::{self, MAX_ERROR_TEXT_BYTES, MAX_TOKEN_RESPONSE_BYTES};
use serde_json::{Map, Value};
use std::sync::Once;

const NOW: u64 = 1_700_000_000;
/// The initial access token when the input names none.
const INITIAL_ACCESS_TOKEN: &str = "iat-Rk4Pw9Zq2";
/// The members a registration answer issues as secrets.
const SECRET_MEMBERS: [&str; 2] = ["client_secret", "registration_access_token"];
/// The auth-param naming the metadata URL (RFC 9728 §5.1).
const RESOURCE_METADATA: &str = "resource_metadata";
/// How many `Nonces::set` calls one input drives (each parses a URL).
const SET_OPERATIONS: usize = 32;
const METHODS: [ClientAuthMethod; 5] = [
    ClientAuthMethod::ClientSecretBasic,
    ClientAuthMethod::ClientSecretPost,
    ClientAuthMethod::None,
    ClientAuthMethod::ClientSecretJwt,
    ClientAuthMethod::PrivateKeyJwt,
];

fuzz_target!(|data: &[u8]| {
    let at = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let url = String::from_utf8_lossy(&data[..at]);
    let url = url.strip_suffix('\r').unwrap_or(&url);
    let rest = data.get(at + 1..).unwrap_or_default();
    let (first, second) = match rest.windows(4).position(|w| w == b"\n%%\n") {
        Some(at) => (&rest[..at], Some(&rest[at + 4..])),
        None => (rest, None),
    };
    let first = http_response(first);
    let second = second.map(http_response);
    let initial_access_token = first
        .secrets
        .first()
        .map_or(INITIAL_ACCESS_TOKEN, String::as_str);

    check_well_known(url);
    check_target_uri(url);
    for response in [Some(&first), second.as_ref()].into_iter().flatten() {
        let response = &response.response;
        check_challenge(response);
        check_resource(url, response);
        check_register(response, initial_access_token);
        check_nonce_challenge(response);
    }
    check_discover(
        url,
        &first.response,
        second.as_ref().map_or(&first.response, |s| &s.response),
    );
    let nonce = dpop_nonce(&first.response).unwrap_or("n-1");
    check_nonces(url, nonce, data);
});

/// The values of `name` headers (ASCII case-insensitive), in order.
fn headers<'a>(response: &'a HttpResponse, name: &'a str) -> impl Iterator<Item = &'a str> {
    response
        .headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

// ---- RFC 9728 §3.1: well-known locations ------------------------------------------------

fn check_well_known(url: &str) {
    let endpoint = parse_endpoint("resource-url", url);
    let urls = registration::well_known_urls(url);
    let probe = registration::probe_request(url);
    let asked = match (&endpoint, &urls, &probe) {
        (Ok(asked), Ok(_), Ok(probe)) => {
            check_get(probe, asked.as_str());
            asked
        }
        (Err(error), Err(one), Err(other)) => {
            let error = Error::Configuration(error.clone());
            assert_eq!(one, &error);
            assert_eq!(other, &error);
            check_error(one, &[]);
            return;
        }
        _ => panic!("{url:?}: endpoint {endpoint:?}, well-known {urls:?}, probe {probe:?}"),
    };
    let urls = urls.unwrap();
    let path = asked.path().trim_end_matches('/');
    assert_eq!(urls.len(), if path.is_empty() { 1 } else { 2 }, "{urls:?}");
    for (i, found) in urls.iter().enumerate() {
        // Each is an endpoint on the resource's origin, with the suffix before the path
        // (then at the root), and nothing of the query or fragment.
        let parsed = parse_endpoint("metadata", found)
            .unwrap_or_else(|error| panic!("{url:?} -> {found:?}: {error:?}"));
        assert_eq!(parsed.origin(), asked.origin(), "{url:?} -> {found:?}");
        assert!(found.contains(WELL_KNOWN), "{url:?} -> {found:?}");
        assert!(parsed.query().is_none() && parsed.fragment().is_none());
        let want = if i == 0 {
            format!("{WELL_KNOWN}{path}")
        } else {
            WELL_KNOWN.to_owned()
        };
        assert_eq!(parsed.path(), want, "{url:?} -> {found:?}");
        check_get(&registration::metadata_request(found), found);
    }
}

fn check_get(request: &HttpRequest, url: &str) {
    assert_eq!(request.method, Method::Get);
    assert_eq!(request.url, url);
    assert!(request.body.is_empty());
    assert!(
        request
            .headers
            .iter()
            .all(|h| !h.name.eq_ignore_ascii_case("authorization")),
        "an unauthenticated GET carries credentials"
    );
}

// ---- RFC 9728 §5.1: the 401 challenge ---------------------------------------------------

fn check_challenge(response: &HttpResponse) {
    let found = registration::metadata_url_from_challenge(response);
    // The first `www-authenticate` header with the parameter decides.
    let named = if response.status == 401 {
        headers(response, "www-authenticate").find_map(model_auth_param)
    } else {
        None
    };
    match (&found, &named) {
        (Ok(None), None) => {}
        (Ok(Some(found)), Some(raw)) => {
            assert_eq!(response.status, 401);
            let parsed = parse_endpoint(RESOURCE_METADATA, raw)
                .unwrap_or_else(|error| panic!("{raw:?} accepted as {found:?}: {error:?}"));
            assert_eq!(found, parsed.as_str(), "{raw:?}");
            // What was accepted is accepted again, unchanged.
            assert_eq!(
                parse_endpoint("metadata", found).map(String::from).as_ref(),
                Ok(found)
            );
        }
        (Err(error), Some(raw)) => {
            let refused = parse_endpoint(RESOURCE_METADATA, raw)
                .expect_err("an endpoint refused as resource_metadata");
            assert_eq!(error, &Error::Configuration(refused));
            check_error(error, &[]);
        }
        _ => panic!("metadata_url_from_challenge {found:?}, but the challenge names {named:?}"),
    }
}

/// A model of the auth-param `resource_metadata` in one `WWW-Authenticate` value
/// (RFC 9110 §11.2, leniently): a name that starts an item (after the start, a space, a tab
/// or a comma), then optional whitespace, `=`, optional whitespace and a quoted string
/// (unescaped) or a token (up to a comma, space or tab). A quoted string is another
/// parameter's value when it follows a `=` (after optional whitespace): nothing inside it is
/// a parameter, and an unterminated one ends the value's parameters.
fn model_auth_param(value: &str) -> Option<String> {
    let chars: Vec<(usize, char)> = value.char_indices().collect();
    let mut i = 0;
    let mut previous: Option<char> = None;
    let mut after_equals = false;
    while i < chars.len() {
        let (at, c) = chars[i];
        if c == '"' && after_equals {
            let mut j = i + 1;
            loop {
                match chars.get(j)?.1 {
                    '\\' => j += 2,
                    '"' => break,
                    _ => j += 1,
                }
            }
            previous = Some('"');
            after_equals = false;
            i = j + 1;
            continue;
        }
        let starts_item = matches!(previous, None | Some(' ' | '\t' | ','));
        let named = value[at..]
            .get(..RESOURCE_METADATA.len())
            .is_some_and(|name| name.eq_ignore_ascii_case(RESOURCE_METADATA));
        if starts_item && named {
            let after = value[at + RESOURCE_METADATA.len()..].trim_start();
            if let Some(after) = after.strip_prefix('=') {
                let after = after.trim_start();
                return match after.strip_prefix('"') {
                    Some(quoted) => unquote(quoted),
                    None => Some(after.split([',', ' ', '\t']).next().unwrap().to_owned()),
                };
            }
        }
        after_equals = c == '=' || (after_equals && c.is_whitespace());
        previous = Some(c);
        i += 1;
    }
    None
}

/// The text of a quoted string after its opening quote; `None` when unterminated.
fn unquote(quoted: &str) -> Option<String> {
    let mut out = String::new();
    let mut escaped = false;
    for c in quoted.chars() {
        match c {
            _ if escaped => {
                out.push(c);
                escaped = false;
            }
            '\\' => escaped = true,
            '"' => return Some(out),
            c => out.push(c),
        }
    }
    None
}

// ---- RFC 9728 §3.2-3.3: the metadata document -------------------------------------------

fn check_resource(url: &str, response: &HttpResponse) {
    let found = registration::resource_from_response(url, response);
    let Some(result) = found else {
        assert_ne!(response.status, 200, "a 200 skipped");
        return;
    };
    assert_eq!(
        response.status, 200,
        "HTTP {} read as metadata",
        response.status
    );
    let document = match serde_json::from_slice::<Value>(&response.body) {
        Ok(Value::Object(document)) if response.body.len() <= MAX_TOKEN_RESPONSE_BYTES => {
            Some(document)
        }
        _ => None,
    };
    let Some(document) = document else {
        match &result {
            Err(error @ Error::InvalidResponse(invalid)) => {
                assert_eq!(invalid.status, 200);
                assert_eq!(invalid.excerpt, token::excerpt(&response.body, &[]));
                check_error(error, &[]);
            }
            other => panic!("a body that is not a JSON object: {other:?}"),
        }
        return;
    };
    let resource = document.get("resource").and_then(Value::as_str);
    let strings = |name: &str| -> Vec<String> {
        document
            .get(name)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let servers: Vec<String> = strings("authorization_servers")
        .into_iter()
        .filter(|server| parse_endpoint("authorization-servers", server).is_ok())
        .collect();
    let asked = parse_endpoint("resource-url", url);
    match &result {
        Ok(found) => {
            let asked = asked.expect("metadata accepted for a URL that is no endpoint");
            let resource = resource.expect("metadata accepted without `resource`");
            assert!(
                covers(resource, &asked),
                "{resource:?} does not cover {url:?}"
            );
            assert!(!servers.is_empty());
            assert!(
                found
                    .authorization_servers
                    .iter()
                    .all(|server| { parse_endpoint("authorization-servers", server).is_ok() })
            );
            let want = ProtectedResource {
                resource: resource.to_owned(),
                authorization_servers: servers,
                scopes_supported: strings("scopes_supported"),
                resource_name: document
                    .get("resource_name")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            };
            assert_eq!(found, &want);
        }
        Err(Error::Discovery(DiscoveryError::MissingField(name))) => {
            assert_eq!(name, "resource");
            assert!(resource.is_none());
        }
        Err(Error::Configuration(error)) => {
            assert!(resource.is_some());
            assert_eq!(asked.as_ref().err(), Some(error));
        }
        Err(Error::Discovery(DiscoveryError::ResourceMismatch(named))) => {
            assert_eq!(Some(named.as_str()), resource);
            assert!(!covers(
                named,
                &asked.expect("compared with a non-endpoint")
            ));
        }
        Err(Error::Discovery(DiscoveryError::NoAuthorizationServer)) => {
            assert!(covers(resource.unwrap(), &asked.unwrap()));
            assert!(servers.is_empty(), "usable servers {servers:?} ignored");
        }
        Err(other) => panic!("resource_from_response: {other:?}"),
    }
}

/// Whether `resource` names `asked` (RFC 9728 §3.3, as the core documents it): an absolute
/// URL on the same origin, without query or fragment, whose path segments (trailing empty
/// ones aside) begin `asked`'s.
fn covers(resource: &str, asked: &url::Url) -> bool {
    let Some(resource) = parse_url(resource) else {
        return false;
    };
    if resource.origin() != asked.origin()
        || resource.query().is_some()
        || resource.fragment().is_some()
    {
        return false;
    }
    let segments = |url: &url::Url| -> Vec<String> {
        url.path_segments()
            .map(|segments| segments.map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let mut prefix = segments(&resource);
    while prefix.last().is_some_and(String::is_empty) {
        prefix.pop();
    }
    segments(asked).starts_with(&prefix)
}

// ---- RFC 9728: discovery from the resource URL ------------------------------------------

fn check_discover(url: &str, probe: &HttpResponse, metadata: &HttpResponse) {
    let mut sent: Vec<HttpRequest> = vec![];
    let discovered = registration::discover_resource(url, |request| {
        let answer = if sent.is_empty() { probe } else { metadata };
        sent.push(request);
        Ok(answer.clone())
    });
    let asked = match parse_endpoint("resource-url", url) {
        Ok(asked) => asked,
        Err(error) => {
            assert!(sent.is_empty(), "requests for an unusable URL");
            assert_eq!(discovered, Err(Error::Configuration(error)));
            return;
        }
    };
    check_get(&sent[0], asked.as_str());
    let urls = match registration::metadata_url_from_challenge(probe) {
        Err(error) => {
            assert_eq!(sent.len(), 1);
            assert_eq!(discovered, Err(error));
            return;
        }
        Ok(Some(named)) => vec![named],
        Ok(None) => registration::well_known_urls(url).expect("a usable URL"),
    };
    // Every location answers alike: the first usable answer decides, else the last status.
    let urls_sent: Vec<&str> = sent[1..].iter().map(|r| r.url.as_str()).collect();
    for (request, url) in sent[1..].iter().zip(&urls) {
        check_get(request, url);
    }
    match registration::resource_from_response(url, metadata) {
        None => {
            assert_eq!(urls_sent, urls);
            assert_eq!(
                discovered,
                Err(Error::Discovery(DiscoveryError::NotFound(metadata.status)))
            );
        }
        Some(Err(error @ Error::InvalidResponse(_))) => {
            assert_eq!(urls_sent, urls, "a 200 that is not JSON stopped discovery");
            assert_eq!(discovered, Err(error));
        }
        Some(result) => {
            assert_eq!(urls_sent, urls[..1]);
            assert_eq!(discovered, result);
        }
    }
    if let Err(error) = &discovered {
        check_error(error, &[]);
    }
}

// ---- RFC 7591 §3.2: the registration answer ---------------------------------------------

fn check_register(response: &HttpResponse, initial_access_token: &str) {
    let fields = token::parse_fields(response);
    let field = |name: &str| fields.as_ref().and_then(|f| f.get(name));
    // The secrets an error must not show: the initial access token, and the credentials the
    // answer itself issues.
    let issued: Vec<&str> = SECRET_MEMBERS
        .iter()
        .filter_map(|name| field(name).and_then(Value::as_str))
        .collect();
    // A public client, and clients asking for a secret or a key, with and without an
    // initial access token.
    for (asked, token) in [
        (ClientAuthMethod::None, Some(initial_access_token)),
        (ClientAuthMethod::ClientSecretBasic, None),
        (ClientAuthMethod::PrivateKeyJwt, Some(initial_access_token)),
    ] {
        let metadata = ClientMetadata {
            redirect_uris: vec!["http://127.0.0.1:8765/callback".into()],
            auth_method: asked,
            grant_types: vec![],
            scopes: vec!["read".into()],
            client_name: Some("oauth-connector".into()),
            software_id: None,
            software_version: None,
        };
        let mut secrets: Vec<&str> = token.into_iter().collect();
        secrets.extend(&issued);
        match registration::finish_register(&metadata, response, NOW, token) {
            Ok(registered) => {
                let fields = fields.as_ref().expect("registered from no fields");
                check_registered(asked, response, fields, &registered);
            }
            Err(error) => check_register_error(response, fields.as_ref(), &error, &secrets),
        }
    }
}

fn check_registered(
    asked: ClientAuthMethod,
    response: &HttpResponse,
    fields: &Map<String, Value>,
    registered: &RegisteredClient,
) {
    let text = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
    };
    assert!((200..300).contains(&response.status));
    assert!(
        fields.get("error").and_then(Value::as_str).is_none(),
        "an error body registered"
    );
    let client = &registered.client;
    assert!(!client.client_id.is_empty());
    assert_eq!(Some(client.client_id.as_str()), text("client_id"));
    let method = match fields
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
    {
        None => asked,
        Some(name) => *METHODS
            .iter()
            .find(|method| method.as_str() == name)
            .unwrap_or_else(|| panic!("registered with the method {name:?}")),
    };
    assert_eq!(client.auth_method, Some(method));
    let secret = client.client_secret.as_ref().map(Secret::expose);
    assert_eq!(secret, text("client_secret"));
    assert!(
        !method.needs_secret() || secret.is_some(),
        "{method:?} without a secret"
    );
    assert_eq!(
        registered
            .registration_access_token
            .as_ref()
            .map(Secret::expose),
        text("registration_access_token")
    );
    assert_eq!(
        registered.registration_client_uri.as_deref(),
        text("registration_client_uri")
    );
    assert_eq!(
        registered.client_secret_expires_at,
        fields
            .get("client_secret_expires_at")
            .and_then(Value::as_u64)
            .filter(|at| *at != 0)
    );
    // The metadata is the answer without its secret members...
    let mut rest = fields.clone();
    for name in SECRET_MEMBERS {
        rest.remove(name);
    }
    let rest = Value::Object(rest);
    assert_eq!(
        serde_json::from_str::<Value>(&registered.metadata).ok(),
        Some(rest.clone()),
        "metadata"
    );
    // ... so it holds no issued secret the answer does not also carry elsewhere, and
    // `Debug` shows no secret value at all.
    let others = rest.to_string();
    let issued = [secret, text("registration_access_token")];
    for value in issued.into_iter().flatten() {
        if checkable(value) && !others.contains(value) {
            assert!(
                !registered.metadata.contains(value),
                "secret {value:?} in the metadata {}",
                registered.metadata
            );
        }
    }
    let mut blank = registered.clone();
    blank.client.client_secret = blank.client.client_secret.map(|_| Secret::new("x"));
    blank.registration_access_token = blank.registration_access_token.map(|_| Secret::new("x"));
    assert_eq!(
        format!("{registered:?}"),
        format!("{blank:?}"),
        "Debug shows a secret"
    );
}

fn check_register_error(
    response: &HttpResponse,
    fields: Option<&Map<String, Value>>,
    error: &Error,
    secrets: &[&str],
) {
    let status = response.status;
    let retryable = status == 429 || (500..600).contains(&status);
    let refusal = fields.and_then(token::oauth_error);
    match error {
        Error::ServerUnavailable(unavailable) => {
            assert!(retryable);
            assert_eq!(unavailable.status, status);
            if let Some(said) = &unavailable.error {
                check_refusal(said, secrets);
            }
        }
        Error::ServerSaidNo(said) => {
            assert!(!retryable);
            let sent = refusal.as_ref().expect("a refusal without `error`");
            assert_eq!(said.code, sent.code);
            check_refusal(said, secrets);
        }
        Error::InvalidResponse(invalid) => {
            assert!(!retryable);
            assert!(refusal.is_none());
            assert_eq!(invalid.status, status);
            check_excerpt(&invalid.excerpt, secrets);
        }
        other => panic!("finish_register: {other:?}"),
    }
    check_error(error, secrets);
}

fn check_refusal(said: &OAuthError, secrets: &[&str]) {
    for text in [&said.description, &said.uri].into_iter().flatten() {
        assert!(text.len() <= MAX_ERROR_TEXT_BYTES);
        for secret in secrets.iter().filter(|s| checkable(s)) {
            assert!(!text.contains(secret), "secret {secret:?} in {text:?}");
        }
    }
}

// ---- RFC 9449: nonces -------------------------------------------------------------------

/// The first `DPoP-Nonce` header, trimmed, if it is a usable nonce (§8.1: 1 to
/// `MAX_NONCE_BYTES` visible ASCII characters, neither `"` nor `\`).
fn dpop_nonce(response: &HttpResponse) -> Option<&str> {
    let nonce = headers(response, "dpop-nonce").next()?.trim();
    let usable = (1..=MAX_NONCE_BYTES).contains(&nonce.len())
        && nonce
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\');
    usable.then_some(nonce)
}

fn check_nonce_challenge(response: &HttpResponse) {
    let challenge = dpop::nonce_challenge(response);
    // A token endpoint's `use_dpop_nonce` error (§8) or a resource server's DPoP challenge
    // (§9), with a usable nonce; only on a 400 or 401.
    let in_body = token::parse_fields(response)
        .and_then(|fields| fields.get("error")?.as_str().map(|c| c == "use_dpop_nonce"))
        .unwrap_or(false);
    // A challenge starts the value or follows a comma (whitespace between); its scheme is
    // `DPoP` followed by a space or tab (RFC 9110 §11.3, RFC 9449 §7.1).
    let in_header = headers(response, "www-authenticate").any(|value| {
        let bytes = value.as_bytes();
        let dpop_challenge = (0..bytes.len()).any(|at| {
            let before = bytes[..at].iter().rev().find(|b| !b.is_ascii_whitespace());
            matches!(before, None | Some(b',')) && {
                let scheme = &bytes[at..];
                scheme.len() > 4
                    && scheme[..4].eq_ignore_ascii_case(b"dpop")
                    && (scheme[4] == b' ' || scheme[4] == b'\t')
            }
        });
        dpop_challenge && value.contains("use_dpop_nonce")
    });
    let want = matches!(response.status, 400 | 401)
        .then(|| dpop_nonce(response))
        .flatten()
        .filter(|_| in_body || in_header);
    assert_eq!(challenge, want, "nonce_challenge");
    if let Some(nonce) = challenge {
        assert!(matches!(response.status, 400 | 401));
        assert!((1..=MAX_NONCE_BYTES).contains(&nonce.len()));
        assert!(
            nonce
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        );
    }
}

fn check_target_uri(url: &str) {
    let htu = dpop::target_uri(url);
    assert!(url.starts_with(htu));
    assert!(!htu.contains(['?', '#']), "{htu:?}");
    // Only what follows the first `?` or `#` is dropped.
    assert!(htu.len() == url.len() || url[htu.len()..].starts_with(['?', '#']));
}

/// The key a nonce is remembered under.
fn origin_of(url: &str) -> Option<String> {
    parse_url(url).map(|url| url.origin().ascii_serialization())
}

fn check_nonces(url: &str, nonce: &str, data: &[u8]) {
    // Round trip, for the URL's origin whatever the path, query or fragment.
    let mut nonces = Nonces::default();
    assert_eq!(nonces.get(url), None);
    nonces.set(url, nonce);
    let parsed = parse_url(url);
    match &parsed {
        Some(parsed) => {
            assert_eq!(nonces.get(url), Some(nonce));
            if matches!(parsed.scheme(), "http" | "https") {
                let mut elsewhere = parsed.clone();
                elsewhere.set_path("/elsewhere");
                elsewhere.set_query(Some("q=1"));
                elsewhere.set_fragment(Some("f"));
                assert_eq!(nonces.get(elsewhere.as_str()), Some(nonce));
                let mut other_port = parsed.clone();
                let port = parsed.port_or_known_default().unwrap_or(443);
                other_port.set_port(Some(port.wrapping_add(1))).unwrap();
                assert_eq!(nonces.get(other_port.as_str()), None);
            }
        }
        None => assert_eq!(nonces.get(url), None),
    }

    // A sequence of sets, chosen by the input's bytes, over the URL, some of its ports and
    // fixed hosts (more origins than the bound): exactly the last `MAX_REMEMBERED_NONCES`
    // origins set are remembered, each with its last nonce.
    let mut candidates = vec![url.to_owned()];
    if let Some(parsed) = parsed.filter(|p| matches!(p.scheme(), "http" | "https")) {
        for port in [1, 8443, 65535] {
            let mut other = parsed.clone();
            other.set_port(Some(port)).unwrap();
            candidates.push(other.into());
        }
    }
    candidates.extend((0..MAX_REMEMBERED_NONCES + 4).map(|i| format!("https://h{i}.example/p")));
    let origins: Vec<Option<String>> = candidates.iter().map(|c| origin_of(c)).collect();
    let mut nonces = Nonces::default();
    let mut model: Vec<(String, String)> = vec![];
    for (i, byte) in data.iter().take(SET_OPERATIONS).enumerate() {
        let pick = usize::from(*byte) % candidates.len();
        let value = format!("{nonce}-{i}");
        nonces.set(&candidates[pick], &value);
        if let Some(origin) = &origins[pick] {
            model.retain(|(known, _)| known != origin);
            model.push((origin.clone(), value));
        }
    }
    let remembered = &model[model.len().saturating_sub(MAX_REMEMBERED_NONCES)..];
    for (candidate, origin) in candidates.iter().zip(&origins) {
        let want = origin.as_ref().and_then(|origin| {
            remembered
                .iter()
                .find(|(known, _)| known == origin)
                .map(|(_, value)| value.as_str())
        });
        assert_eq!(nonces.get(candidate), want, "{candidate:?}");
    }

    // Many origins, once per process (it does not depend on the input): never more than the
    // bound, the newest kept.
    static MANY: Once = Once::new();
    MANY.call_once(|| {
        let mut nonces = Nonces::default();
        let many = 3 * MAX_REMEMBERED_NONCES;
        for i in 0..many {
            nonces.set(&format!("https://m{i}.example:{}/", 1000 + i), "n");
        }
        let kept: Vec<usize> = (0..many)
            .filter(|i| {
                nonces
                    .get(&format!("https://m{i}.example:{}/x", 1000 + i))
                    .is_some()
            })
            .collect();
        assert_eq!(
            kept,
            (many - MAX_REMEMBERED_NONCES..many).collect::<Vec<_>>()
        );
    });
}
