//! DPoP: sender-constrained tokens (RFC 9449).
//!
//! The host holds the key; the core builds each proof's header and claims and asks the
//! host's signer (purpose `dpop-proof`) to sign them. A [`Prover`] is made once per call
//! from the signer's public key; [`exchange`] sends a request with a proof and answers one
//! nonce challenge (§8 for the token endpoint, §9 for resource servers), remembering the
//! nonces servers hand out in [`Nonces`].

use crate::prelude::*;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::client_auth::{AuthContext, KeyPurpose, SigningAlgorithm, SigningError, jti, sign_jwt};
use crate::error::Error;
use crate::http::{HttpRequest, HttpResponse};
use crate::profile::{ConnectionConfig, KeyValue};
use crate::token::{TokenSet, parse_fields};

/// The proof's JOSE `typ` (RFC 9449 §4.2).
pub const PROOF_TYPE: &str = "dpop+jwt";

/// How many origins' nonces are remembered; the oldest is forgotten first.
pub const MAX_REMEMBERED_NONCES: usize = 16;

/// The longest nonce accepted from a server (RFC 9449 §8.1 asks only for a non-empty
/// string of `nqchar`s): a hostile server must not make every later proof huge.
pub const MAX_NONCE_BYTES: usize = 512;

/// Members a public JWK must not carry: any of them is (part of) a private key.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A DPoP key as the proofs need it: the algorithm, the public JWK with only its required
/// members (RFC 7638 §3.2), and its thumbprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofKey {
    /// The JWS algorithm.
    pub algorithm: SigningAlgorithm,
    /// The public JWK, required members only, in lexicographic order.
    pub jwk: Value,
    /// The JWK SHA-256 thumbprint (RFC 7638 §3), base64url.
    pub thumbprint: String,
}

impl ProofKey {
    /// The key of `algorithm` described by the JWK text `jwk`.
    ///
    /// Errors (`signing`): `denied` for a JWK holding private members (it is never sent);
    /// `unsupported` for a JWK that is not JSON, lacks a required member, or whose key type
    /// or curve does not fit `algorithm`.
    pub fn new(algorithm: SigningAlgorithm, jwk: &str) -> Result<Self, Error> {
        let unsupported = |reason: &str| {
            Error::Signing(SigningError::Unsupported(format!(
                "the DPoP public key: {reason}"
            )))
        };
        let Ok(Value::Object(members)) = serde_json::from_slice::<Value>(jwk.as_bytes()) else {
            return Err(unsupported("not a JSON object"));
        };
        if PRIVATE_MEMBERS
            .iter()
            .any(|name| members.contains_key(*name))
        {
            return Err(Error::Signing(SigningError::Denied(
                "the DPoP public key holds private key members; it is never sent".into(),
            )));
        }
        let text = |name: &str| members.get(name).and_then(Value::as_str);
        let (kty, curve, required): (&str, Option<&str>, &[&str]) = match algorithm {
            SigningAlgorithm::Es256 => ("EC", Some("P-256"), &["crv", "kty", "x", "y"]),
            SigningAlgorithm::Es384 => ("EC", Some("P-384"), &["crv", "kty", "x", "y"]),
            SigningAlgorithm::EdDsa => ("OKP", Some("Ed25519"), &["crv", "kty", "x"]),
            SigningAlgorithm::Rs256 | SigningAlgorithm::Ps256 => ("RSA", None, &["e", "kty", "n"]),
        };
        if text("kty") != Some(kty) || curve.is_some_and(|crv| text("crv") != Some(crv)) {
            return Err(unsupported(&format!(
                "{} needs a {kty}{} key",
                algorithm.as_str(),
                curve.map(|crv| format!(" {crv}")).unwrap_or_default()
            )));
        }
        // RFC 7638 §3.2-3.3: the required members only, in lexicographic order, no spaces
        // (serde_json's map is ordered by name).
        let mut canonical = Map::new();
        for name in required {
            let value = text(name)
                .filter(|value| !value.is_empty())
                .ok_or_else(|| unsupported(&format!("no `{name}`")))?;
            canonical.insert((*name).to_owned(), Value::from(value));
        }
        let jwk = Value::Object(canonical);
        let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(jwk.to_string().as_bytes()));
        Ok(Self {
            algorithm,
            jwk,
            thumbprint,
        })
    }
}

/// Builds the proofs of one call with the host's DPoP key.
pub struct Prover<'a> {
    key: ProofKey,
    client_id: &'a str,
    auth: &'a AuthContext<'a>,
}

impl<'a> Prover<'a> {
    /// The prover for `config`'s DPoP key, asked of the host's signer; `None` when the
    /// connection is not DPoP-bound and `bound_to` is none.
    ///
    /// `bound_to` is the thumbprint existing tokens are bound to: a key with another is
    /// refused (`signing(denied)`), as is one whose algorithm the server does not list in
    /// `dpop-algorithms`.
    pub fn for_connection(
        config: &'a ConnectionConfig,
        bound_to: Option<&str>,
        auth: &'a AuthContext<'a>,
    ) -> Result<Option<Self>, Error> {
        if !config.dpop && bound_to.is_none() {
            return Ok(None);
        }
        let client_id = config.client.client_id.as_str();
        let key = auth
            .signer
            .key(KeyPurpose::DpopProof, client_id)
            .map_err(Error::Signing)?;
        let algorithms = &config.profile.dpop_algorithms;
        if !algorithms.is_empty() && !algorithms.contains(&key.algorithm) {
            return Err(Error::Signing(SigningError::Unsupported(format!(
                "the server takes DPoP proofs signed with {}, not {}",
                algorithms
                    .iter()
                    .map(|algorithm| algorithm.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                key.algorithm.as_str()
            ))));
        }
        let jwk = key.public_jwk.as_deref().ok_or_else(|| {
            Error::Signing(SigningError::Unsupported(
                "the host's DPoP key has no public JWK".into(),
            ))
        })?;
        let key = ProofKey::new(key.algorithm, jwk)?;
        if let Some(bound_to) = bound_to
            && bound_to != key.thumbprint
        {
            return Err(Error::Signing(SigningError::Denied(
                "the host's DPoP key is not the one the tokens are bound to".into(),
            )));
        }
        Ok(Some(Self {
            key,
            client_id,
            auth,
        }))
    }

    /// The key's thumbprint (RFC 7638), for `dpop_jkt` and the token set.
    pub fn thumbprint(&self) -> &str {
        &self.key.thumbprint
    }

    /// A proof for `method` on `url` (RFC 9449 §4.2): `htu` is the URL without query and
    /// fragment; `nonce` when the server gave one; `ath`, the access token's SHA-256
    /// (base64url), for resource requests.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> Result<String, Error> {
        let header = serde_json::json!({
            "typ": PROOF_TYPE,
            "alg": self.key.algorithm.as_str(),
            "jwk": self.key.jwk,
        });
        let mut claims = serde_json::json!({
            "jti": jti(self.auth)?,
            "htm": method,
            "htu": target_uri(url),
            "iat": self.auth.now,
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        if let Some(token) = access_token {
            claims["ath"] = URL_SAFE_NO_PAD
                .encode(Sha256::digest(token.as_bytes()))
                .into();
        }
        sign_jwt(
            self.auth.signer,
            KeyPurpose::DpopProof,
            self.client_id,
            self.key.algorithm,
            &header,
            &claims,
        )
    }
}

/// `tokens` marked as bound to the key of `thumbprint` when the server issued DPoP tokens
/// (`token_type` `DPoP`, RFC 9449 §5); a server that answered with bearer tokens did not
/// bind them, and they are left unmarked.
pub fn bind(mut tokens: TokenSet, thumbprint: Option<&str>) -> TokenSet {
    if tokens.token_type == "dpop" {
        tokens.dpop_key_thumbprint = thumbprint.map(str::to_owned);
    }
    tokens
}

/// The `htu` of `url`: without query and fragment (RFC 9449 §4.2). `url` was built or checked
/// by the connector, so it is absolute; what follows the first `?` or `#` is dropped.
pub fn target_uri(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

/// The origin of `url` (scheme, host and port), the key nonces are remembered under.
fn origin(url: &str) -> Option<String> {
    crate::endpoint::parse_url(url).map(|url| url.origin().ascii_serialization())
}

/// The nonces servers handed out, by origin (RFC 9449 §8.2, §9: a server may change its
/// nonce on any response). A cache: losing it costs one retry.
#[derive(Clone, Debug, Default)]
pub struct Nonces(Vec<(String, String)>);

impl Nonces {
    /// The nonce last seen from `url`'s origin.
    pub fn get(&self, url: &str) -> Option<&str> {
        let origin = origin(url)?;
        self.0
            .iter()
            .find(|(known, _)| *known == origin)
            .map(|(_, nonce)| nonce.as_str())
    }

    /// Remembers `nonce` for `url`'s origin, replacing the one before.
    pub fn set(&mut self, url: &str, nonce: &str) {
        let Some(origin) = origin(url) else { return };
        self.0.retain(|(known, _)| *known != origin);
        if self.0.len() >= MAX_REMEMBERED_NONCES {
            self.0.remove(0);
        }
        self.0.push((origin, nonce.to_owned()));
    }
}

/// The `DPoP-Nonce` header of `response`, when it is a usable nonce (§8.1: `nqchar`s,
/// visible ASCII without `"` and `\`).
fn nonce_header(response: &HttpResponse) -> Option<&str> {
    let nonce = response.header("dpop-nonce")?.trim();
    let usable = !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_BYTES
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\');
    usable.then_some(nonce)
}

/// The nonce a response asks the next proof to carry: a token endpoint's `use_dpop_nonce`
/// error (400 or 401, RFC 9449 §8), or a resource server's 401 with
/// `WWW-Authenticate: DPoP error="use_dpop_nonce"` (§9), each with a `DPoP-Nonce`.
pub fn nonce_challenge(response: &HttpResponse) -> Option<&str> {
    if response.status != 400 && response.status != 401 {
        return None;
    }
    let nonce = nonce_header(response)?;
    let in_body = || {
        parse_fields(response)
            .and_then(|fields| {
                fields
                    .get("error")?
                    .as_str()
                    .map(|code| code == "use_dpop_nonce")
            })
            .unwrap_or(false)
    };
    // A DPoP challenge may follow others in one header (`Bearer ..., DPoP error=...`): a
    // scheme starts the value or follows a comma. Bytes: a scheme need not end on a
    // character boundary of hostile text.
    let starts_dpop = |at: usize, bytes: &[u8]| {
        bytes.get(at..at + 5).is_some_and(|scheme| {
            scheme[..4].eq_ignore_ascii_case(b"dpop") && matches!(scheme[4], b' ' | b'\t')
        })
    };
    let in_header = || {
        response.headers.iter().any(|header| {
            let bytes = header.value.as_bytes();
            let dpop = (0..bytes.len()).any(|at| {
                let before = bytes[..at].iter().rev().find(|b| !b.is_ascii_whitespace());
                matches!(before, None | Some(b',')) && starts_dpop(at, bytes)
            });
            header.name.eq_ignore_ascii_case("www-authenticate")
                && dpop
                && header.value.contains("use_dpop_nonce")
        })
    };
    (in_header() || in_body()).then_some(nonce)
}

/// Sends the request `build` makes, with a proof when `prover` is given, and answers one
/// nonce challenge: `build` is called again (a client assertion needs a fresh `jti` too) and
/// the retry's proof carries the nonce. Every `DPoP-Nonce` a response carries is remembered
/// in `nonces` for the next proof to that origin. `access_token`, for resource requests,
/// becomes the proofs' `ath`.
pub fn exchange(
    build: &mut dyn FnMut() -> Result<HttpRequest, Error>,
    prover: Option<&Prover<'_>>,
    nonces: &mut Nonces,
    access_token: Option<&str>,
    send: &mut dyn FnMut(HttpRequest) -> Result<HttpResponse, Error>,
) -> Result<HttpResponse, Error> {
    let Some(prover) = prover else {
        return send(build()?);
    };
    let mut nonce = None;
    for attempt in 0..2 {
        let mut request = build()?;
        let remembered = nonce
            .clone()
            .or_else(|| nonces.get(&request.url).map(str::to_owned));
        let proof = prover.proof(
            request.method.as_str(),
            &request.url,
            remembered.as_deref(),
            access_token,
        )?;
        request
            .headers
            .retain(|header| !header.name.eq_ignore_ascii_case("dpop"));
        request.headers.push(KeyValue::new("DPoP", proof));
        let url = request.url.clone();
        let response = send(request)?;
        if let Some(fresh) = nonce_header(&response) {
            nonces.set(&url, fresh);
        }
        match nonce_challenge(&response) {
            Some(challenge) if attempt == 0 && Some(challenge) != remembered.as_deref() => {
                nonce = Some(challenge.to_owned());
            }
            _ => return Ok(response),
        }
    }
    unreachable!("the second attempt always returns")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client_auth::{Signer, SigningKey};
    use crate::http::Method;
    use core::cell::RefCell;

    /// RFC 7638 §3.1: the example RSA key and its thumbprint.
    const RFC7638_JWK: &str = r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#;
    /// An EC P-256 public key (RFC 7515 Appendix A.3).
    const EC_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
    const NOW: u64 = 1_700_000_000;

    #[test]
    fn the_thumbprint_is_rfc_7638s() {
        let key = ProofKey::new(SigningAlgorithm::Rs256, RFC7638_JWK).unwrap();
        assert_eq!(
            key.thumbprint,
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        // Only the required members are kept (no `alg`, no `kid`).
        assert_eq!(
            key.jwk.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["e", "kty", "n"]
        );
    }

    #[test]
    fn keys_that_do_not_fit_are_refused() {
        let private = r#"{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"secret-d"}"#;
        let refused = ProofKey::new(SigningAlgorithm::Es256, private).unwrap_err();
        assert_eq!(
            refused,
            Error::Signing(SigningError::Denied(
                "the DPoP public key holds private key members; it is never sent".into()
            ))
        );
        assert!(!format!("{refused:?}").contains("secret-d"));
        for (algorithm, jwk, reason) in [
            (
                SigningAlgorithm::Es384,
                EC_JWK,
                "ES384 needs a EC P-384 key",
            ),
            (
                SigningAlgorithm::EdDsa,
                EC_JWK,
                "EdDSA needs a OKP Ed25519 key",
            ),
            (
                SigningAlgorithm::Es256,
                RFC7638_JWK,
                "ES256 needs a EC P-256 key",
            ),
            (
                SigningAlgorithm::Es256,
                r#"{"kty":"EC","crv":"P-256","x":"a"}"#,
                "no `y`",
            ),
            (SigningAlgorithm::Es256, "[1]", "not a JSON object"),
        ] {
            assert_eq!(
                ProofKey::new(algorithm, jwk),
                Err(Error::Signing(SigningError::Unsupported(format!(
                    "the DPoP public key: {reason}"
                )))),
                "{reason}"
            );
        }
    }

    /// A signer with a fixed EC key whose signatures are 64 bytes of 7, recording inputs.
    struct FixedSigner {
        jwk: &'static str,
        signed: RefCell<Vec<(KeyPurpose, String)>>,
    }

    impl FixedSigner {
        fn ec() -> Self {
            Self {
                jwk: EC_JWK,
                signed: RefCell::new(vec![]),
            }
        }

        /// A context at [`NOW`] whose every `jti` is 16 bytes of 1.
        fn auth(&self) -> AuthContext<'_> {
            AuthContext {
                now: NOW,
                random: &|| Some([1; 16]),
                signer: self,
            }
        }
    }

    impl Signer for FixedSigner {
        fn key(&self, purpose: KeyPurpose, _: &str) -> Result<SigningKey, SigningError> {
            assert_eq!(purpose, KeyPurpose::DpopProof);
            Ok(SigningKey {
                algorithm: SigningAlgorithm::Es256,
                key_id: Some("ignored".into()),
                public_jwk: Some(self.jwk.into()),
            })
        }

        fn sign(
            &self,
            purpose: KeyPurpose,
            _: &str,
            input: &[u8],
        ) -> Result<Vec<u8>, SigningError> {
            self.signed
                .borrow_mut()
                .push((purpose, String::from_utf8(input.to_vec()).unwrap()));
            Ok(vec![7; 64])
        }
    }

    fn config(dpop: bool) -> ConnectionConfig {
        use crate::profile::{Client, ProviderProfile};
        ConnectionConfig {
            profile: ProviderProfile::from_json(r#"{"token-url": "https://as.example.com/token"}"#)
                .unwrap(),
            client: Client {
                client_id: "c".into(),
                client_secret: None,
                auth_method: None,
            },
            redirect_uri: None,
            scopes: vec![],
            authorize_params: vec![],
            token_requests: Default::default(),
            variables: vec![],
            offline_access: false,
            resources: vec![],
            dpop,
        }
    }

    fn decode(part: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    fn proof_parts(proof: &str) -> (Value, Value) {
        let parts: Vec<&str> = proof.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], URL_SAFE_NO_PAD.encode([7; 64]));
        (decode(parts[0]), decode(parts[1]))
    }

    #[test]
    fn a_proof_has_exactly_the_rfcs_header_and_claims() {
        let signer = FixedSigner::ec();
        let auth = signer.auth();
        let config = config(true);
        let prover = Prover::for_connection(&config, None, &auth)
            .unwrap()
            .unwrap();
        let proof = prover
            .proof(
                "GET",
                "https://api.example.com/v1/me?fields=a#frag",
                Some("n-1"),
                Some("token-abc"),
            )
            .unwrap();
        let (header, claims) = proof_parts(&proof);
        assert_eq!(
            header,
            serde_json::json!({
                "typ": "dpop+jwt",
                "alg": "ES256",
                "jwk": serde_json::from_str::<Value>(EC_JWK).unwrap(),
            })
        );
        assert_eq!(
            claims,
            serde_json::json!({
                "jti": URL_SAFE_NO_PAD.encode([1; 16]),
                "htm": "GET",
                "htu": "https://api.example.com/v1/me",
                "iat": NOW,
                "nonce": "n-1",
                "ath": URL_SAFE_NO_PAD.encode(Sha256::digest(b"token-abc")),
            })
        );
        let signed = signer.signed.borrow();
        assert_eq!(signed[0].0, KeyPurpose::DpopProof);
        assert_eq!(proof.rsplit_once('.').unwrap().0, signed[0].1);
    }

    #[test]
    fn a_key_that_is_not_the_tokens_is_refused_before_anything_is_sent() {
        let signer = FixedSigner::ec();
        let auth = signer.auth();
        let config = config(false);
        assert!(
            Prover::for_connection(&config, None, &auth)
                .unwrap()
                .is_none()
        );
        let refused = Prover::for_connection(&config, Some("another"), &auth).err();
        assert_eq!(
            refused,
            Some(Error::Signing(SigningError::Denied(
                "the host's DPoP key is not the one the tokens are bound to".into()
            )))
        );
        let mut config = self::config(true);
        config.profile.dpop_algorithms = vec![SigningAlgorithm::EdDsa];
        assert_eq!(
            Prover::for_connection(&config, None, &auth).err(),
            Some(Error::Signing(SigningError::Unsupported(
                "the server takes DPoP proofs signed with EdDSA, not ES256".into()
            )))
        );
        assert!(signer.signed.borrow().is_empty());
    }

    #[test]
    fn challenges_are_read_from_token_errors_and_www_authenticate() {
        let token = HttpResponse::test(
            400,
            &[("DPoP-Nonce", "eyJ7S_zG.eyJH0-Z.HX4w-7v")],
            r#"{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}"#,
        );
        assert_eq!(nonce_challenge(&token), Some("eyJ7S_zG.eyJH0-Z.HX4w-7v"));
        let resource = HttpResponse::test(
            401,
            &[
                (
                    "WWW-Authenticate",
                    r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#,
                ),
                ("DPoP-Nonce", "n-2"),
            ],
            "",
        );
        assert_eq!(nonce_challenge(&resource), Some("n-2"));
        let second = HttpResponse::test(
            401,
            &[
                (
                    "WWW-Authenticate",
                    r#"Bearer realm="api", DPoP error="use_dpop_nonce", algs="ES256""#,
                ),
                ("DPoP-Nonce", "n-3"),
            ],
            "",
        );
        assert_eq!(nonce_challenge(&second), Some("n-3"));
        // The scheme is a whole token: `DPoPr` is another scheme; a tab may follow `DPoP`.
        let other_scheme = HttpResponse::test(
            401,
            &[
                ("WWW-Authenticate", r#"DPoPr error="use_dpop_nonce""#),
                ("DPoP-Nonce", "n-4"),
            ],
            "",
        );
        assert_eq!(nonce_challenge(&other_scheme), None);
        let tab = HttpResponse::test(
            401,
            &[
                ("WWW-Authenticate", "DPoP\terror=\"use_dpop_nonce\""),
                ("DPoP-Nonce", "n-5"),
            ],
            "",
        );
        assert_eq!(nonce_challenge(&tab), Some("n-5"));
        for not_one in [
            HttpResponse::test(400, &[], r#"{"error":"use_dpop_nonce"}"#),
            HttpResponse::test(400, &[("DPoP-Nonce", "n")], r#"{"error":"invalid_grant"}"#),
            HttpResponse::test(
                401,
                &[("DPoP-Nonce", "n"), ("WWW-Authenticate", "Bearer")],
                "",
            ),
            HttpResponse::test(500, &[("DPoP-Nonce", "n")], r#"{"error":"use_dpop_nonce"}"#),
            HttpResponse::test(
                400,
                &[("DPoP-Nonce", "with space")],
                r#"{"error":"use_dpop_nonce"}"#,
            ),
            // Caught by the fuzz target `resource`: a scheme whose fourth byte ends inside a
            // character panicked.
            HttpResponse::test(
                401,
                &[
                    ("DPoP-Nonce", "n"),
                    ("WWW-Authenticate", "abc\u{e9} use_dpop_nonce"),
                ],
                "",
            ),
        ] {
            assert_eq!(nonce_challenge(&not_one), None, "{not_one:?}");
        }
    }

    #[test]
    fn a_nonce_challenge_is_answered_once_and_nonces_are_remembered_per_origin() {
        let signer = FixedSigner::ec();
        let auth = signer.auth();
        let config = config(true);
        let prover = Prover::for_connection(&config, None, &auth)
            .unwrap()
            .unwrap();
        let mut nonces = Nonces::default();
        let built = core::cell::Cell::new(0);
        let mut build = || {
            built.set(built.get() + 1);
            Ok(HttpRequest {
                method: Method::Post,
                url: "https://as.example.com/token?x=1".into(),
                headers: vec![KeyValue::new("DPoP", "stale")],
                body: vec![],
            })
        };
        // Challenged twice: one retry, then the second challenge is the answer.
        let mut sent: Vec<HttpRequest> = vec![];
        let challenge = |nonce: &str| {
            HttpResponse::test(
                400,
                &[("DPoP-Nonce", nonce)],
                r#"{"error":"use_dpop_nonce"}"#,
            )
        };
        let answer = exchange(
            &mut build,
            Some(&prover),
            &mut nonces,
            None,
            &mut |request| {
                sent.push(request);
                Ok(challenge(if sent.len() == 1 { "n-1" } else { "n-2" }))
            },
        )
        .unwrap();
        assert_eq!(answer.status, 400);
        assert_eq!(built.get(), 2);
        assert_eq!(sent.len(), 2);
        let nonce_of = |request: &HttpRequest| {
            let proofs: Vec<&KeyValue> = request
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("dpop"))
                .collect();
            assert_eq!(proofs.len(), 1, "one proof, the stale header replaced");
            let (_, claims) = proof_parts(&proofs[0].value);
            assert_eq!(claims["htu"], "https://as.example.com/token");
            claims.get("nonce").cloned()
        };
        assert_eq!(nonce_of(&sent[0]), None);
        assert_eq!(nonce_of(&sent[1]), Some(Value::from("n-1")));
        // The last nonce seen is remembered for the origin, and used at once next time.
        assert_eq!(nonces.get("https://as.example.com/other"), Some("n-2"));
        assert_eq!(nonces.get("https://api.example.com/"), None);
        let mut sent: Vec<HttpRequest> = vec![];
        let answer = exchange(
            &mut build,
            Some(&prover),
            &mut nonces,
            None,
            &mut |request| {
                sent.push(request);
                Ok(HttpResponse::test(200, &[], r#"{"access_token":"a"}"#))
            },
        )
        .unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(sent.len(), 1);
        assert_eq!(nonce_of(&sent[0]), Some(Value::from("n-2")));
    }

    #[test]
    fn without_a_prover_the_request_is_sent_once_as_built() {
        let mut nonces = Nonces::default();
        let request = HttpRequest {
            method: Method::Get,
            url: "https://api.example.com/x".into(),
            headers: vec![],
            body: vec![],
        };
        let mut sent = vec![];
        let answer = exchange(
            &mut || Ok(request.clone()),
            None,
            &mut nonces,
            Some("t"),
            &mut |request| {
                sent.push(request);
                Ok(HttpResponse::test(
                    401,
                    &[("DPoP-Nonce", "n")],
                    r#"{"error":"use_dpop_nonce"}"#,
                ))
            },
        )
        .unwrap();
        assert_eq!(answer.status, 401);
        assert_eq!(sent, [request]);
    }

    #[test]
    fn nonces_are_bounded_and_the_oldest_goes_first() {
        let mut nonces = Nonces::default();
        for i in 0..=MAX_REMEMBERED_NONCES {
            nonces.set(&format!("https://h{i}.example/"), &format!("n{i}"));
        }
        assert_eq!(nonces.get("https://h0.example/a"), None);
        assert_eq!(nonces.get("https://h1.example/a"), Some("n1"));
        assert_eq!(
            nonces.get(&format!("https://h{MAX_REMEMBERED_NONCES}.example/")),
            Some(format!("n{MAX_REMEMBERED_NONCES}").as_str())
        );
    }
}
