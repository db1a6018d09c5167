//! Contract 0.3.0 through the built component, against servers on 127.0.0.1: the exact
//! pushed authorization request (RFC 9126), DPoP proofs and their nonce retry (RFC 9449),
//! token exchange (RFC 8693), the JWT bearer grant (RFC 7523 §2.1), and protected-resource
//! metadata (RFC 9728).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use connector_host::Session;
use connector_host::bindings::exports::oauth_connector::oauth2::jwt_bearer::AssertionClaims;
use connector_host::bindings::exports::oauth_connector::oauth2::token_exchange::ExchangeRequest;
use connector_host::bindings::oauth_connector::oauth2::signer::SigningKey;
use connector_host::signer::Signer;
use connector_host::types::{
    ConnectionConfig, DiscoveryError, Error, ErrorCode, HttpMethod, HttpRequest, KeyPurpose,
    OauthError, SigningAlgorithm, SigningError, TokenSet,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{
    Recorded, Reply, TestServer, config, connector_error, profile, scripted_session,
};

/// An EC P-256 public key (RFC 7515 Appendix A.3) and its RFC 7638 thumbprint.
const EC_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
/// base64url of 16 bytes of 9: every `jti` on scripted random.
const JTI: &str = "CQkJCQkJCQkJCQkJCQkJCQ";

/// A signer with one ES256 key for every purpose, recording what it signs.
#[derive(Clone, Default)]
struct KeySigner {
    asked: Arc<Mutex<Vec<(KeyPurpose, String)>>>,
}

impl Signer for KeySigner {
    fn key(&self, _: KeyPurpose, _: &str) -> Result<SigningKey, SigningError> {
        Ok(SigningKey {
            algorithm: SigningAlgorithm::Es256,
            key_id: Some("k-1".into()),
            public_jwk: Some(EC_JWK.into()),
        })
    }

    fn sign(&self, purpose: KeyPurpose, _: &str, input: &[u8]) -> Result<Vec<u8>, SigningError> {
        let input = String::from_utf8(input.to_vec()).unwrap();
        self.asked.lock().unwrap().push((purpose, input));
        Ok(vec![0xAB; 64])
    }
}

fn thumbprint() -> String {
    let canonical: Value = serde_json::from_str(EC_JWK).unwrap();
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// A session whose random source yields 9s (every `jti` is [`JTI`]).
fn session(server: &TestServer, signer: &KeySigner) -> Session {
    session_with(server, signer, vec![9; 512])
}

/// A session for `begin`: state bytes of 7 and verifier bytes of 1, then 9s.
fn begin_session(server: &TestServer, signer: &KeySigner) -> Session {
    let random = [7u8; 32].into_iter().chain([1u8; 32]).chain([9; 512]);
    session_with(server, signer, random.collect())
}

fn session_with(server: &TestServer, signer: &KeySigner, random: Vec<u8>) -> Session {
    let mut session = scripted_session(server, random);
    session.set_signer(signer.clone());
    session
}

fn form(request: &Recorded) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&request.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn jwt(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    assert_eq!(parts[2], URL_SAFE_NO_PAD.encode([0xAB; 64]));
    let decode = |part: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap());
    (decode(parts[0]).unwrap(), decode(parts[1]).unwrap())
}

fn par_config(server: &TestServer) -> ConnectionConfig {
    let mut profile = profile(&server.url("/authorize?tenant=acme"), &server.url("/token"));
    profile.pushed_authorization_request_url = Some(server.url("/par"));
    profile.requires_pushed_authorization_requests = true;
    let mut config = config(profile);
    config.client.client_secret = Some("s3cret".into());
    config.resources = vec!["https://api.example.com/".into()];
    config
}

/// RFC 9126: the flow's parameters go to the PAR endpoint with Basic authentication, and the
/// authorize URL carries only `client_id` and `request_uri`.
#[test]
fn begin_pushes_the_authorization_request_and_returns_its_reference() {
    let server = TestServer::start(|_| {
        Reply::json(
            201,
            r#"{"request_uri":"urn:ietf:params:oauth:request_uri:6esc_11ACC5bwc014ltc14eY22c","expires_in":60}"#,
        )
    });
    let config = par_config(&server);
    let request = begin_session(&server, &KeySigner::default())
        .begin(&config)
        .unwrap();
    assert_eq!(
        request.url,
        server.url(
            "/authorize?tenant=acme&client_id=my+client\
             &request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3A6esc_11ACC5bwc014ltc14eY22c"
        )
    );
    let sent = server.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].method.as_str(), sent[0].target.as_str()),
        ("POST", "/par")
    );
    assert_eq!(
        sent[0].header("authorization"),
        Some("Basic bXkrY2xpZW50OnMzY3JldA==")
    );
    let state = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc";
    assert_eq!(
        form(&sent[0]),
        pairs(&[
            ("response_type", "code"),
            ("client_id", "my client"),
            ("redirect_uri", "http://127.0.0.1:8765/callback"),
            ("scope", "openid profile"),
            ("state", state),
            (
                "code_challenge",
                "VtX6czP210fbQsI5QH5dpMMvTHnzXQkrE0_TWkAtnFw"
            ),
            ("code_challenge_method", "S256"),
            ("resource", "https://api.example.com/"),
        ])
    );
    assert_eq!(request.pending.state, state);

    // A refusal is typed like a token error, and no authorize URL comes back.
    let refusing = TestServer::start(|_| {
        Reply::json(
            400,
            r#"{"error":"invalid_request","error_description":"no"}"#,
        )
    });
    let refused = begin_session(&refusing, &KeySigner::default()).begin(&par_config(&refusing));
    assert_eq!(
        connector_error(refused),
        Error::ServerSaidNo(OauthError {
            code: ErrorCode::InvalidRequest,
            description: Some("no".into()),
            uri: None,
        })
    );
}

/// DPoP on a token request: the exact proof, one retry with the server's nonce, the nonce
/// kept for the next request to that origin, and the token set bound to the key.
#[test]
fn dpop_proofs_answer_one_nonce_challenge_and_bind_the_tokens() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let server = TestServer::start(move |request| {
        let call = counter.fetch_add(1, Ordering::SeqCst);
        match (request.target.as_str(), call) {
            ("/token?api-version=2", 0) => Reply::new(
                400,
                &[("DPoP-Nonce", "n-1"), ("Content-Type", "application/json")],
                r#"{"error":"use_dpop_nonce","error_description":"nonce required"}"#,
            ),
            ("/token?api-version=2", _) => Reply::new(
                200,
                &[("DPoP-Nonce", "n-2"), ("Content-Type", "application/json")],
                r#"{"access_token":"at-dpop","token_type":"DPoP","expires_in":3600,"refresh_token":"rt-1"}"#,
            ),
            _ => Reply::json(404, "{}"),
        }
    });
    let mut config = config(profile(
        &server.url("/authorize"),
        &server.url("/token?api-version=2"),
    ));
    config.client.client_secret = Some("s3cret".into());
    config.dpop = true;
    let signer = KeySigner::default();
    let mut session = session(&server, &signer);
    let tokens = session.fetch_client_credentials(&config).unwrap();
    assert_eq!(tokens.token_type, "dpop");
    assert_eq!(tokens.dpop_key_thumbprint, Some(thumbprint()));

    let sent = server.requests();
    assert_eq!(sent.len(), 2, "one retry");
    let proof = |request: &Recorded| jwt(request.header("dpop").expect("a DPoP header"));
    let (header, first) = proof(&sent[0]);
    assert_eq!(
        header,
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": serde_json::from_str::<Value>(EC_JWK).unwrap()})
    );
    let htu = server.url("/token");
    let iat = first["iat"].as_u64().unwrap();
    assert_eq!(
        first,
        json!({"jti": JTI, "htm": "POST", "htu": htu, "iat": iat})
    );
    let (_, second) = proof(&sent[1]);
    assert_eq!(second["nonce"], "n-1");
    assert_eq!(second["htu"], htu);
    // Both were signed as DPoP proofs.
    assert!(
        signer
            .asked
            .lock()
            .unwrap()
            .iter()
            .all(|(purpose, _)| *purpose == KeyPurpose::DpopProof)
    );

    // The refresh carries the nonce the last answer gave, at once, and keeps the binding.
    let refreshed = session.refresh(&config, &tokens).unwrap();
    let sent = server.requests();
    assert_eq!(sent.len(), 3, "no challenge: the remembered nonce was used");
    assert_eq!(proof(&sent[2]).1["nonce"], "n-2");
    assert_eq!(refreshed.dpop_key_thumbprint, Some(thumbprint()));
}

/// DPoP on an API call: `Authorization: DPoP`, `ath`, `htu` without the query (the core's
/// tests drop a fragment too; the connector refuses URLs with one), and a
/// resource server's 401 nonce challenge retried once (a second challenge is the answer).
#[test]
fn dpop_api_calls_carry_the_token_hash_and_retry_a_nonce_challenge_at_most_once() {
    let server = TestServer::start(|request| {
        let has_nonce = request
            .header("dpop")
            .map(|proof| jwt(proof).1.get("nonce").is_some())
            .unwrap_or(false);
        match (request.target.as_str(), has_nonce) {
            ("/always-challenged", _) | ("/api/me?fields=a", false) => Reply::new(
                401,
                &[
                    (
                        "WWW-Authenticate",
                        r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#,
                    ),
                    ("DPoP-Nonce", "r-1"),
                ],
                "",
            ),
            _ => Reply::json(200, r#"{"ok":true}"#),
        }
    });
    let mut config = config(profile(&server.url("/authorize"), &server.url("/token")));
    config.dpop = true;
    let tokens = TokenSet {
        access_token: "at-dpop".into(),
        token_type: "dpop".into(),
        expires_at: None,
        refresh_token: None,
        id_token: None,
        scopes: vec![],
        obtained_at: 0,
        extras: vec![],
        dpop_key_thumbprint: Some(thumbprint()),
    };
    let mut session = session(&server, &KeySigner::default());
    let answer = session
        .call_api(
            &config,
            &tokens,
            &HttpRequest {
                method: HttpMethod::Get,
                url: server.url("/api/me?fields=a"),
                headers: vec![],
                body: vec![],
            },
        )
        .unwrap();
    assert_eq!(answer.response.status, 200);
    let sent = server.requests();
    assert_eq!(sent.len(), 2);
    for request in &sent {
        assert_eq!(request.header("authorization"), Some("DPoP at-dpop"));
        let (_, claims) = jwt(request.header("dpop").unwrap());
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], server.url("/api/me"));
        assert_eq!(
            claims["ath"],
            URL_SAFE_NO_PAD.encode(Sha256::digest(b"at-dpop"))
        );
    }
    assert_eq!(jwt(sent[1].header("dpop").unwrap()).1["nonce"], "r-1");

    let answer = session
        .call_api(
            &config,
            &tokens,
            &crate::common::get(&server.url("/always-challenged")),
        )
        .unwrap();
    assert_eq!(answer.response.status, 401);
    assert!(answer.token_rejected);
    // The remembered nonce went first; the challenge repeated it, so no retry was made.
    assert_eq!(server.requests().len(), 3);

    // Tokens bound to another key are refused before anything is sent.
    let other = TokenSet {
        dpop_key_thumbprint: Some("another-key".into()),
        ..tokens
    };
    let refused = session.call_api(&config, &other, &crate::common::get(&server.url("/api/me")));
    assert_eq!(
        connector_error(refused),
        Error::Signing(SigningError::Denied(
            "the host's DPoP key is not the one the tokens are bound to".into()
        ))
    );
    assert_eq!(server.requests().len(), 3);
}

/// RFC 8693 through the component: the exact form, and `issued_token_type` returned.
#[test]
fn token_exchange_sends_the_subject_and_returns_the_issued_type() {
    let server = TestServer::start(|_| {
        Reply::json(
            200,
            r#"{"access_token":"exchanged","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":300}"#,
        )
    });
    let mut config = config(profile(&server.url("/authorize"), &server.url("/token")));
    config.client.client_secret = Some("s3cret".into());
    let exchanged = session(&server, &KeySigner::default())
        .exchange_token(
            &config,
            &ExchangeRequest {
                subject_token: "user-token".into(),
                subject_token_type: "urn:ietf:params:oauth:token-type:access_token".into(),
                actor_token: None,
                actor_token_type: None,
                requested_token_type: None,
                audiences: vec!["https://api.example.test".into()],
                resources: vec![],
                scopes: vec!["api:read".into()],
            },
        )
        .unwrap();
    assert_eq!(
        exchanged.issued_token_type,
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(exchanged.tokens.access_token, "exchanged");
    let sent = server.requests();
    assert_eq!(
        form(&sent[0]),
        pairs(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange"
            ),
            ("audience", "https://api.example.test"),
            ("scope", "api:read"),
            ("subject_token", "user-token"),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token"
            ),
        ])
    );
    assert_eq!(
        sent[0].header("authorization"),
        Some("Basic bXkrY2xpZW50OnMzY3JldA==")
    );
}

/// RFC 7523 §2.1 through the component: the assertion the host signed, and the form.
#[test]
fn the_jwt_bearer_grant_sends_an_assertion_the_host_signed() {
    let server = TestServer::start(|_| {
        Reply::json(
            200,
            r#"{"access_token":"sa-token","token_type":"Bearer","expires_in":3600}"#,
        )
    });
    let mut config = config(profile(&server.url("/authorize"), &server.url("/token")));
    config.client.auth_method = Some(connector_host::types::ClientAuthMethod::None);
    let signer = KeySigner::default();
    let tokens = session(&server, &signer)
        .fetch_jwt_bearer(
            &config,
            &AssertionClaims {
                issuer: Some("robot@service.test".into()),
                subject: Some("alice".into()),
                audience: None,
                scope_in_claims: false,
                lifetime_seconds: Some(120),
            },
        )
        .unwrap();
    assert_eq!(tokens.access_token, "sa-token");
    let sent = server.requests();
    let fields = form(&sent[0]);
    let assertion = &fields.iter().find(|(k, _)| k == "assertion").unwrap().1;
    let (header, claims) = jwt(assertion);
    assert_eq!(header, json!({"alg": "ES256", "typ": "JWT", "kid": "k-1"}));
    let iat = claims["iat"].as_u64().unwrap();
    assert_eq!(
        claims,
        json!({
            "iss": "robot@service.test",
            "sub": "alice",
            "aud": server.url("/token"),
            "iat": iat,
            "exp": iat + 120,
            "jti": JTI,
        })
    );
    assert_eq!(
        fields
            .iter()
            .filter(|(k, _)| k != "assertion")
            .cloned()
            .collect::<Vec<_>>(),
        pairs(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("scope", "openid profile"),
            ("client_id", "my client"),
        ])
    );
    assert_eq!(
        signer.asked.lock().unwrap()[0].0,
        KeyPurpose::AuthorizationGrant
    );
}

/// RFC 9728 through the component: the 401's `resource_metadata` is followed, and metadata
/// naming another resource is refused.
#[test]
fn resource_metadata_is_found_through_the_challenge_and_checked() {
    let server = TestServer::start(|request| {
        let origin = format!("http://{}", request.header("host").unwrap());
        match request.target.as_str() {
            "/api/whoami" => Reply::new(
                401,
                &[(
                    "WWW-Authenticate",
                    &format!(
                        r#"Bearer resource_metadata="{origin}/.well-known/oauth-protected-resource/api""#
                    ),
                )],
                "",
            ),
            "/.well-known/oauth-protected-resource/api" => Reply::json(
                200,
                &format!(
                    r#"{{"resource":"{origin}/api","authorization_servers":["{origin}"],"scopes_supported":["api:read"]}}"#
                ),
            ),
            "/.well-known/oauth-protected-resource/elsewhere" => Reply::json(
                200,
                r#"{"resource":"https://evil.example/elsewhere","authorization_servers":["https://evil.example"]}"#,
            ),
            _ => Reply::json(404, "{}"),
        }
    });
    let mut session = session(&server, &KeySigner::default());
    let found = session
        .discover_resource(&server.url("/api/whoami"))
        .unwrap();
    assert_eq!(found.resource, server.url("/api"));
    assert_eq!(
        found.authorization_servers,
        [server.url("/").trim_end_matches('/')]
    );
    assert_eq!(found.scopes_supported, ["api:read"]);
    let targets: Vec<String> = server.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        ["/api/whoami", "/.well-known/oauth-protected-resource/api"]
    );
    let refused = session.discover_resource(&server.url("/elsewhere"));
    assert_eq!(
        connector_error(refused),
        Error::Discovery(DiscoveryError::ResourceMismatch(
            "https://evil.example/elsewhere".into()
        ))
    );
}
