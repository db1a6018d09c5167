//! The signer behind the component's `signer` import: private keys stay in the host.
//!
//! The component builds a JWT's header and claims and asks the host to sign the JWS Signing
//! Input; the host answers with the signature bytes. A host may back [`Signer`] with a key
//! file ([`KeyFileSigner`]), an HSM or a cloud KMS.

use std::sync::Arc;

use crate::bindings::oauth_connector::oauth2::signer::SigningKey;
use crate::types::{KeyPurpose, SigningError};

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
