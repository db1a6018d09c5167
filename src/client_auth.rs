//! Client authentication at the token endpoint (RFC 6749 §2.3.1) by JWT assertion:
//! `client_secret_jwt` (HS256, computed here) and `private_key_jwt` (signed by the host)
//! (OpenID Connect Core §9; RFC 7523 §2.2, §3; RFC 7521 §4.2).
//!
//! The core builds the JWS header and claims; a private key never enters it. The host's
//! signer is reached through the [`Signer`] trait, the time and the `jti` randomness through
//! [`AuthContext`], so request building stays pure and deterministic in tests.

use crate::prelude::*;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{ConfigError, Error};
use crate::profile::{AssertionAudience, ClientAuthMethod, ConnectionConfig, KeyValue};

/// `client_assertion_type` for JWT client assertions (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid: long enough for a slow network, short enough that a
/// captured one is soon useless (servers also refuse a replayed `jti`).
pub const ASSERTION_LIFETIME_SECONDS: u64 = 120;

/// Random bytes in a `jti` (128 bits: unguessable and, in practice, never repeated).
pub const JTI_RANDOM_BYTES: usize = 16;

/// A JWS algorithm a signer may use (RFC 7518 §3.1; RFC 8037 §3.1). In JSON profiles,
/// its WIT name (`es256`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// ECDSA P-256 with SHA-256 (64-byte `R || S`).
    Es256,
    /// ECDSA P-384 with SHA-384 (96-byte `R || S`).
    Es384,
    /// Ed25519 (64-byte signature).
    #[serde(rename = "eddsa")]
    EdDsa,
}

impl SigningAlgorithm {
    /// The JWS `alg` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The algorithm of a JWS `alg` value, if the connector can use it.
    pub fn from_jws(name: &str) -> Option<Self> {
        [
            Self::Rs256,
            Self::Ps256,
            Self::Es256,
            Self::Es384,
            Self::EdDsa,
        ]
        .into_iter()
        .find(|algorithm| algorithm.as_str() == name)
    }

    /// The signature length the algorithm always produces, when it is fixed.
    fn fixed_signature_len(self) -> Option<usize> {
        match self {
            Self::Es256 | Self::EdDsa => Some(64),
            Self::Es384 => Some(96),
            Self::Rs256 | Self::Ps256 => None,
        }
    }
}

/// What the host's signer uses a key for (the WIT `key-purpose`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPurpose {
    /// A `private_key_jwt` client assertion (RFC 7523 §2.2).
    ClientAssertion,
    /// A DPoP proof (RFC 9449 §4).
    DpopProof,
    /// A JWT authorization grant (RFC 7523 §2.1).
    AuthorizationGrant,
}

/// The public facts of the host's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKey {
    /// The algorithm the host signs with.
    pub algorithm: SigningAlgorithm,
    /// The registered key id (`kid`), if any.
    pub key_id: Option<String>,
    /// The public key as a JWK (JSON text), if the host gave it.
    pub public_jwk: Option<String>,
}

/// Why the host's signer did not sign (the WIT `signing-error`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SigningError {
    /// The host holds no key for this client.
    NoKey,
    /// The host's policy refused.
    Denied(String),
    /// An algorithm or signature the component cannot use.
    Unsupported(String),
    /// The signer failed.
    Failed(String),
}

/// The host's signer: client assertions, DPoP proofs and grant assertions.
pub trait Signer {
    /// The key the host signs with for `client_id` and `purpose`.
    fn key(&self, purpose: KeyPurpose, client_id: &str) -> Result<SigningKey, SigningError>;
    /// The JWS signature of `input` with that key.
    fn sign(
        &self,
        purpose: KeyPurpose,
        client_id: &str,
        input: &[u8],
    ) -> Result<Vec<u8>, SigningError>;
}

/// A signer that holds no key: every request is `NoKey`.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSigner;

impl Signer for NoSigner {
    fn key(&self, _: KeyPurpose, _: &str) -> Result<SigningKey, SigningError> {
        Err(SigningError::NoKey)
    }

    fn sign(&self, _: KeyPurpose, _: &str, _: &[u8]) -> Result<Vec<u8>, SigningError> {
        Err(SigningError::NoKey)
    }
}

/// Asks the real signer for its key but never for a signature: the stand-in signature has
/// the right length. For checking a configuration without side effects.
pub struct KeyCheckOnly<'a>(pub &'a dyn Signer);

impl Signer for KeyCheckOnly<'_> {
    fn key(&self, purpose: KeyPurpose, client_id: &str) -> Result<SigningKey, SigningError> {
        self.0.key(purpose, client_id)
    }

    fn sign(
        &self,
        purpose: KeyPurpose,
        client_id: &str,
        _: &[u8],
    ) -> Result<Vec<u8>, SigningError> {
        let key = self.0.key(purpose, client_id)?;
        Ok(vec![0; key.algorithm.fixed_signature_len().unwrap_or(256)])
    }
}

/// What client authentication needs besides the configuration: the time, fresh randomness
/// for each assertion's `jti`, and the host's signer.
pub struct AuthContext<'a> {
    /// Seconds since the Unix epoch.
    pub now: u64,
    /// Fresh random bytes; `None` when the source failed.
    pub random: &'a dyn Fn() -> Option<[u8; JTI_RANDOM_BYTES]>,
    /// The host's signer.
    pub signer: &'a dyn Signer,
}

impl AuthContext<'static> {
    /// A context for methods that need no assertion (`client_secret_basic`,
    /// `client_secret_post`, `none`): a JWT method fails with a typed error.
    pub fn without_assertions() -> Self {
        Self {
            now: 0,
            random: &|| None,
            signer: &NoSigner,
        }
    }
}

/// The `client_assertion` for `config`'s JWT method (`method` must be one), for a request
/// to `request_url` (without its query).
pub fn assertion(
    config: &ConnectionConfig,
    method: ClientAuthMethod,
    request_url: &url::Url,
    auth: &AuthContext<'_>,
) -> Result<String, Error> {
    let client_id = &config.client.client_id;
    let audience = match config.profile.assertion_audience {
        AssertionAudience::TokenUrl => config.profile.token_url.clone(),
        AssertionAudience::RequestUrl => {
            let mut url = request_url.clone();
            url.set_query(None);
            url.into()
        }
        AssertionAudience::Issuer => config
            .profile
            .issuer
            .clone()
            .ok_or_else(|| ConfigError::InvalidValue("assertion-audience".into()))?,
    };
    let (header, key) = match method {
        ClientAuthMethod::ClientSecretJwt => {
            let secret = config
                .client
                .client_secret
                .as_ref()
                .ok_or(ConfigError::MissingClientSecret)?;
            (
                serde_json::json!({"alg": "HS256", "typ": "JWT"}),
                Key::Hmac(secret.expose().as_bytes()),
            )
        }
        _ => {
            let purpose = KeyPurpose::ClientAssertion;
            let key = auth
                .signer
                .key(purpose, client_id)
                .map_err(Error::Signing)?;
            let mut header = serde_json::json!({"alg": key.algorithm.as_str(), "typ": "JWT"});
            if let Some(kid) = &key.key_id {
                header["kid"] = kid.as_str().into();
            }
            (header, Key::Host(purpose, key.algorithm))
        }
    };
    let claims = serde_json::json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": jti(auth)?,
        "iat": auth.now,
        "exp": auth.now + ASSERTION_LIFETIME_SECONDS,
    });
    match key {
        Key::Hmac(secret) => {
            let input = signing_input(&header, &claims);
            let signature = hs256(secret, input.as_bytes());
            Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
        }
        Key::Host(purpose, algorithm) => {
            sign_jwt(auth.signer, purpose, client_id, algorithm, &header, &claims)
        }
    }
}

/// A fresh `jti`: 128 random bits, base64url.
pub fn jti(auth: &AuthContext<'_>) -> Result<String, Error> {
    let random = (auth.random)().ok_or_else(|| {
        Error::Signing(SigningError::Failed(
            "the random source failed; no jti".into(),
        ))
    })?;
    Ok(URL_SAFE_NO_PAD.encode(random))
}

/// The JWS Signing Input: `BASE64URL(header) '.' BASE64URL(claims)` (RFC 7515 §5.1).
fn signing_input(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// A compact JWS of `header` and `claims`, signed by the host's key for `purpose`, whose
/// algorithm is `algorithm`; a signature of the wrong size for it is refused.
pub fn sign_jwt(
    signer: &dyn Signer,
    purpose: KeyPurpose,
    client_id: &str,
    algorithm: SigningAlgorithm,
    header: &serde_json::Value,
    claims: &serde_json::Value,
) -> Result<String, Error> {
    let input = signing_input(header, claims);
    let signature = signer
        .sign(purpose, client_id, input.as_bytes())
        .map_err(Error::Signing)?;
    let expected = algorithm.fixed_signature_len();
    if signature.is_empty() || expected.is_some_and(|len| len != signature.len()) {
        return Err(Error::Signing(SigningError::Unsupported(format!(
            "the host's {} signature is {} bytes long",
            algorithm.as_str(),
            signature.len()
        ))));
    }
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// The body parameters of a JWT client assertion (RFC 7521 §4.2; `client_id` too, which
/// RFC 7521 allows and several servers expect).
pub fn assertion_params(client_id: &str, assertion: String) -> [KeyValue; 3] {
    [
        KeyValue::new("client_id", client_id),
        KeyValue::new("client_assertion_type", JWT_BEARER_ASSERTION),
        KeyValue::new("client_assertion", assertion),
    ]
}

enum Key<'a> {
    Hmac(&'a [u8]),
    Host(KeyPurpose, SigningAlgorithm),
}

/// HMAC SHA-256 (RFC 2104) of `input` keyed by `secret`, as JWS HS256 uses it (RFC 7518 §3.2).
pub fn hs256(secret: &[u8], input: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(input);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2.
    #[test]
    fn hs256_matches_rfc_4231() {
        let mac = hs256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// RFC 7515 Appendix A.1: the HS256 signature of the example JWS.
    #[test]
    fn hs256_matches_rfc_7515_a1() {
        let key = URL_SAFE_NO_PAD
            .decode(
                "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
            )
            .unwrap();
        let input = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        assert_eq!(
            URL_SAFE_NO_PAD.encode(hs256(&key, input.as_bytes())),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
    }
}
