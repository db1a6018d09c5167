//! The signer behind the component's `signer` import: private keys stay in the host.
//!
//! The component builds a JWT's header and claims and asks the host to sign the JWS Signing
//! Input; the host answers with the signature bytes. A host may back [`Signer`] with a key
//! file ([`KeyFileSigner`]), an HSM or a cloud KMS.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::{self, PemObject};

use crate::bindings::oauth_connector::oauth2::signer::SigningKey;
use crate::types::{KeyPurpose, SigningAlgorithm, SigningError};

/// Signs on the component's behalf.
pub trait Signer: Send + Sync {
    /// The key used for `client_id`'s `purpose`: its algorithm and `kid`.
    fn key(&self, purpose: KeyPurpose, client_id: &str) -> Result<SigningKey, SigningError>;

    /// The JWS signature (RFC 7518 §3; ECDSA as fixed-size `R || S`) of `input`.
    fn sign(
        &self,
        purpose: KeyPurpose,
        client_id: &str,
        input: &[u8],
    ) -> Result<Vec<u8>, SigningError>;
}

/// Holds no key: every request is `no-key`. The default for instances.
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

impl<T: Signer + ?Sized> Signer for Arc<T> {
    fn key(&self, purpose: KeyPurpose, client_id: &str) -> Result<SigningKey, SigningError> {
        (**self).key(purpose, client_id)
    }

    fn sign(
        &self,
        purpose: KeyPurpose,
        client_id: &str,
        input: &[u8],
    ) -> Result<Vec<u8>, SigningError> {
        (**self).sign(purpose, client_id, input)
    }
}

/// The command that turns a SEC1 or an encrypted key into the unencrypted PKCS#8 this signer
/// reads (it asks for the passphrase of an encrypted key).
const TO_PKCS8: &str = "openssl pkcs8 -topk8 -nocrypt -in key.pem -out key.p8.pem";

/// Signs with one private key read from a PEM file: one file, one client.
///
/// The key's type decides the algorithm: RSA signs RS256 (RSASSA-PKCS1-v1_5 with SHA-256),
/// P-256 signs ES256, P-384 signs ES384 and Ed25519 signs EdDSA. The key is read from an
/// unencrypted PKCS#8 PEM (`BEGIN PRIVATE KEY`) or, for RSA, a PKCS#1 PEM
/// (`BEGIN RSA PRIVATE KEY`).
///
/// It answers `key` and `sign` for every client id: the host gives an instance the signer of
/// the one client it is configured for.
pub struct KeyFileSigner {
    key: PrivateKey,
    key_id: Option<String>,
    /// The file the key came from, for `Debug`; `None` when built from text.
    path: Option<PathBuf>,
    rng: SystemRandom,
}

/// A parsed private key, by algorithm.
enum PrivateKey {
    Rs256(RsaKeyPair),
    Es256(EcdsaKeyPair),
    Es384(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

impl KeyFileSigner {
    /// Reads the private key from the PEM file at `path`; `key_id` is its JWK `kid` as
    /// registered with the authorization server, if it has one.
    ///
    /// The file is read once. On Unix it must be accessible by its owner only, as ssh
    /// requires of its keys: a file with any group or other permission bit is refused with
    /// [`KeyFileError::Permissions`]. Otherwise fails as [`KeyFileSigner::from_pem`] does,
    /// with the error naming the file.
    pub fn from_pem_file(path: &Path, key_id: Option<String>) -> Result<Self, KeyFileError> {
        let io_error = |error| KeyFileError::Io(path.to_owned(), error);
        let mut file = File::open(path).map_err(io_error)?;
        // The mode of the file we opened, not of whatever the path names by now.
        refuse_shared(path, &file)?;
        let mut pem = Vec::new();
        file.read_to_end(&mut pem).map_err(io_error)?;
        let mut signer = Self::parse(&pem, key_id).map_err(|error| error.in_file(path))?;
        signer.path = Some(path.to_owned());
        Ok(signer)
    }

    /// Reads the private key from PEM `text`; `key_id` is its JWK `kid`, if it has one.
    ///
    /// Errors: [`KeyFileError::NotPem`] when `text` is not PEM;
    /// [`KeyFileError::NoPrivateKey`] when it holds no private key (say, only a
    /// certificate); [`KeyFileError::MultipleKeys`] when it holds more than one;
    /// [`KeyFileError::Encrypted`] and [`KeyFileError::Sec1`] for keys to convert first;
    /// [`KeyFileError::Unsupported`] for a key of another type (P-521, Ed448, a small RSA
    /// key...).
    pub fn from_pem(text: &str, key_id: Option<String>) -> Result<Self, KeyFileError> {
        Self::parse(text.as_bytes(), key_id)
    }

    /// The algorithm this signer signs with, decided by the key's type.
    pub fn algorithm(&self) -> SigningAlgorithm {
        match self.key {
            PrivateKey::Rs256(_) => SigningAlgorithm::Rs256,
            PrivateKey::Es256(_) => SigningAlgorithm::Es256,
            PrivateKey::Es384(_) => SigningAlgorithm::Es384,
            PrivateKey::EdDsa(_) => SigningAlgorithm::Eddsa,
        }
    }

    /// The key's JWK `kid`, if it was given one.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// The public key, in the form `ring::signature::UnparsedPublicKey` verifies with: for
    /// RSA the DER `RSAPublicKey` (PKCS#1), for ECDSA the uncompressed point
    /// (`0x04 || X || Y`), for Ed25519 the 32 raw bytes.
    pub fn public_key(&self) -> &[u8] {
        match &self.key {
            PrivateKey::Rs256(pair) => pair.public_key().as_ref(),
            PrivateKey::Es256(pair) | PrivateKey::Es384(pair) => pair.public_key().as_ref(),
            PrivateKey::EdDsa(pair) => pair.public_key().as_ref(),
        }
    }

    /// The public key as a JSON Web Key (RFC 7517 §4) with only its public members, in
    /// lexicographic order: EC `{"crv","kty":"EC","x","y"}` (RFC 7518 §6.2.1), Ed25519
    /// `{"crv":"Ed25519","kty":"OKP","x"}` (RFC 8037 §2), RSA `{"e","kty":"RSA","n"}` (RFC
    /// 7518 §6.3.1); coordinates and integers base64url without padding. What a DPoP proof's
    /// header carries (RFC 9449 §4.2).
    pub fn public_jwk(&self) -> String {
        use base64::Engine as _;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let jwk = match &self.key {
            PrivateKey::Es256(pair) | PrivateKey::Es384(pair) => {
                // The uncompressed point: 0x04 || X || Y, each coordinate the curve's size.
                let point = &pair.public_key().as_ref()[1..];
                let (x, y) = point.split_at(point.len() / 2);
                let crv = match self.key {
                    PrivateKey::Es384(_) => "P-384",
                    _ => "P-256",
                };
                serde_json::json!({"crv": crv, "kty": "EC", "x": b64(x), "y": b64(y)})
            }
            PrivateKey::EdDsa(pair) => serde_json::json!({
                "crv": "Ed25519",
                "kty": "OKP",
                "x": b64(pair.public_key().as_ref()),
            }),
            PrivateKey::Rs256(pair) => {
                let components = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public());
                serde_json::json!({
                    "e": b64(&components.e),
                    "kty": "RSA",
                    "n": b64(&components.n),
                })
            }
        };
        jwk.to_string()
    }

    /// The JWK SHA-256 thumbprint (RFC 7638) of this key, base64url: what DPoP-bound tokens
    /// name (`cnf.jkt`, RFC 9449 §6) and `show` prints.
    pub fn thumbprint(&self) -> String {
        jwk_thumbprint(&self.public_jwk()).unwrap_or_default()
    }

    /// Parses the one private key in `pem`; errors name no file.
    fn parse(pem: &[u8], key_id: Option<String>) -> Result<Self, KeyFileError> {
        // Both encrypted forms are refused before parsing: the PEM parser would skip a
        // PKCS#8 `ENCRYPTED PRIVATE KEY` section and fail on the legacy headers.
        if contains(pem, b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
            || contains(pem, b"Proc-Type: 4,ENCRYPTED")
        {
            return Err(KeyFileError::Encrypted { path: None });
        }
        let mut keys = PrivateKeyDer::pem_slice_iter(pem);
        let key = match keys.next() {
            Some(Ok(key)) => key,
            Some(Err(error)) => {
                return Err(KeyFileError::NotPem {
                    path: None,
                    reason: pem_problem(&error),
                });
            }
            None if contains(pem, b"-----BEGIN ") => {
                return Err(KeyFileError::NoPrivateKey { path: None });
            }
            None => {
                return Err(KeyFileError::NotPem {
                    path: None,
                    reason: "it has no `-----BEGIN` line",
                });
            }
        };
        // One file, one key: never pick one of several silently.
        if keys.next().is_some() {
            return Err(KeyFileError::MultipleKeys { path: None });
        }
        let rng = SystemRandom::new();
        let key = match &key {
            PrivateKeyDer::Pkcs8(der) => parse_pkcs8(der.secret_pkcs8_der(), &rng)?,
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der())
                .map(PrivateKey::Rs256)
                .map_err(|rejected| KeyFileError::Unsupported {
                    path: None,
                    reason: format!("ring rejected the PKCS#1 RSA key ({rejected})"),
                })?,
            PrivateKeyDer::Sec1(_) => return Err(KeyFileError::Sec1 { path: None }),
            _ => {
                return Err(KeyFileError::Unsupported {
                    path: None,
                    reason: "the private key's PEM format is unknown".to_owned(),
                });
            }
        };
        Ok(Self {
            key,
            key_id,
            path: None,
            rng,
        })
    }

    /// The JWS signature of `input`.
    fn sign_input(&self, input: &[u8]) -> Result<Vec<u8>, ring::error::Unspecified> {
        match &self.key {
            PrivateKey::Rs256(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    input,
                    &mut signature,
                )?;
                Ok(signature)
            }
            // The `_FIXED_SIGNING` algorithms give JWS's fixed-size `R || S`.
            PrivateKey::Es256(pair) | PrivateKey::Es384(pair) => {
                Ok(pair.sign(&self.rng, input)?.as_ref().to_vec())
            }
            PrivateKey::EdDsa(pair) => Ok(pair.sign(input).as_ref().to_vec()),
        }
    }
}

/// Tries each PKCS#8 parser in turn: the first that accepts the key decides the algorithm.
fn parse_pkcs8(der: &[u8], rng: &SystemRandom) -> Result<PrivateKey, KeyFileError> {
    let attempts = [
        ("RSA", RsaKeyPair::from_pkcs8(der).map(PrivateKey::Rs256)),
        (
            "P-256",
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, rng)
                .map(PrivateKey::Es256),
        ),
        (
            "P-384",
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, der, rng)
                .map(PrivateKey::Es384),
        ),
        // OpenSSL writes Ed25519 keys as PKCS#8 v1, without the public key.
        (
            "Ed25519",
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map(PrivateKey::EdDsa),
        ),
    ];
    // ring says why only in `KeyRejected`'s text: "WrongAlgorithm" means "not this parser's
    // key type"; anything else means the parser took it for its type and rejected it.
    let mut rejections = Vec::new();
    for (key_type, attempt) in attempts {
        match attempt {
            Ok(key) => return Ok(key),
            Err(rejected) if rejected.to_string() == "WrongAlgorithm" => {}
            Err(rejected) => rejections.push((key_type, rejected)),
        }
    }
    let reason = match rejections.as_slice() {
        [] => "its key type is not supported (P-521, Ed448, X25519, RSA-PSS and DSA keys are \
               not)"
            .to_owned(),
        [(key_type, rejected)] => format!("ring rejected the {key_type} key ({rejected})"),
        // Every parser failed the same way: the PKCS#8 wrapper itself is broken.
        [(_, rejected), ..] => format!("ring could not parse the PKCS#8 structure ({rejected})"),
    };
    Err(KeyFileError::Unsupported { path: None, reason })
}

/// Why a PEM parse failed, without the offending bytes (they may be key material).
fn pem_problem(error: &pem::Error) -> &'static str {
    match error {
        pem::Error::MissingSectionEnd { .. } => "a section has no `-----END` line",
        pem::Error::IllegalSectionStart { .. } => "a `-----BEGIN` line is malformed",
        pem::Error::Base64Decode(_) => "a section's body is not valid base64",
        pem::Error::SectionTooLarge => "a section is larger than 256 MB",
        _ => "it could not be parsed",
    }
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Refuses a key file that group or others can access (any of the mode's `0o077` bits).
#[cfg(unix)]
fn refuse_shared(path: &Path, file: &File) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file
        .metadata()
        .map_err(|error| KeyFileError::Io(path.to_owned(), error))?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions(path.to_owned(), mode));
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_shared(_path: &Path, _file: &File) -> Result<(), KeyFileError> {
    Ok(())
}

impl Signer for KeyFileSigner {
    /// The same key for every purpose and client: which key serves which purpose is the
    /// host's choice ([`PurposeSigner`] routes purposes to keys).
    fn key(&self, _purpose: KeyPurpose, _client_id: &str) -> Result<SigningKey, SigningError> {
        Ok(SigningKey {
            algorithm: self.algorithm(),
            key_id: self.key_id.clone(),
            public_jwk: Some(self.public_jwk()),
        })
    }

    fn sign(
        &self,
        _purpose: KeyPurpose,
        _client_id: &str,
        input: &[u8],
    ) -> Result<Vec<u8>, SigningError> {
        self.sign_input(input).map_err(|_| {
            SigningError::Failed(format!(
                "the {} key file could not sign",
                jws_name(self.algorithm())
            ))
        })
    }
}

/// Routes each [`KeyPurpose`] to its own key: a connection's client-assertion key
/// (`private_key_jwt`), its DPoP key (RFC 9449) and its grant assertion key (RFC 7523
/// §2.1) are different keys. A purpose without a key answers `no-key`.
#[derive(Default)]
pub struct PurposeSigner {
    /// Signs `private_key_jwt` client assertions.
    pub client_assertion: Option<Arc<dyn Signer>>,
    /// Signs DPoP proofs: the key the connection's tokens are bound to.
    pub dpop_proof: Option<Arc<dyn Signer>>,
    /// Signs JWT bearer grant assertions.
    pub authorization_grant: Option<Arc<dyn Signer>>,
}

impl PurposeSigner {
    fn route(&self, purpose: KeyPurpose) -> Result<&dyn Signer, SigningError> {
        let key = match purpose {
            KeyPurpose::ClientAssertion => &self.client_assertion,
            KeyPurpose::DpopProof => &self.dpop_proof,
            KeyPurpose::AuthorizationGrant => &self.authorization_grant,
        };
        key.as_deref().ok_or(SigningError::NoKey)
    }

    /// Whether no purpose has a key.
    pub fn is_empty(&self) -> bool {
        self.client_assertion.is_none()
            && self.dpop_proof.is_none()
            && self.authorization_grant.is_none()
    }
}

impl Signer for PurposeSigner {
    fn key(&self, purpose: KeyPurpose, client_id: &str) -> Result<SigningKey, SigningError> {
        self.route(purpose)?.key(purpose, client_id)
    }

    fn sign(
        &self,
        purpose: KeyPurpose,
        client_id: &str,
        input: &[u8],
    ) -> Result<Vec<u8>, SigningError> {
        self.route(purpose)?.sign(purpose, client_id, input)
    }
}

/// Says which purposes have a key; never a key.
impl fmt::Debug for PurposeSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PurposeSigner")
            .field("client_assertion", &self.client_assertion.is_some())
            .field("dpop_proof", &self.dpop_proof.is_some())
            .field("authorization_grant", &self.authorization_grant.is_some())
            .finish()
    }
}

/// A fresh ES256 (P-256) key pair for a DPoP-bound connection (RFC 9449), as PKCS#8 PEM:
/// what the store keeps (sealed) and [`KeyFileSigner::from_pem`] reads.
pub fn generate_dpop_key() -> Result<String, SigningError> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| SigningError::Failed("the system's random source failed".to_owned()))?;
    Ok(pem_text("PRIVATE KEY", pkcs8.as_ref()))
}

/// `der` as a PEM section labelled `label`, 64 base64 characters a line.
fn pem_text(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).unwrap_or_default());
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// The JWK SHA-256 thumbprint (RFC 7638) of a public JWK as [`KeyFileSigner::public_jwk`]
/// writes it, base64url without padding: the required members, in lexicographic order,
/// with no whitespace. `None` for JSON that is not such a JWK.
pub fn jwk_thumbprint(public_jwk: &str) -> Option<String> {
    use base64::Engine as _;
    let jwk: serde_json::Map<String, serde_json::Value> = serde_json::from_str(public_jwk).ok()?;
    let kty = jwk.get("kty")?.as_str()?;
    let members: &[&str] = match kty {
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        "RSA" => &["e", "kty", "n"],
        _ => return None,
    };
    let mut canonical = serde_json::Map::new();
    for member in members {
        canonical.insert((*member).to_owned(), jwk.get(*member)?.clone());
    }
    // serde_json's map is ordered by key: the members come out sorted.
    let text = serde_json::to_string(&serde_json::Value::Object(canonical)).ok()?;
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref()))
}

/// Prints the algorithm, `kid` and file; never the key.
impl fmt::Debug for KeyFileSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFileSigner")
            .field("algorithm", &jws_name(self.algorithm()))
            .field("key_id", &self.key_id)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The JWS `alg` name of `algorithm` (RFC 7518 §3.1, RFC 8037 §3.1).
pub fn jws_name(algorithm: SigningAlgorithm) -> &'static str {
    match algorithm {
        SigningAlgorithm::Rs256 => "RS256",
        SigningAlgorithm::Ps256 => "PS256",
        SigningAlgorithm::Es256 => "ES256",
        SigningAlgorithm::Es384 => "ES384",
        SigningAlgorithm::Eddsa => "EdDSA",
    }
}

/// Why a key file could not be loaded. Never carries key material.
///
/// `path` is the file, or `None` for a key given as text ([`KeyFileSigner::from_pem`]).
#[derive(Debug)]
pub enum KeyFileError {
    /// The file could not be opened, checked or read.
    Io(PathBuf, io::Error),
    /// The file is readable, writable or executable by group or others (its mode, shown in
    /// octal): fix with `chmod 600`.
    Permissions(PathBuf, u32),
    /// The text is not PEM. Carries what is wrong with it.
    NotPem {
        /// The key file.
        path: Option<PathBuf>,
        /// What is wrong, without the text's bytes.
        reason: &'static str,
    },
    /// The PEM holds no private key this signer reads: no `PRIVATE KEY`,
    /// `RSA PRIVATE KEY` or `EC PRIVATE KEY` section (only a certificate or a public key,
    /// say).
    NoPrivateKey {
        /// The key file.
        path: Option<PathBuf>,
    },
    /// The PEM holds more than one private key.
    MultipleKeys {
        /// The key file.
        path: Option<PathBuf>,
    },
    /// The key is encrypted (`ENCRYPTED PRIVATE KEY`, or a `Proc-Type: 4,ENCRYPTED`
    /// header): decrypt it to unencrypted PKCS#8 first.
    Encrypted {
        /// The key file.
        path: Option<PathBuf>,
    },
    /// The key is a SEC1 EC key (`EC PRIVATE KEY`): convert it to PKCS#8 first.
    Sec1 {
        /// The key file.
        path: Option<PathBuf>,
    },
    /// The key is of a type or size this signer does not sign with. Carries the reason.
    Unsupported {
        /// The key file.
        path: Option<PathBuf>,
        /// Which key type, or why ring rejected the key.
        reason: String,
    },
}

impl KeyFileError {
    /// This error, naming `file`.
    fn in_file(mut self, file: &Path) -> Self {
        match &mut self {
            Self::NotPem { path, .. }
            | Self::NoPrivateKey { path }
            | Self::MultipleKeys { path }
            | Self::Encrypted { path }
            | Self::Sec1 { path }
            | Self::Unsupported { path, .. } => *path = Some(file.to_owned()),
            Self::Io(..) | Self::Permissions(..) => {}
        }
        self
    }
}

/// `key file <path>`, or `the PEM text` when there is no file.
struct Subject<'a>(&'a Option<PathBuf>);

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(path) => write!(f, "key file {}", path.display()),
            None => f.write_str("the PEM text"),
        }
    }
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(path, error) => write!(f, "key file {}: {error}", path.display()),
            Self::Permissions(path, mode) => write!(
                f,
                "key file {} has mode {mode:04o}; a private key must be accessible by its \
                 owner only (chmod 600 {})",
                path.display(),
                path.display()
            ),
            Self::NotPem { path, reason } => {
                write!(f, "{} is not PEM: {reason}", Subject(path))
            }
            Self::NoPrivateKey { path } => write!(
                f,
                "{} holds no private key: expected `-----BEGIN PRIVATE KEY-----` (PKCS#8) or \
                 `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1)",
                Subject(path)
            ),
            Self::MultipleKeys { path } => write!(
                f,
                "{} holds more than one private key; keep only the one to sign with",
                Subject(path)
            ),
            Self::Encrypted { path } => write!(
                f,
                "{} is encrypted; decrypt it to unencrypted PKCS#8 with `{TO_PKCS8}` \
                 (it asks for the passphrase) and use key.p8.pem",
                Subject(path)
            ),
            Self::Sec1 { path } => write!(
                f,
                "{} is a SEC1 EC key (`BEGIN EC PRIVATE KEY`); convert it to PKCS#8 with \
                 `{TO_PKCS8}` and use key.p8.pem",
                Subject(path)
            ),
            Self::Unsupported { path, reason } => write!(
                f,
                "{} holds a key this signer cannot use: {reason}; it signs with RSA (2048, \
                 3072 or 4096 bits), P-256, P-384 and Ed25519 keys",
                Subject(path)
            ),
        }
    }
}

impl std::error::Error for KeyFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(_, error) => Some(error),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::process::Command;

    use base64::Engine as _;
    use ring::signature::{UnparsedPublicKey, VerificationAlgorithm};

    use super::*;

    /// A JWS Signing Input, as the component sends it.
    const INPUT: &[u8] = b"eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJjbGllbnQtMSJ9";

    /// `der` as a PEM section labelled `label`, 64 base64 characters a line.
    fn pem(label: &str, der: &[u8]) -> String {
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|line| std::str::from_utf8(line).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    /// The standard output of `openssl args`, or `None` (with a note) when there is no
    /// `openssl` binary.
    fn openssl(args: &[&str]) -> Option<String> {
        match Command::new("openssl").args(args).output() {
            Ok(output) => {
                assert!(output.status.success(), "openssl {args:?} failed");
                Some(String::from_utf8(output.stdout).unwrap())
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                eprintln!("note: no `openssl` binary; skipping the `openssl {args:?}` case");
                None
            }
            Err(error) => panic!("openssl {args:?}: {error}"),
        }
    }

    /// A fresh RSA key of `bits` as PKCS#8 PEM, from `openssl` (`None` without it).
    fn rsa_key(bits: u32) -> Option<String> {
        let bits = format!("rsa_keygen_bits:{bits}");
        openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", &bits])
    }

    /// Signs `INPUT` through the `Signer` trait and checks the signature's length and that
    /// it verifies with the signer's public key (and does not for another input).
    fn assert_signs(
        signer: &KeyFileSigner,
        verification: &'static dyn VerificationAlgorithm,
        length: usize,
    ) {
        let signed = signer
            .sign(KeyPurpose::ClientAssertion, "client-1", INPUT)
            .unwrap();
        assert_eq!(signed.len(), length);
        let public_key = UnparsedPublicKey::new(verification, signer.public_key());
        assert_eq!(public_key.verify(INPUT, &signed), Ok(()));
        assert!(public_key.verify(b"another input", &signed).is_err());
    }

    /// A fresh directory for this test process.
    fn temp_dir(label: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("connector-signer-{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Writes `text` to `dir/name` with exactly `mode`.
    #[cfg(unix)]
    fn write_key(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn p256_pem() -> String {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        pem("PRIVATE KEY", pkcs8.as_ref())
    }

    #[test]
    fn p256_key_signs_es256_with_a_64_byte_signature() {
        let signer = KeyFileSigner::from_pem(&p256_pem(), Some("kid-1".into())).unwrap();
        assert_eq!(signer.algorithm(), SigningAlgorithm::Es256);
        assert_eq!(signer.key_id(), Some("kid-1"));
        assert_signs(&signer, &signature::ECDSA_P256_SHA256_FIXED, 64);
    }

    #[test]
    fn p384_key_signs_es384_with_a_96_byte_signature() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
            .unwrap();
        let signer = KeyFileSigner::from_pem(&pem("PRIVATE KEY", pkcs8.as_ref()), None).unwrap();
        assert_eq!(signer.algorithm(), SigningAlgorithm::Es384);
        assert_signs(&signer, &signature::ECDSA_P384_SHA384_FIXED, 96);
    }

    #[test]
    fn ed25519_key_signs_eddsa_with_a_64_byte_signature() {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let signer = KeyFileSigner::from_pem(&pem("PRIVATE KEY", pkcs8.as_ref()), None).unwrap();
        assert_eq!(signer.algorithm(), SigningAlgorithm::Eddsa);
        assert_signs(&signer, &signature::ED25519, 64);
    }

    #[test]
    fn openssl_ec_and_ed25519_keys_load() {
        // OpenSSL's PKCS#8 differs from ring's: EC keys carry their curve, Ed25519 keys are
        // PKCS#8 v1 without the public key.
        let Some(p256) = openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ]) else {
            return;
        };
        let signer = KeyFileSigner::from_pem(&p256, None).unwrap();
        assert_eq!(signer.algorithm(), SigningAlgorithm::Es256);
        assert_signs(&signer, &signature::ECDSA_P256_SHA256_FIXED, 64);

        let p384 = openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
        ])
        .unwrap();
        let signer = KeyFileSigner::from_pem(&p384, None).unwrap();
        assert_eq!(signer.algorithm(), SigningAlgorithm::Es384);
        assert_signs(&signer, &signature::ECDSA_P384_SHA384_FIXED, 96);

        let ed25519 = openssl(&["genpkey", "-algorithm", "ED25519"]).unwrap();
        let signer = KeyFileSigner::from_pem(&ed25519, None).unwrap();
        assert_eq!(signer.algorithm(), SigningAlgorithm::Eddsa);
        assert_signs(&signer, &signature::ED25519, 64);
    }

    #[test]
    fn rsa_pkcs8_key_signs_rs256() {
        let Some(rsa) = rsa_key(2048) else {
            return;
        };
        assert!(rsa.starts_with("-----BEGIN PRIVATE KEY-----"));
        let signer = KeyFileSigner::from_pem(&rsa, None).unwrap();
        assert_eq!(signer.algorithm(), SigningAlgorithm::Rs256);
        assert_signs(&signer, &signature::RSA_PKCS1_2048_8192_SHA256, 256);
    }

    #[test]
    fn rsa_pkcs1_key_signs_rs256() {
        let Some(rsa) = openssl(&["genrsa", "-traditional", "2048"]) else {
            return;
        };
        assert!(rsa.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let signer = KeyFileSigner::from_pem(&rsa, None).unwrap();
        assert_eq!(signer.algorithm(), SigningAlgorithm::Rs256);
        assert_signs(&signer, &signature::RSA_PKCS1_2048_8192_SHA256, 256);
    }

    #[test]
    fn key_is_the_same_for_every_client_and_purpose() {
        let signer = KeyFileSigner::from_pem(&p256_pem(), Some("kid-1".into())).unwrap();
        let expected = SigningKey {
            algorithm: SigningAlgorithm::Es256,
            key_id: Some("kid-1".into()),
            public_jwk: Some(signer.public_jwk()),
        };
        for purpose in [
            KeyPurpose::ClientAssertion,
            KeyPurpose::DpopProof,
            KeyPurpose::AuthorizationGrant,
        ] {
            for client in ["client-1", "client-2"] {
                assert_eq!(signer.key(purpose, client), Ok(expected.clone()));
            }
            let signed = signer.sign(purpose, "client-1", INPUT).unwrap();
            let public_key =
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, signer.public_key());
            assert_eq!(public_key.verify(INPUT, &signed), Ok(()));
        }
    }

    fn b64url(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn ec_public_jwks_are_the_key_points_coordinates() {
        for (algorithm, crv, size) in [
            (&signature::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32),
            (&signature::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48),
        ] {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(algorithm, &rng).unwrap();
            let pair = EcdsaKeyPair::from_pkcs8(algorithm, pkcs8.as_ref(), &rng).unwrap();
            let point = pair.public_key().as_ref();
            assert_eq!((point[0], point.len()), (0x04, 1 + 2 * size));
            let signer =
                KeyFileSigner::from_pem(&pem("PRIVATE KEY", pkcs8.as_ref()), None).unwrap();
            let expected = format!(
                r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#,
                b64url(&point[1..=size]),
                b64url(&point[1 + size..])
            );
            assert_eq!(signer.public_jwk(), expected);
            // Its RFC 7638 thumbprint: the SHA-256 of exactly that text.
            let digest = ring::digest::digest(&ring::digest::SHA256, expected.as_bytes());
            assert_eq!(signer.thumbprint(), b64url(digest.as_ref()));
        }
    }

    #[test]
    fn ed25519_public_jwk_is_the_raw_public_key() {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let signer = KeyFileSigner::from_pem(&pem("PRIVATE KEY", pkcs8.as_ref()), None).unwrap();
        assert_eq!(
            signer.public_jwk(),
            format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                b64url(pair.public_key().as_ref())
            )
        );
    }

    #[test]
    fn rsa_public_jwk_is_the_modulus_and_exponent() {
        let Some(rsa) = rsa_key(2048) else {
            return;
        };
        let signer = KeyFileSigner::from_pem(&rsa, None).unwrap();
        let jwk: serde_json::Value = serde_json::from_str(&signer.public_jwk()).unwrap();
        let members: Vec<&String> = jwk.as_object().unwrap().keys().collect();
        assert_eq!(members, ["e", "kty", "n"]);
        assert_eq!((&jwk["kty"], &jwk["e"]), (&"RSA".into(), &"AQAB".into()));
        // The modulus is the DER RSAPublicKey's first integer: 256 bytes for 2048 bits.
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwk["n"].as_str().unwrap())
            .unwrap();
        assert_eq!(n.len(), 256);
        let der = signer.public_key();
        assert!(der.windows(n.len()).any(|window| window == n.as_slice()));
    }

    #[test]
    fn thumbprint_follows_rfc_7638s_example() {
        // RFC 7638 §3.1's RSA key and thumbprint.
        let jwk = r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#;
        assert_eq!(
            jwk_thumbprint(jwk).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
        assert_eq!(jwk_thumbprint(r#"{"kty":"oct","k":"AA"}"#), None);
        assert_eq!(jwk_thumbprint("not json"), None);
    }

    #[test]
    fn generated_dpop_keys_are_fresh_p256_keys() {
        let first = KeyFileSigner::from_pem(&generate_dpop_key().unwrap(), None).unwrap();
        let second = KeyFileSigner::from_pem(&generate_dpop_key().unwrap(), None).unwrap();
        assert_eq!(first.algorithm(), SigningAlgorithm::Es256);
        assert_ne!(first.thumbprint(), second.thumbprint());
        assert_signs(&first, &signature::ECDSA_P256_SHA256_FIXED, 64);
    }

    #[test]
    fn purpose_signer_routes_each_purpose_to_its_key() {
        let client: Arc<dyn Signer> =
            Arc::new(KeyFileSigner::from_pem(&p256_pem(), Some("client".into())).unwrap());
        let dpop: Arc<dyn Signer> =
            Arc::new(KeyFileSigner::from_pem(&p256_pem(), Some("dpop".into())).unwrap());
        let signer = PurposeSigner {
            client_assertion: Some(client),
            dpop_proof: Some(dpop),
            authorization_grant: None,
        };
        let kid = |purpose| signer.key(purpose, "c").map(|key| key.key_id);
        assert_eq!(kid(KeyPurpose::ClientAssertion), Ok(Some("client".into())));
        assert_eq!(kid(KeyPurpose::DpopProof), Ok(Some("dpop".into())));
        assert_eq!(
            kid(KeyPurpose::AuthorizationGrant),
            Err(SigningError::NoKey)
        );
        assert_eq!(
            signer.sign(KeyPurpose::AuthorizationGrant, "c", INPUT),
            Err(SigningError::NoKey)
        );
        assert_eq!(
            format!("{signer:?}"),
            "PurposeSigner { client_assertion: true, dpop_proof: true, authorization_grant: false }"
        );
    }

    #[cfg(unix)]
    #[test]
    fn key_file_others_can_access_is_refused() {
        let dir = temp_dir("permissions");
        let text = p256_pem();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602] {
            let path = write_key(&dir, "shared.pem", &text, mode);
            let refused = KeyFileSigner::from_pem_file(&path, None).unwrap_err();
            assert!(
                matches!(&refused, KeyFileError::Permissions(p, m) if *p == path && *m == mode),
                "mode {mode:o}: {refused:?}"
            );
        }
        let path = write_key(&dir, "private.pem", &text, 0o600);
        let signer = KeyFileSigner::from_pem_file(&path, Some("kid-1".into())).unwrap();
        assert_eq!(signer.algorithm(), SigningAlgorithm::Es256);
        assert_signs(&signer, &signature::ECDSA_P256_SHA256_FIXED, 64);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn file_errors_name_the_file() {
        let dir = temp_dir("names");
        let missing = dir.join("missing.pem");
        let error = KeyFileSigner::from_pem_file(&missing, None).unwrap_err();
        assert!(
            matches!(&error, KeyFileError::Io(p, e) if *p == missing && e.kind() == io::ErrorKind::NotFound),
            "{error:?}"
        );
        let garbage = write_key(&dir, "garbage.pem", "not a key", 0o600);
        let error = KeyFileSigner::from_pem_file(&garbage, None).unwrap_err();
        assert!(
            matches!(&error, KeyFileError::NotPem { path: Some(p), .. } if *p == garbage),
            "{error:?}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sec1_key_is_refused() {
        // Hand-built: the label alone decides, before the body is parsed.
        let sec1 = pem("EC PRIVATE KEY", &[0x30, 0x00]);
        assert!(matches!(
            KeyFileSigner::from_pem(&sec1, None),
            Err(KeyFileError::Sec1 { path: None })
        ));
        // What `openssl ecparam -genkey` writes: an `EC PARAMETERS` section, then the key.
        let Some(sec1) = openssl(&["ecparam", "-genkey", "-name", "prime256v1"]) else {
            return;
        };
        assert!(sec1.contains("-----BEGIN EC PARAMETERS-----"));
        assert!(matches!(
            KeyFileSigner::from_pem(&sec1, None),
            Err(KeyFileError::Sec1 { path: None })
        ));
    }

    #[test]
    fn encrypted_key_is_refused() {
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
                      DEK-Info: AES-128-CBC,00000000000000000000000000000000\n\nMAA=\n\
                      -----END RSA PRIVATE KEY-----\n";
        let pkcs8 = pem("ENCRYPTED PRIVATE KEY", &[0x30, 0x00]);
        for text in [legacy, pkcs8.as_str()] {
            assert!(matches!(
                KeyFileSigner::from_pem(text, None),
                Err(KeyFileError::Encrypted { path: None })
            ));
        }
        let Some(encrypted) = openssl(&[
            "genpkey",
            "-algorithm",
            "ED25519",
            "-aes-128-cbc",
            "-pass",
            "pass:passphrase",
        ]) else {
            return;
        };
        assert!(matches!(
            KeyFileSigner::from_pem(&encrypted, None),
            Err(KeyFileError::Encrypted { path: None })
        ));
    }

    #[test]
    fn text_that_is_not_pem_is_refused() {
        for text in [
            "",
            "not a key",
            "-----BEGIN PRIVATE KEY-----\nMAA=\n",
            "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
        ] {
            assert!(
                matches!(
                    KeyFileSigner::from_pem(text, None),
                    Err(KeyFileError::NotPem { path: None, .. })
                ),
                "{text:?}"
            );
        }
    }

    #[test]
    fn pem_without_a_private_key_is_refused() {
        let rng = SystemRandom::new();
        let pair =
            Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref())
                .unwrap();
        for text in [
            pem("CERTIFICATE", &[0x30, 0x00]),
            pem("PUBLIC KEY", pair.public_key().as_ref()),
            pem("OPENSSH PRIVATE KEY", &[0x30, 0x00]),
        ] {
            assert!(matches!(
                KeyFileSigner::from_pem(&text, None),
                Err(KeyFileError::NoPrivateKey { path: None })
            ));
        }
    }

    #[test]
    fn two_keys_are_refused() {
        let text = format!("{}{}", p256_pem(), p256_pem());
        assert!(matches!(
            KeyFileSigner::from_pem(&text, None),
            Err(KeyFileError::MultipleKeys { path: None })
        ));
    }

    #[test]
    fn other_key_types_are_unsupported() {
        // Not a key ring parses as any type.
        let junk = pem("PRIVATE KEY", &[0x30, 0x03, 0x02, 0x01, 0x00]);
        assert!(matches!(
            KeyFileSigner::from_pem(&junk, None),
            Err(KeyFileError::Unsupported { path: None, .. })
        ));
        let Some(p521) = openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-521",
        ]) else {
            return;
        };
        let ed448 = openssl(&["genpkey", "-algorithm", "ED448"]).unwrap();
        let small_rsa = rsa_key(1024).unwrap();
        for text in [p521, ed448, small_rsa] {
            assert!(matches!(
                KeyFileSigner::from_pem(&text, None),
                Err(KeyFileError::Unsupported { path: None, .. })
            ));
        }
    }

    #[test]
    fn debug_shows_the_algorithm_and_key_id_only() {
        let text = p256_pem();
        let signer = KeyFileSigner::from_pem(&text, Some("kid-1".into())).unwrap();
        let debug = format!("{signer:?}");
        assert_eq!(
            debug,
            r#"KeyFileSigner { algorithm: "ES256", key_id: Some("kid-1"), path: None, .. }"#
        );
        // No line of the PEM body, nor the public key.
        for line in text.lines().filter(|line| !line.starts_with("-----")) {
            assert!(!debug.contains(line));
        }
    }
}
