//! Sealing secrets at rest: authenticated encryption of the values the store keeps (client
//! secrets, token sets) under a 256-bit key the operator holds outside the store.
//!
//! A value is sealed with AES-256-GCM (`ring`), a fresh random 96-bit nonce per value, and
//! a *context* as additional authenticated data: the row and column it belongs to (for the
//! store, `connections/<column>/<name>`), so that a sealed value copied to another row or
//! column does not open there. The result is text, to live in the store's existing `TEXT`
//! columns:
//!
//! ```text
//! sealed:v1:<key id>:<base64url, no padding, of nonce (12 bytes) || ciphertext || tag (16 bytes)>
//! ```
//!
//! The key id is the first 8 hex characters of SHA-256 over a fixed label and the key: it
//! names the key in error messages ("sealed with key 1a2b3c4d") without revealing it, and
//! tells a wrong key from a damaged value before any decryption. The envelope's header
//! (`sealed:v1:<key id>:`) is authenticated too, as a prefix of the additional data.
//!
//! The key comes from `CONNECTOR_KEY` (64 hex characters) or from a key file holding the
//! same, which must be the user's alone. Its `Debug` shows only the key id, and its bytes are
//! overwritten when it is dropped (best effort: copies the compiler or `ring` made are not
//! reached).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};

use crate::store::UnsafeFile;

/// The environment variable holding the sealing key, as 64 hex characters.
pub const KEY_ENV: &str = "CONNECTOR_KEY";

/// What every sealed value starts with.
const PREFIX: &str = "sealed:";
/// The envelope's version, after [`PREFIX`].
const VERSION: &str = "v1:";
/// A key's length in bytes (AES-256).
const KEY_LEN: usize = 32;
/// The length of a key id, in hex characters.
const KEY_ID_LEN: usize = 8;
/// The authentication tag's length in bytes (AES-GCM).
const TAG_LEN: usize = 16;
/// What the key id hashes before the key: so the id is not a plain hash of the key, which
/// another program might also publish.
const KEY_ID_LABEL: &[u8] = b"oauth-connector sealing key id v1\0";
/// The longest key file read: 64 hex characters and some whitespace.
const MAX_KEY_FILE: u64 = 1024;

/// A 256-bit key that seals and opens values. Its `Debug` shows only its id; its bytes are
/// overwritten when it is dropped.
pub struct SealingKey {
    bytes: [u8; KEY_LEN],
    id: String,
}

/// Where a key was read from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    /// Text given directly ([`SealingKey::from_hex`]).
    Text,
    /// The `CONNECTOR_KEY` environment variable.
    Environment,
    /// A key file.
    File(PathBuf),
}

impl std::fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text => f.write_str("the sealing key"),
            Self::Environment => write!(f, "the sealing key in {KEY_ENV}"),
            Self::File(path) => write!(f, "the sealing key in {}", path.display()),
        }
    }
}

/// Why a sealing key could not be had. No message contains the key or a part of it.
#[derive(Debug)]
pub enum KeyError {
    /// It is not 64 characters long (after trailing whitespace is removed).
    WrongLength {
        /// Where it came from.
        origin: KeyOrigin,
        /// How many characters it has.
        found: usize,
    },
    /// A character is not a hex digit (the character itself is not repeated).
    NotHex {
        /// Where it came from.
        origin: KeyOrigin,
        /// The position of the first such character, from 0.
        position: usize,
    },
    /// The key file could not be opened, examined or read (or written, for
    /// [`SealingKey::write_new_file`]).
    Io(PathBuf, std::io::Error),
    /// The key file exists but is not the user's alone: it was not read.
    Unsafe(PathBuf, UnsafeFile),
    /// The key file is longer than a key could be: it was not read.
    TooLarge(PathBuf),
}

/// How to make a good key, for the messages that refuse one.
const HOW_TO_GENERATE: &str = "a sealing key is 64 hex characters (256 bits); generate one with \
                               `openssl rand -hex 32`";

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WrongLength { origin, found } => write!(
                f,
                "{origin} has {found} characters, not 64; {HOW_TO_GENERATE}"
            ),
            Self::NotHex { origin, position } => write!(
                f,
                "{origin} has a character that is not a hex digit (0-9, a-f) at position \
                 {position}; {HOW_TO_GENERATE}"
            ),
            Self::Io(path, error) => write!(f, "key file {}: {error}", path.display()),
            Self::Unsafe(path, problem) => write!(
                f,
                "refusing the key file {}, which must be yours alone: {problem}; it was not read",
                path.display()
            ),
            Self::TooLarge(path) => write!(
                f,
                "the key file {} is larger than a key; it should hold 64 hex characters and \
                 nothing else",
                path.display()
            ),
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(_, error) => Some(error),
            _ => None,
        }
    }
}

/// Why a sealed value did not open. No message contains the value, its plaintext or a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SealError {
    /// It was sealed with another key (the ids in the envelope and of the key given differ).
    WrongKey {
        /// The id of the key given.
        given_key_id: String,
        /// The id of the key it was sealed with, from its envelope.
        stored_key_id: String,
    },
    /// Authentication failed: the value was altered, or moved from another row or column
    /// (its context differs), or (with odds of 2^-32) sealed by another key with the same id.
    Tampered,
    /// It starts like a sealed value but is not one this program can read (an unknown
    /// version, a bad key id, bad base64, too short).
    Malformed,
    /// It is not sealed at all.
    NotSealed,
}

impl std::fmt::Display for SealError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WrongKey {
                given_key_id,
                stored_key_id,
            } => write!(
                f,
                "it was sealed with key {stored_key_id}, but the key given is {given_key_id}; \
                 set {KEY_ENV} (or the key file) to the key with id {stored_key_id}, or, if that \
                 key is lost, remove the connection and connect it again"
            ),
            Self::Tampered => f.write_str(
                "it fails authentication: it was altered, or copied from another connection or \
                 column; remove the connection and connect it again",
            ),
            Self::Malformed => f.write_str(
                "it is not a sealed value this program can read (damaged, or sealed by a newer \
                 version); remove the connection and connect it again, or use the newer version",
            ),
            Self::NotSealed => f.write_str("it is not sealed"),
        }
    }
}

impl std::error::Error for SealError {}

/// Whether `text` is a sealed value (by its prefix; whether it opens is another matter).
pub fn is_sealed(text: &str) -> bool {
    text.starts_with(PREFIX)
}

/// The id of the key `sealed` was sealed with, from its envelope; `None` when it is not a
/// (version 1) sealed value.
pub fn key_id_of(sealed: &str) -> Option<&str> {
    let id = sealed.strip_prefix(PREFIX)?.strip_prefix(VERSION)?;
    let (id, _) = id.split_once(':')?;
    (id.len() == KEY_ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then_some(id)
}

impl SealingKey {
    /// A key from 64 hex characters (either case); trailing whitespace (a newline) is
    /// ignored.
    pub fn from_hex(hex: &str) -> Result<Self, KeyError> {
        Self::parse(hex, KeyOrigin::Text)
    }

    /// The key in `CONNECTOR_KEY`: `Ok(None)` when it is unset or empty.
    pub fn from_env() -> Result<Option<Self>, KeyError> {
        match std::env::var_os(KEY_ENV).filter(|value| !value.is_empty()) {
            None => Ok(None),
            Some(value) => Self::parse(&value.to_string_lossy(), KeyOrigin::Environment).map(Some),
        }
    }

    /// The key in `value`, the value of `CONNECTOR_KEY` as the caller read it (errors name
    /// the variable).
    pub fn from_env_value(value: &str) -> Result<Self, KeyError> {
        Self::parse(value, KeyOrigin::Environment)
    }

    /// The key in the file at `path`: 64 hex characters, optionally followed by a newline.
    ///
    /// On Unix the file (a symbolic link is followed, then the opened file is examined) must
    /// be a regular file belonging to the effective user (or root) with no permission bits
    /// for group or others; otherwise [`KeyError::Unsafe`] and nothing is read.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        use std::io::Read as _;
        let io = |error| KeyError::Io(path.to_owned(), error);
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        // A FIFO planted at the path must not block the open: it is refused below.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
        let file = options.open(path).map_err(io)?;
        let metadata = file.metadata().map_err(io)?;
        check_key_file(&metadata).map_err(|problem| KeyError::Unsafe(path.to_owned(), problem))?;
        if metadata.len() > MAX_KEY_FILE {
            return Err(KeyError::TooLarge(path.to_owned()));
        }
        let mut text = String::new();
        let read = file.take(MAX_KEY_FILE + 1).read_to_string(&mut text);
        let parsed = match read {
            Ok(_) => Self::parse(&text, KeyOrigin::File(path.to_owned())),
            Err(error) => Err(io(error)),
        };
        wipe(text.into_bytes());
        parsed
    }

    /// A new random key, from the operating system's generator.
    ///
    /// # Panics
    /// When the operating system's random generator fails, which it does not on supported
    /// systems (`getrandom`).
    pub fn generate() -> Self {
        Self::from_bytes(random())
    }

    /// The key's id: the first 8 hex characters of SHA-256 over a fixed label and the key.
    /// Safe to show; it names the key a store was sealed with.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as 64 lowercase hex characters: the secret itself, for showing it once to
    /// whoever must keep it. Never log it.
    pub fn reveal_hex(&self) -> String {
        hex(&self.bytes)
    }

    /// Writes the key, as 64 hex characters and a newline, to a new file at `path`, created
    /// exclusively (not through a symbolic link) and owner-only (0600 on Unix), so that
    /// [`SealingKey::from_file`] accepts it. An existing file is an error, not overwritten.
    pub fn write_new_file(&self, path: &Path) -> Result<(), KeyError> {
        use std::io::Write as _;
        let io = |error| KeyError::Io(path.to_owned(), error);
        let mut file = crate::store::new_private_file(path).map_err(io)?;
        let mut text = self.reveal_hex();
        text.push('\n');
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_all());
        wipe(text.into_bytes());
        written.map_err(io)
    }

    /// Seals `plaintext`, bound to `context` (which must be given again to open it): an
    /// envelope `sealed:v1:<key id>:<base64url>` with a fresh random nonce, so sealing the
    /// same plaintext twice gives different text.
    ///
    /// # Panics
    /// When the operating system's random generator fails (see [`SealingKey::generate`]).
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> String {
        let nonce: [u8; NONCE_LEN] = random();
        let header = self.header();
        // Encrypted in place: no copy of the plaintext is left behind.
        let mut body = plaintext.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(additional_data(&header, context)),
                &mut body,
            )
            .expect("AES-GCM seals any input shorter than 64 GiB");
        let mut payload = Vec::with_capacity(NONCE_LEN + body.len());
        payload.extend_from_slice(&nonce);
        payload.extend_from_slice(&body);
        format!("{header}{}", URL_SAFE_NO_PAD.encode(&payload))
    }

    /// Opens a value [`SealingKey::seal`] made with this key and the same `context`.
    ///
    /// Errors: [`SealError::NotSealed`] when `sealed` does not start with `sealed:`;
    /// [`SealError::Malformed`] when it does but is not a version 1 envelope;
    /// [`SealError::WrongKey`] when its key id is not this key's (nothing is decrypted);
    /// [`SealError::Tampered`] when authentication fails (altered, or another context).
    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<Vec<u8>, SealError> {
        if !is_sealed(sealed) {
            return Err(SealError::NotSealed);
        }
        let stored_key_id = key_id_of(sealed).ok_or(SealError::Malformed)?;
        let header_len = PREFIX.len() + VERSION.len() + KEY_ID_LEN + 1;
        let (header, body) = sealed.split_at(header_len);
        let mut in_out = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Malformed)?;
        if in_out.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Malformed);
        }
        if stored_key_id != self.id {
            return Err(SealError::WrongKey {
                given_key_id: self.id.clone(),
                stored_key_id: stored_key_id.to_owned(),
            });
        }
        let mut ciphertext = in_out.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&in_out).map_err(|_| SealError::Malformed)?;
        let plaintext_len = self
            .aead()
            .open_in_place(
                nonce,
                Aad::from(additional_data(header, context)),
                &mut ciphertext,
            )
            .map_err(|_| SealError::Tampered)?
            .len();
        ciphertext.truncate(plaintext_len);
        Ok(ciphertext)
    }

    /// The envelope's header for this key: `sealed:v1:<key id>:`.
    fn header(&self) -> String {
        format!("{PREFIX}{VERSION}{}:", self.id)
    }

    /// The AEAD key. Built for each value (an AES key schedule costs well under a
    /// microsecond), so the only long-lived copy is `bytes`, which `Drop` overwrites.
    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &self.bytes).expect("a 32-byte key is an AES-256 key"),
        )
    }

    fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
        hash.update(KEY_ID_LABEL);
        hash.update(&bytes);
        let mut id = hex(hash.finish().as_ref());
        id.truncate(KEY_ID_LEN);
        Self { bytes, id }
    }

    fn parse(text: &str, origin: KeyOrigin) -> Result<Self, KeyError> {
        let text = text.trim_end();
        let found = text.chars().count();
        if found != 2 * KEY_LEN {
            return Err(KeyError::WrongLength { origin, found });
        }
        if let Some(position) = text.chars().position(|c| !c.is_ascii_hexdigit()) {
            return Err(KeyError::NotHex { origin, position });
        }
        // 64 ASCII hex digits from here on.
        let nibble = |digit: u8| match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => digit - b'A' + 10,
        };
        let mut bytes = [0_u8; KEY_LEN];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            *byte = (nibble(pair[0]) << 4) | nibble(pair[1]);
        }
        Ok(Self::from_bytes(bytes))
    }
}

impl Clone for SealingKey {
    fn clone(&self) -> Self {
        Self {
            bytes: self.bytes,
            id: self.id.clone(),
        }
    }
}

impl Drop for SealingKey {
    fn drop(&mut self) {
        self.bytes.fill(0);
        // Keeps the writes: the optimizer may not assume nobody reads them.
        std::hint::black_box(&self.bytes);
    }
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The additional authenticated data: the envelope's header, then the context.
fn additional_data(header: &str, context: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(header.len() + context.len());
    data.extend_from_slice(header.as_bytes());
    data.extend_from_slice(context);
    data
}

/// `N` random bytes from the operating system.
fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0_u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random generator works");
    bytes
}

/// `bytes` in lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Overwrites `bytes` before freeing them (best effort, see the module's documentation).
fn wipe(mut bytes: Vec<u8>) {
    bytes.fill(0);
    std::hint::black_box(&bytes);
}

/// Checks an opened key file's metadata: a regular file, the effective user's (or root's),
/// no permission bits for group or others.
#[cfg(unix)]
fn check_key_file(metadata: &std::fs::Metadata) -> Result<(), UnsafeFile> {
    use std::os::unix::fs::MetadataExt;
    if !metadata.is_file() {
        return Err(UnsafeFile::NotAFile);
    }
    if metadata.uid() != crate::store::effective_uid() && metadata.uid() != 0 {
        return Err(UnsafeFile::NotOwned {
            owner: metadata.uid(),
        });
    }
    let mode = metadata.mode() & 0o7777;
    if mode & crate::store::PRIVATE_BITS != 0 {
        return Err(UnsafeFile::Shared { mode });
    }
    Ok(())
}

/// Elsewhere only the kind is checked (Windows files inherit the ACL of their directory).
#[cfg(not(unix))]
fn check_key_file(metadata: &std::fs::Metadata) -> Result<(), UnsafeFile> {
    if metadata.is_file() {
        Ok(())
    } else {
        Err(UnsafeFile::NotAFile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn key() -> SealingKey {
        SealingKey::from_hex(HEX).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_with_its_key_and_context() {
        let key = key();
        let sealed = key.seal(b"client-secret-value", b"connections/secret/c");
        assert!(is_sealed(&sealed));
        assert!(
            sealed.starts_with(&format!("sealed:v1:{}:", key.id())),
            "{sealed}"
        );
        assert_eq!(key_id_of(&sealed), Some(key.id()));
        assert!(!sealed.contains("client-secret-value"));
        assert_eq!(
            key.open(&sealed, b"connections/secret/c").unwrap(),
            b"client-secret-value"
        );
        // The empty plaintext too.
        let empty = key.seal(b"", b"ctx");
        assert_eq!(key.open(&empty, b"ctx").unwrap(), b"");
        // A clone is the same key.
        assert_eq!(key.clone().open(&empty, b"ctx").unwrap(), b"");
    }

    #[test]
    fn another_key_is_told_apart_by_its_id() {
        let sealed = key().seal(b"x", b"ctx");
        let other = SealingKey::generate();
        assert_ne!(other.id(), key().id());
        assert_eq!(
            other.open(&sealed, b"ctx"),
            Err(SealError::WrongKey {
                given_key_id: other.id().to_owned(),
                stored_key_id: key().id().to_owned(),
            })
        );
    }

    #[test]
    fn any_altered_byte_fails_authentication() {
        let key = key();
        let sealed = key.seal(b"refresh-token", b"ctx");
        let (header, body) = sealed.split_at(sealed.rfind(':').unwrap() + 1);
        let payload = URL_SAFE_NO_PAD.decode(body).unwrap();
        for index in 0..payload.len() {
            let mut altered = payload.clone();
            altered[index] ^= 0x01;
            let altered = format!("{header}{}", URL_SAFE_NO_PAD.encode(&altered));
            assert_eq!(
                key.open(&altered, b"ctx"),
                Err(SealError::Tampered),
                "byte {index}"
            );
        }
        // Cut short (still a nonce and a tag).
        let truncated = format!(
            "{header}{}",
            URL_SAFE_NO_PAD.encode(&payload[..payload.len() - 1])
        );
        assert_eq!(key.open(&truncated, b"ctx"), Err(SealError::Tampered));
    }

    #[test]
    fn a_value_does_not_open_in_another_context() {
        let key = key();
        let sealed = key.seal(b"token", b"connections/tokens/a");
        assert_eq!(
            key.open(&sealed, b"connections/tokens/b"),
            Err(SealError::Tampered)
        );
        assert_eq!(
            key.open(&sealed, b"connections/secret/a"),
            Err(SealError::Tampered)
        );
    }

    #[test]
    fn each_seal_has_a_fresh_nonce() {
        let key = key();
        let first = key.seal(b"same", b"ctx");
        let second = key.seal(b"same", b"ctx");
        assert_ne!(first, second);
        let nonce = |sealed: &str| {
            URL_SAFE_NO_PAD
                .decode(&sealed[sealed.rfind(':').unwrap() + 1..])
                .unwrap()[..NONCE_LEN]
                .to_vec()
        };
        assert_ne!(nonce(&first), nonce(&second));
    }

    #[test]
    fn what_is_not_an_envelope_is_told_apart() {
        let key = key();
        assert_eq!(key.open("{\"a\":1}", b"ctx"), Err(SealError::NotSealed));
        assert!(!is_sealed("{\"a\":1}"));
        for malformed in [
            "sealed:",
            "sealed:v2:00000000:AAAA",
            &format!("sealed:v1:{}", key.id()),
            &format!("sealed:v1:{}:", key.id()),
            &format!("sealed:v1:{}:not base64!", key.id()),
            &format!("sealed:v1:{}:AAAA", key.id()),
            &format!("sealed:v1:ABCDEF12:{}", "A".repeat(40)),
        ] {
            assert_eq!(
                key.open(malformed, b"ctx"),
                Err(SealError::Malformed),
                "{malformed}"
            );
        }
    }

    #[test]
    fn debug_and_errors_show_no_key_material() {
        let key = key();
        let debug = format!("{key:?}");
        assert_eq!(debug, format!("SealingKey {{ id: {:?}, .. }}", key.id()));
        assert!(!debug.contains("0001020304"));
        assert_eq!(key.id().len(), 8);
        assert_eq!(key.reveal_hex(), HEX);
        // Upper case and a trailing newline read as the same key.
        let upper = SealingKey::from_hex(&format!("{}\n", HEX.to_uppercase())).unwrap();
        assert_eq!(upper.id(), key.id());
        let wrong = SealingKey::generate().open(&key.seal(b"secret-plaintext", b"c"), b"c");
        let message = wrong.unwrap_err().to_string();
        assert!(message.contains(key.id()), "{message}");
        assert!(message.contains(KEY_ENV), "{message}");
    }

    #[test]
    fn a_key_must_be_64_hex_characters() {
        assert!(matches!(
            SealingKey::from_hex(&HEX[..63]),
            Err(KeyError::WrongLength {
                origin: KeyOrigin::Text,
                found: 63
            })
        ));
        assert!(matches!(
            SealingKey::from_hex(&format!("{HEX}00")),
            Err(KeyError::WrongLength { found: 66, .. })
        ));
        assert!(matches!(
            SealingKey::from_hex(""),
            Err(KeyError::WrongLength { found: 0, .. })
        ));
        let mut not_hex = HEX.to_owned();
        not_hex.replace_range(10..11, "g");
        assert!(matches!(
            SealingKey::from_hex(&not_hex),
            Err(KeyError::NotHex { position: 10, .. })
        ));
        // Non-ASCII: counted in characters, never split.
        let mut accented = HEX[..63].to_owned();
        accented.insert(5, 'é');
        assert!(matches!(
            SealingKey::from_hex(&accented),
            Err(KeyError::NotHex { position: 5, .. })
        ));
        let message = SealingKey::from_hex(&not_hex).unwrap_err().to_string();
        assert!(message.contains("openssl rand -hex 32"), "{message}");
        assert!(!message.contains(&not_hex[..10]), "{message}");
    }

    fn temp_dir(label: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("connector-seal-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_key_file_written_is_read_back() {
        let dir = temp_dir("file");
        let path = dir.join("key");
        let key = SealingKey::generate();
        key.write_new_file(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", key.reveal_hex())
        );
        assert_eq!(SealingKey::from_file(&path).unwrap().id(), key.id());
        // Never overwritten.
        assert!(matches!(
            SealingKey::generate().write_new_file(&path),
            Err(KeyError::Io(at, error)) if at == path && error.kind() == std::io::ErrorKind::AlreadyExists
        ));
        assert!(matches!(
            SealingKey::from_file(&dir.join("missing")),
            Err(KeyError::Io(_, error)) if error.kind() == std::io::ErrorKind::NotFound
        ));
        let short = dir.join("short");
        crate::store::new_private_file(&short).unwrap();
        std::fs::write(&short, "abcd\n").unwrap();
        assert!(matches!(
            SealingKey::from_file(&short),
            Err(KeyError::WrongLength { origin: KeyOrigin::File(at), found: 4 }) if at == short
        ));
        let large = dir.join("large");
        crate::store::new_private_file(&large).unwrap();
        std::fs::write(&large, "0".repeat(4096)).unwrap();
        assert!(matches!(
            SealingKey::from_file(&large),
            Err(KeyError::TooLarge(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_open_to_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("perms");
        let path = dir.join("key");
        SealingKey::generate().write_new_file(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        for mode in [0o644, 0o640, 0o604, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let refused = SealingKey::from_file(&path);
            assert!(
                matches!(&refused, Err(KeyError::Unsafe(at, UnsafeFile::Shared { mode: found })) if *at == path && *found == mode),
                "{mode:o}: {refused:?}"
            );
            let message = refused.unwrap_err().to_string();
            assert!(message.contains("chmod 600"), "{message}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        SealingKey::from_file(&path).unwrap();
        // A FIFO (which must not block the open) and a directory are not key files.
        let fifo = dir.join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            SealingKey::from_file(&fifo),
            Err(KeyError::Unsafe(_, UnsafeFile::NotAFile))
        ));
        assert!(matches!(
            SealingKey::from_file(&dir),
            Err(KeyError::Unsafe(_, UnsafeFile::NotAFile))
        ));
    }
}
