//! Redacted holders for secrets: client secrets, tokens and PKCE verifiers.
//!
//! Neither type implements `Display` or `PartialEq`, and `Debug` prints a placeholder, so a
//! secret cannot reach a log line, an error message or a panic by accident. Reading the value
//! takes an explicit `expose()` at the one place that puts it on the wire.

use crate::prelude::*;

use core::fmt;

/// A secret string: a client secret, an access, refresh or ID token.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for the one place that sends or stores it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Unwraps the secret, for handing it back across the component boundary.
    pub fn into_exposed(self) -> String {
        self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// A PKCE code verifier (RFC 7636 §4.1). Not `Clone`: one flow, one verifier.
pub struct PkceVerifier(String);

impl PkceVerifier {
    /// Wraps a verifier received from storage (the host gives it back on the callback).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The verifier, for the code exchange (RFC 7636 §4.5) and for storage.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Unwraps the verifier, for handing it back across the component boundary.
    pub fn into_exposed(self) -> String {
        self.0
    }
}

impl fmt::Debug for PkceVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PkceVerifier([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("s3cr3t-value");
        let verifier = PkceVerifier::new("verifier-value");
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        assert_eq!(format!("{verifier:?}"), "PkceVerifier([redacted])");
        assert_eq!(secret.expose(), "s3cr3t-value");
        assert_eq!(verifier.expose(), "verifier-value");
    }
}
