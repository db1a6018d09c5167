//! Client authentication by JWT assertion through the component (RFC 7523 §2.2, OpenID
//! Connect Core §9): the exact assertions of `client_secret_jwt` and `private_key_jwt`
//! (header, claims, `aud`, lifetime, signature), the host signer's part, the signer's
//! refusals as typed errors with no request sent, the client's method overriding the
//! profile's default, and `authorization-code.check`.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use connector_host::bindings::oauth_connector::oauth2::signer::SigningKey;
use connector_host::signer::Signer;
use connector_host::types::{
    AssertionAudience, ClientAuthMethod, ConfigurationError, ConnectionConfig, Error, KeyPurpose,
    SigningAlgorithm, SigningError, TokenSet,
};
use connector_host::{AllowList, CallError, HttpTransport, Limits, Session};
use serde_json::{Value, json};

use crate::common::{
    Recorded, Reply, ScriptedRandom, TestServer, config, connector_error, profile, runtime,
    scripted_session,
};

const TOKEN_JSON: &str =
    r#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-2"}"#;
const STATE: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc";
/// base64url of 16 bytes of 9: the `jti` of an assertion built on scripted random.
const JTI: &str = "CQkJCQkJCQkJCQkJCQkJCQ";
const SECRET: &str = "a-client-secret-of-some-length-0123456789";
const ASSERTION_TYPE: &str = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";

/// One signing request: purpose, client id, signing input.
type Asked = (KeyPurpose, String, Vec<u8>);

/// A signer that records what it was asked to sign and answers with fixed bytes.
#[derive(Clone)]
struct RecordingSigner {
    key: Result<SigningKey, SigningError>,
    signature: Result<Vec<u8>, SigningError>,
    asked: Arc<Mutex<Vec<Asked>>>,
}

impl RecordingSigner {
    fn es256() -> Self {
        Self {
            key: Ok(SigningKey {
                algorithm: SigningAlgorithm::Es256,
                key_id: Some("key-1".into()),
                public_jwk: None,
            }),
            signature: Ok(vec![0xAB; 64]),
            asked: Arc::default(),
        }
    }

    fn inputs(&self) -> Vec<Asked> {
        self.asked.lock().unwrap().clone()
    }
}

impl Signer for RecordingSigner {
    fn key(&self, _: KeyPurpose, _: &str) -> Result<SigningKey, SigningError> {
        self.key.clone()
    }

    fn sign(
        &self,
        purpose: KeyPurpose,
        client_id: &str,
        input: &[u8],
    ) -> Result<Vec<u8>, SigningError> {
        self.asked
            .lock()
            .unwrap()
            .push((purpose, client_id.to_owned(), input.to_vec()));
        self.signature.clone()
    }
}

fn server() -> TestServer {
    TestServer::start(|_| Reply::json(200, TOKEN_JSON))
}

fn jwt_config(server: &TestServer, method: ClientAuthMethod) -> ConnectionConfig {
    let mut profile = profile(
        "https://auth.example.com/authorize",
        &server.url("/token?api-version=2"),
    );
    profile.issuer = Some("https://issuer.example.com".into());
    profile.revocation_url = Some(server.url("/revoke?v=1"));
    let mut config = config(profile);
    config.client.auth_method = Some(method);
    config.client.client_secret = Some(SECRET.into());
    config
}

/// A session whose `wasi:random` yields state and verifier bytes, then 16 bytes of 9 for
/// each `jti`.
fn session(server: &TestServer, signer: Option<&RecordingSigner>) -> Session {
    let mut session = scripted_session(server, std::iter::repeat_n(9u8, 64));
    if let Some(signer) = signer {
        session.set_signer(signer.clone());
    }
    session
}

/// Begins (in its own instance, state of 7s) and completes a flow.
fn exchange(
    server: &TestServer,
    config: &ConnectionConfig,
    signer: Option<&RecordingSigner>,
) -> Result<TokenSet, CallError> {
    let random = ScriptedRandom::new([7u8; 32].into_iter().chain([1u8; 32]));
    let transport = HttpTransport::new(AllowList::default(), Limits::default());
    let request = runtime()
        .instantiate_with_random(transport, random)
        .unwrap()
        .begin(config)
        .unwrap();
    let callback = format!("http://127.0.0.1:8765/callback?code=c0de&state={STATE}");
    session(server, signer).complete(config, &request.pending, &callback)
}

/// The form body as ordered pairs.
fn form(request: &Recorded) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&request.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The assertion of `request`, split: header, claims, signature bytes, signing input.
fn assertion(request: &Recorded) -> (Value, Value, Vec<u8>, String) {
    let body = form(request);
    let jwt = &body
        .iter()
        .find(|(name, _)| name == "client_assertion")
        .expect("a client_assertion")
        .1;
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS");
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .expect("base64url without padding")
    };
    let json = |part: &str| serde_json::from_slice::<Value>(&decode(part)).unwrap();
    (
        json(parts[0]),
        json(parts[1]),
        decode(parts[2]),
        format!("{}.{}", parts[0], parts[1]),
    )
}

/// Checks the claims every assertion carries, with `aud`; returns `iat`.
fn assert_claims(claims: &Value, aud: &str) -> u64 {
    let iat = claims["iat"].as_u64().expect("a numeric iat");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(iat.abs_diff(now) <= 5, "iat {iat} is now ({now})");
    assert_eq!(
        *claims,
        json!({
            "iss": "my client",
            "sub": "my client",
            "aud": aud,
            "jti": JTI,
            "iat": iat,
            "exp": iat + 120,
        })
    );
    iat
}

#[test]
fn client_secret_jwt_code_exchange_sends_an_hs256_assertion() {
    let server = server();
    let config = jwt_config(&server, ClientAuthMethod::ClientSecretJwt);
    exchange(&server, &config, None).unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.target, "/token?api-version=2");
    assert_eq!(request.header("authorization"), None);
    let (header, claims, signature, input) = assertion(request);
    assert_eq!(header, json!({"alg": "HS256", "typ": "JWT"}));
    assert_claims(&claims, &server.url("/token?api-version=2"));
    // RFC 7518 §3.2: HMAC SHA-256 keyed by the client secret.
    assert_eq!(
        signature,
        oauth_connector::client_auth::hs256(SECRET.as_bytes(), input.as_bytes())
    );
    let body = String::from_utf8(request.body.clone()).unwrap();
    let jwt = &form(request)[6].1;
    assert_eq!(
        body,
        format!(
            "grant_type=authorization_code&code=c0de\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback\
             &code_verifier=AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\
             &client_id=my+client&client_assertion_type={ASSERTION_TYPE}&client_assertion={jwt}"
        )
    );
}

#[test]
fn private_key_jwt_asks_the_host_to_sign_the_exact_signing_input() {
    let server = server();
    let config = jwt_config(&server, ClientAuthMethod::PrivateKeyJwt);
    let signer = RecordingSigner::es256();
    exchange(&server, &config, Some(&signer)).unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let (header, claims, signature, input) = assertion(&requests[0]);
    assert_eq!(
        header,
        json!({"alg": "ES256", "typ": "JWT", "kid": "key-1"})
    );
    assert_claims(&claims, &server.url("/token?api-version=2"));
    assert_eq!(signature, vec![0xAB; 64]);
    assert_eq!(
        signer.inputs(),
        [(
            KeyPurpose::ClientAssertion,
            "my client".to_owned(),
            input.into_bytes()
        )]
    );
    // The client secret is not sent with a private_key_jwt client.
    let names: Vec<String> = form(&requests[0]).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "grant_type",
            "code",
            "redirect_uri",
            "code_verifier",
            "client_id",
            "client_assertion_type",
            "client_assertion"
        ]
    );
}

#[test]
fn assertions_on_refresh_client_credentials_and_revocation_with_each_audience() {
    let server = server();
    let signer = RecordingSigner::es256();
    let tokens = TokenSet {
        access_token: "at-1".into(),
        token_type: "bearer".into(),
        expires_at: Some(1),
        refresh_token: Some("rt-1".into()),
        id_token: None,
        scopes: vec![],
        obtained_at: 0,
        extras: vec![],
        dpop_key_thumbprint: None,
    };
    let token_url = server.url("/token?api-version=2");
    for audience in [AssertionAudience::TokenUrl, AssertionAudience::Issuer] {
        let mut config = jwt_config(&server, ClientAuthMethod::PrivateKeyJwt);
        config.profile.assertion_audience = audience;
        session(&server, Some(&signer))
            .refresh(&config, &tokens)
            .unwrap();
        session(&server, Some(&signer))
            .fetch_client_credentials(&config)
            .unwrap();
    }
    let mut config = jwt_config(&server, ClientAuthMethod::PrivateKeyJwt);
    config.profile.assertion_audience = AssertionAudience::RequestUrl;
    session(&server, Some(&signer))
        .revoke(&config, &tokens)
        .unwrap();
    let requests = server.requests();
    let grants: Vec<(String, String, String)> = requests
        .iter()
        .map(|request| {
            let (_, claims, _, _) = assertion(request);
            let grant = form(request)
                .into_iter()
                .find(|(n, _)| n == "grant_type" || n == "token_type_hint")
                .unwrap()
                .1;
            (
                request.target.clone(),
                grant,
                claims["aud"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let revoke = server.url("/revoke");
    assert_eq!(
        grants,
        [
            ("/token?api-version=2", "refresh_token", token_url.as_str()),
            (
                "/token?api-version=2",
                "client_credentials",
                token_url.as_str()
            ),
            (
                "/token?api-version=2",
                "refresh_token",
                "https://issuer.example.com"
            ),
            (
                "/token?api-version=2",
                "client_credentials",
                "https://issuer.example.com"
            ),
            // RequestUrl: the endpoint the request goes to, without its query.
            ("/revoke?v=1", "refresh_token", revoke.as_str()),
            ("/revoke?v=1", "access_token", revoke.as_str()),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    assert_eq!(signer.inputs().len(), 6, "one signature per request");
}

#[test]
fn signer_refusals_are_typed_and_nothing_is_sent() {
    let server = server();
    let config = jwt_config(&server, ClientAuthMethod::PrivateKeyJwt);
    let cases = [
        (
            Err(SigningError::NoKey),
            Ok(vec![0; 64]),
            SigningError::NoKey,
        ),
        (
            RecordingSigner::es256().key,
            Err(SigningError::Denied("policy says no".into())),
            SigningError::Denied("policy says no".into()),
        ),
        (
            RecordingSigner::es256().key,
            Ok(vec![0; 70]),
            SigningError::Unsupported("the host's ES256 signature is 70 bytes long".into()),
        ),
    ];
    for (key, signature, expected) in cases {
        let signer = RecordingSigner {
            key,
            signature,
            asked: Arc::default(),
        };
        let error =
            connector_error(session(&server, Some(&signer)).fetch_client_credentials(&config));
        assert_eq!(error, Error::Signing(expected));
    }
    // Without a signer at all, the host's default answers `no-key`.
    assert_eq!(
        connector_error(session(&server, None).fetch_client_credentials(&config)),
        Error::Signing(SigningError::NoKey)
    );
    assert_eq!(
        server.requests().len(),
        0,
        "no request without an assertion"
    );
}

#[test]
fn the_clients_method_overrides_the_profiles_default() {
    let server = server();
    let mut config = jwt_config(&server, ClientAuthMethod::ClientSecretPost);
    config.profile.client_auth = ClientAuthMethod::ClientSecretBasic;
    config.client.client_secret = Some("s3".into());
    session(&server, None)
        .fetch_client_credentials(&config)
        .unwrap();
    // No method on the client: the profile's default (Basic).
    config.client.auth_method = None;
    session(&server, None)
        .fetch_client_credentials(&config)
        .unwrap();
    // A public client on a profile whose default needs a secret: no secret asked for.
    config.client.auth_method = Some(ClientAuthMethod::None);
    config.client.client_secret = None;
    session(&server, None)
        .fetch_client_credentials(&config)
        .unwrap();
    let requests = server.requests();
    let bodies: Vec<String> = requests
        .iter()
        .map(|r| String::from_utf8(r.body.clone()).unwrap())
        .collect();
    assert_eq!(
        bodies,
        [
            "grant_type=client_credentials&scope=openid+profile&client_id=my+client&client_secret=s3",
            "grant_type=client_credentials&scope=openid+profile",
            "grant_type=client_credentials&scope=openid+profile&client_id=my+client",
        ]
    );
    assert_eq!(requests[0].header("authorization"), None);
    assert_eq!(
        requests[1].header("authorization"),
        Some("Basic bXkrY2xpZW50OnMz")
    );
    assert_eq!(requests[2].header("authorization"), None);
}

#[test]
fn check_finds_what_a_sign_in_would_fail_on_without_sending_or_signing() {
    let server = server();
    let signer = RecordingSigner::es256();
    let check = |config: &ConnectionConfig, signer: Option<&RecordingSigner>| {
        session(&server, signer).check(config)
    };
    let good = jwt_config(&server, ClientAuthMethod::PrivateKeyJwt);
    check(&good, Some(&signer)).unwrap();
    assert!(
        signer.inputs().is_empty(),
        "check never asks for a signature"
    );
    assert_eq!(
        connector_error(check(&good, None)),
        Error::Signing(SigningError::NoKey)
    );

    let mut no_secret = jwt_config(&server, ClientAuthMethod::ClientSecretJwt);
    no_secret.client.client_secret = None;
    for method in [
        ClientAuthMethod::ClientSecretJwt,
        ClientAuthMethod::ClientSecretBasic,
        ClientAuthMethod::ClientSecretPost,
    ] {
        no_secret.client.auth_method = Some(method);
        assert_eq!(
            connector_error(check(&no_secret, None)),
            Error::Configuration(ConfigurationError::MissingClientSecret)
        );
    }
    no_secret.client.auth_method = Some(ClientAuthMethod::None);
    check(&no_secret, None).unwrap();

    let mut issuer_audience = good.clone();
    issuer_audience.profile.assertion_audience = AssertionAudience::Issuer;
    issuer_audience.profile.issuer = None;
    assert_eq!(
        connector_error(check(&issuer_audience, Some(&signer))),
        Error::Configuration(ConfigurationError::InvalidValue(
            "assertion-audience".into()
        ))
    );
    let mut reserved = good.clone();
    reserved.token_requests.code_exchange.params =
        vec![crate::common::kv("client_assertion_type", "x")];
    assert_eq!(
        connector_error(check(&reserved, Some(&signer))),
        Error::Configuration(ConfigurationError::ReservedParameter(
            "client_assertion_type".into()
        ))
    );
    let mut no_authorize = good.clone();
    no_authorize.profile.authorize_url = None;
    assert_eq!(
        connector_error(check(&no_authorize, Some(&signer))),
        Error::Configuration(ConfigurationError::MissingEndpoint("authorize-url".into()))
    );
    assert!(server.requests().is_empty(), "check sends nothing");
}
