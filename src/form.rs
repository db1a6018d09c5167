//! `application/x-www-form-urlencoded` bodies (the encoding RFC 6749 Appendix B prescribes for
//! token requests) and client authentication (RFC 6749 §2.3.1).

use crate::prelude::*;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use url::form_urlencoded;

use crate::profile::KeyValue;

/// Encodes pairs as a form body, in order.
pub fn encode(pairs: &[KeyValue]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for pair in pairs {
        serializer.append_pair(&pair.name, &pair.value);
    }
    serializer.finish()
}

/// Decodes a form body into pairs, in order; repeated names are kept.
pub fn decode(body: &[u8]) -> Vec<KeyValue> {
    form_urlencoded::parse(body)
        .map(|(name, value)| KeyValue::new(name, value))
        .collect()
}

/// The `Authorization` header value for `client_secret_basic` (RFC 6749 §2.3.1): the client
/// id and secret are each form-urlencoded, joined by `:`, and base64-encoded (RFC 7617).
/// Encoding first is what lets a secret hold `:`, `+`, `%` or a space.
pub fn basic_authorization(client_id: &str, client_secret: &str) -> String {
    let encode_one =
        |value: &str| form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
    let credentials = format!("{}:{}", encode_one(client_id), encode_one(client_secret));
    format!("Basic {}", STANDARD.encode(credentials))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_in_order_with_form_rules() {
        let body = encode(&[
            KeyValue::new("grant_type", "authorization_code"),
            KeyValue::new("redirect_uri", "http://127.0.0.1:8765/cb?x=1"),
            KeyValue::new("scope", "a b+c"),
        ]);
        assert_eq!(
            body,
            "grant_type=authorization_code&redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcb%3Fx%3D1\
             &scope=a+b%2Bc"
        );
        assert_eq!(
            decode(body.as_bytes()),
            [
                KeyValue::new("grant_type", "authorization_code"),
                KeyValue::new("redirect_uri", "http://127.0.0.1:8765/cb?x=1"),
                KeyValue::new("scope", "a b+c"),
            ]
        );
    }

    #[test]
    fn basic_credentials_are_form_encoded_before_base64() {
        // RFC 6749 §2.3.1: "p+a:s&s%w/o=r d" encodes to "p%2Ba%3As%26s%25w%2Fo%3Dr+d".
        assert_eq!(
            basic_authorization("special-client", "p+a:s&s%w/o=r d"),
            format!(
                "Basic {}",
                STANDARD.encode("special-client:p%2Ba%3As%26s%25w%2Fo%3Dr+d")
            )
        );
        assert_eq!(
            basic_authorization("s6BhdRkqt3", "gX1fBat3bV"),
            "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW" // RFC 6749 §2.3.1 example
        );
    }
}
