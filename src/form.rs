//! `application/x-www-form-urlencoded` bodies (the encoding RFC 6749 Appendix B prescribes for
//! token requests) and client authentication (RFC 6749 §2.3.1).

use crate::prelude::*;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use url::form_urlencoded;

use crate::profile::KeyValue;

/// Encodes pairs as a form body, in order.
pub fn encode(pairs: &[KeyValue]) -> String {
    let mut body = String::new();
    for pair in pairs {
        push_pair(&mut body, 0, &pair.name, &pair.value);
    }
    body
}

/// Appends `name=value` to the pairs that `out` holds from byte `start` on (a whole body, or
/// a URL's query after its `?`), after a `&` unless it is the first; as
/// `form_urlencoded::Serializer::append_pair` does, without its per-piece iterator.
pub fn push_pair(out: &mut String, start: usize, name: &str, value: &str) {
    if out.len() > start {
        out.push('&');
    }
    push_encoded(out, name);
    out.push('=');
    push_encoded(out, value);
}

/// Appends `value` form-urlencoded (the WHATWG URL Standard's
/// `application/x-www-form-urlencoded` byte serializer, as `form_urlencoded::byte_serialize`):
/// ASCII letters, digits and `*-._` as they are, a space as `+`, every other byte as `%XX`.
pub fn push_encoded(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    // One table lookup per byte: the test below is most of the time spent on a URL.
    const KEPT: [bool; 256] = {
        let mut kept = [false; 256];
        let mut byte = 0;
        while byte < 256 {
            kept[byte] = matches!(
                byte as u8,
                b'*' | b'-' | b'.' | b'0'..=b'9' | b'A'..=b'Z' | b'_' | b'a'..=b'z'
            );
            byte += 1;
        }
        kept
    };
    out.reserve(value.len());
    // Runs of bytes kept as they are are copied at once. A run is ASCII, so it starts and
    // ends on character boundaries; `kept_from` alone may fall inside an encoded character,
    // and is only used to slice once a kept byte follows it.
    let mut kept_from = 0;
    for (at, &byte) in value.as_bytes().iter().enumerate() {
        if KEPT[usize::from(byte)] {
            continue;
        }
        if kept_from < at {
            out.push_str(&value[kept_from..at]);
        }
        kept_from = at + 1;
        if byte == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
    out.push_str(&value[kept_from..]);
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
    let mut credentials = String::with_capacity(client_id.len() + client_secret.len() + 1);
    push_encoded(&mut credentials, client_id);
    credentials.push(':');
    push_encoded(&mut credentials, client_secret);
    let mut header = String::from("Basic ");
    STANDARD.encode_string(credentials, &mut header);
    header
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
    fn encodes_every_byte_as_form_urlencoded_does() {
        let every_char: String = (0..=0x7f_u8)
            .map(char::from)
            .chain(['é', '€', '😀'])
            .collect();
        for value in [
            every_char.as_str(),
            "",
            "plain",
            " lead and trail ",
            "a%2Bb+c",
        ] {
            let mut ours = String::from("x");
            push_encoded(&mut ours, value);
            let theirs: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
            assert_eq!(ours, format!("x{theirs}"));
        }
    }

    #[test]
    fn pairs_after_a_start_are_separated_only_after_the_first() {
        let mut url = String::from("https://a.example/x?");
        let start = url.len();
        push_pair(&mut url, start, "a b", "c&d");
        push_pair(&mut url, start, "e", "");
        assert_eq!(url, "https://a.example/x?a+b=c%26d&e=");
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
