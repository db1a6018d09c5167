//! PKCE, Proof Key for Code Exchange (RFC 7636).

use crate::prelude::*;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::profile::PkceMethod;
use crate::secret::PkceVerifier;

/// Random bytes behind one verifier: 32 bytes give the 43-character minimum of RFC 7636 §4.1
/// and 256 bits of entropy (§7.1 asks for at least 256 bits when S256 is used).
pub const VERIFIER_RANDOM_BYTES: usize = 32;

/// Builds a verifier from random bytes: base64url without padding (RFC 7636 §4.1, Appendix B).
pub fn verifier_from_random(random: &[u8; VERIFIER_RANDOM_BYTES]) -> PkceVerifier {
    PkceVerifier::new(URL_SAFE_NO_PAD.encode(random))
}

/// The `code_challenge` for a verifier (RFC 7636 §4.2).
pub fn challenge(verifier: &PkceVerifier, method: PkceMethod) -> Option<String> {
    match method {
        PkceMethod::S256 => {
            Some(URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose().as_bytes())))
        }
        PkceMethod::Plain => Some(verifier.expose().to_owned()),
        PkceMethod::Disabled => None,
    }
}

/// The `code_challenge_method` value (RFC 7636 §4.3), `None` when PKCE is disabled.
pub fn method_name(method: PkceMethod) -> Option<&'static str> {
    match method {
        PkceMethod::S256 => Some("S256"),
        PkceMethod::Plain => Some("plain"),
        PkceMethod::Disabled => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B: the octets, the verifier they encode to, and its S256 challenge.
    #[test]
    fn rfc7636_appendix_b_vector() {
        let octets: [u8; 32] = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212,
            37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let verifier = verifier_from_random(&octets);
        assert_eq!(
            verifier.expose(),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
        assert_eq!(
            challenge(&verifier, PkceMethod::S256).as_deref(),
            Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        );
    }

    #[test]
    fn plain_challenge_is_the_verifier_and_disabled_has_none() {
        let verifier = PkceVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            challenge(&verifier, PkceMethod::Plain).as_deref(),
            Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        );
        assert_eq!(challenge(&verifier, PkceMethod::Disabled), None);
        assert_eq!(method_name(PkceMethod::S256), Some("S256"));
        assert_eq!(method_name(PkceMethod::Plain), Some("plain"));
        assert_eq!(method_name(PkceMethod::Disabled), None);
    }
}
