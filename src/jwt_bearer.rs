//! The JWT bearer authorization grant (RFC 7523 §2.1): a signed assertion stands for the
//! grant. The host signs (purpose `authorization-grant`); the key never enters the core.

use crate::prelude::*;

use crate::client_auth::{AuthContext, KeyPurpose, jti, sign_jwt};
use crate::error::{ConfigError, Error};
use crate::http::{HttpRequest, HttpResponse};
use crate::profile::{ConnectionConfig, KeyValue, Prepared, RequestKind};
use crate::token::TokenSet;
use crate::token_request::{authenticated_post, push_resources};

/// The RFC 7523 grant type.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// An assertion's lifetime when the caller names none (Google's maximum is an hour; a
/// short one limits what a captured assertion is worth).
pub const DEFAULT_LIFETIME_SECONDS: u32 = 300;

/// The longest lifetime accepted.
pub const MAX_LIFETIME_SECONDS: u32 = 3600;

/// The assertion's claims (the WIT `assertion-claims`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssertionClaims {
    /// `iss`; `None`: the client id.
    pub issuer: Option<String>,
    /// `sub`; `None`: the issuer.
    pub subject: Option<String>,
    /// `aud`; `None`: the token URL.
    pub audience: Option<String>,
    /// Scopes in a `scope` claim instead of the `scope` parameter.
    pub scope_in_claims: bool,
    /// `exp` - `iat` in seconds; `None`: [`DEFAULT_LIFETIME_SECONDS`].
    pub lifetime_seconds: Option<u32>,
}

/// The token request (RFC 7523 §2.1): `grant_type`, `assertion`, `scope` (unless it is in the
/// claims), the connection's `resource`s, client authentication, the `jwt-bearer` extras.
pub fn request(
    config: &Prepared,
    claims: &AssertionClaims,
    auth: &AuthContext<'_>,
) -> Result<HttpRequest, Error> {
    let lifetime = claims.lifetime_seconds.unwrap_or(DEFAULT_LIFETIME_SECONDS);
    if lifetime == 0 || lifetime > MAX_LIFETIME_SECONDS {
        return Err(ConfigError::InvalidValue("lifetime-seconds".into()).into());
    }
    let client_id = &config.client.client_id;
    let key = auth
        .signer
        .key(KeyPurpose::AuthorizationGrant, client_id)
        .map_err(Error::Signing)?;
    let mut header = serde_json::json!({"alg": key.algorithm.as_str(), "typ": "JWT"});
    if let Some(kid) = &key.key_id {
        header["kid"] = kid.as_str().into();
    }
    let issuer = claims.issuer.as_deref().unwrap_or(client_id);
    let scope = config
        .effective_scopes()
        .join(&config.profile.scope_separator);
    let mut jwt = serde_json::json!({
        "iss": issuer,
        "sub": claims.subject.as_deref().unwrap_or(issuer),
        "aud": claims.audience.as_deref().unwrap_or(&config.profile.token_url),
        "iat": auth.now,
        "exp": auth.now + u64::from(lifetime),
        "jti": jti(auth)?,
    });
    if claims.scope_in_claims && !scope.is_empty() {
        jwt["scope"] = scope.as_str().into();
    }
    let assertion = sign_jwt(
        auth.signer,
        KeyPurpose::AuthorizationGrant,
        client_id,
        key.algorithm,
        &header,
        &jwt,
    )?;
    let mut params = vec![
        KeyValue::new("grant_type", JWT_BEARER_GRANT),
        KeyValue::new("assertion", assertion),
    ];
    if !claims.scope_in_claims && !scope.is_empty() {
        params.push(KeyValue::new("scope", scope));
    }
    push_resources(config, &mut params);
    authenticated_post(
        config,
        "token-url",
        params,
        Some(RequestKind::JwtBearer),
        auth,
    )
}

/// Reads the token response as a client-credentials answer (RFC 7523 §2.1 answers as RFC
/// 6749 §5.1 does): absent `scope` means the requested scopes.
pub fn finish(
    config: &ConnectionConfig,
    response: &HttpResponse,
    now: u64,
) -> Result<TokenSet, Error> {
    crate::client_credentials::finish(config, response, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client_auth::{Signer, SigningAlgorithm, SigningError, SigningKey};
    use crate::profile::{Client, ClientAuthMethod, ProviderProfile};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use core::cell::RefCell;

    struct GrantSigner(RefCell<Vec<KeyPurpose>>);

    impl Signer for GrantSigner {
        fn key(&self, purpose: KeyPurpose, client_id: &str) -> Result<SigningKey, SigningError> {
            assert_eq!(client_id, "sa-client");
            self.0.borrow_mut().push(purpose);
            Ok(SigningKey {
                algorithm: SigningAlgorithm::Rs256,
                key_id: Some("k1".into()),
                public_jwk: None,
            })
        }

        fn sign(&self, purpose: KeyPurpose, _: &str, _: &[u8]) -> Result<Vec<u8>, SigningError> {
            self.0.borrow_mut().push(purpose);
            Ok(vec![9; 256])
        }
    }

    fn config() -> ConnectionConfig {
        ConnectionConfig {
            profile: ProviderProfile::from_json(
                r#"{"token-url": "https://oauth2.example.com/token"}"#,
            )
            .unwrap(),
            client: Client {
                client_id: "sa-client".into(),
                client_secret: None,
                auth_method: Some(ClientAuthMethod::None),
            },
            redirect_uri: None,
            scopes: vec!["https://example.com/auth/drive".into(), "email".into()],
            authorize_params: vec![],
            token_requests: Default::default(),
            variables: vec![],
            offline_access: false,
            resources: vec![],
            dpop: false,
        }
    }

    fn claims_of(body: &str) -> (serde_json::Value, serde_json::Value, Vec<KeyValue>) {
        let params = crate::form::decode(body.as_bytes());
        let assertion = &params.iter().find(|p| p.name == "assertion").unwrap().value;
        let parts: Vec<&str> = assertion.split('.').collect();
        let decode =
            |part: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
        assert_eq!(parts[2], URL_SAFE_NO_PAD.encode([9; 256]));
        (decode(parts[0]), decode(parts[1]), params)
    }

    #[test]
    fn the_assertion_and_request_are_rfc_7523s() {
        let signer = GrantSigner(RefCell::new(vec![]));
        let auth = AuthContext {
            now: 1000,
            random: &|| Some([2; 16]),
            signer: &signer,
        };
        let claims = AssertionClaims {
            issuer: Some("robot@project.iam.example".into()),
            subject: Some("user@example.com".into()),
            ..AssertionClaims::default()
        };
        let request = request(&config().prepare().unwrap(), &claims, &auth).unwrap();
        let (header, jwt, params) = claims_of(core::str::from_utf8(&request.body).unwrap());
        assert_eq!(
            header,
            serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "k1"})
        );
        assert_eq!(
            jwt,
            serde_json::json!({
                "iss": "robot@project.iam.example",
                "sub": "user@example.com",
                "aud": "https://oauth2.example.com/token",
                "iat": 1000,
                "exp": 1300,
                "jti": URL_SAFE_NO_PAD.encode([2; 16]),
            })
        );
        let names: Vec<(&str, &str)> = params
            .iter()
            .filter(|p| p.name != "assertion")
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("grant_type", JWT_BEARER_GRANT),
                ("scope", "https://example.com/auth/drive email"),
                ("client_id", "sa-client"),
            ]
        );
        assert_eq!(
            *signer.0.borrow(),
            [
                KeyPurpose::AuthorizationGrant,
                KeyPurpose::AuthorizationGrant
            ]
        );
    }

    #[test]
    fn scopes_go_in_the_claims_when_asked_and_defaults_follow_the_client() {
        let signer = GrantSigner(RefCell::new(vec![]));
        let auth = AuthContext {
            now: 1000,
            random: &|| Some([2; 16]),
            signer: &signer,
        };
        let claims = AssertionClaims {
            scope_in_claims: true,
            audience: Some("https://aud.example/".into()),
            lifetime_seconds: Some(3600),
            ..AssertionClaims::default()
        };
        let request = request(&config().prepare().unwrap(), &claims, &auth).unwrap();
        let (_, jwt, params) = claims_of(core::str::from_utf8(&request.body).unwrap());
        assert_eq!(jwt["iss"], "sa-client");
        assert_eq!(jwt["sub"], "sa-client");
        assert_eq!(jwt["aud"], "https://aud.example/");
        assert_eq!(jwt["exp"], 4600);
        assert_eq!(jwt["scope"], "https://example.com/auth/drive email");
        assert!(params.iter().all(|p| p.name != "scope"));
        for lifetime in [0, 3601] {
            let claims = AssertionClaims {
                lifetime_seconds: Some(lifetime),
                ..AssertionClaims::default()
            };
            assert_eq!(
                super::request(&config().prepare().unwrap(), &claims, &auth).unwrap_err(),
                Error::Configuration(ConfigError::InvalidValue("lifetime-seconds".into()))
            );
        }
    }
}
