//! Valid access tokens kept in memory, so that `POST /v1/connections/{id}/token` for a token
//! that is not due answers without a store thread, a connection read, an unseal or a
//! component call: one `PRAGMA data_version` (is the database as it was?) and a map lookup.
//!
//! An entry is used only while the database is unchanged since it was read: SQLite's
//! `data_version` of one connection changes whenever any other connection commits, in this
//! process or another (the CLI on the same store, another instance of the service), so a
//! revocation, a refresh or a removal anywhere ends every entry at once. It is also used at
//! most [`TTL`], and kept only while the component could not decide within that time that
//! the token is due: its expiry is more than the largest default refresh margin
//! ([`MARGIN_CEILING_SECS`]) plus [`TTL`] away, or unknown. This process's own changes also
//! drop the entry directly ([`TokenCache::forget`]), and a lookup that raced such a change
//! does not store what it read ([`TokenCache::generation`]).
//!
//! The tokens are held in this process's memory only, as they are while any request is
//! answered; `Debug` never shows them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::types::TokenSet;

/// How long an entry is used at most, even with the database unchanged.
pub const TTL: Duration = Duration::from_secs(10);

/// How many entries are kept at most; beyond it, expired ones are dropped, then everything.
const CAPACITY: usize = 65_536;

/// What `/token` answers for a connection.
#[derive(Clone, PartialEq, Eq)]
pub struct CachedToken {
    /// The access token.
    pub access_token: String,
    /// Its type (`Bearer`).
    pub token_type: String,
    /// When it expires (Unix seconds), if known.
    pub expires_at: Option<u64>,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The cache, shared by the request handlers and the keep-alive sweep (cheap to clone).
#[derive(Clone, Default)]
pub struct TokenCache {
    inner: Arc<Inner>,
}

/// An entry: the token, until when it may be used, and the database's version it was read
/// at.
type Entry = (CachedToken, Instant, i64);

#[derive(Default)]
struct Inner {
    entries: Mutex<HashMap<String, Entry>>,
    /// Bumped by every [`TokenCache::forget`]: a lookup that began before it does not store.
    generation: AtomicU64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

impl TokenCache {
    /// The cached token of store connection `name`, if one is fresh at `now` and was read
    /// at the database's current `version`.
    pub fn get(&self, name: &str, now: Instant, version: i64) -> Option<CachedToken> {
        let entries = self.entries();
        let (token, until, read_at) = entries.get(name)?;
        (now < *until && *read_at == version).then(|| token.clone())
    }

    /// The generation to pass to [`TokenCache::put`]: read it before reading the store.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Keeps `tokens` for `name`, read at the database's `version`, until `now + TTL`,
    /// when they may be kept (see the module's doc) and nothing was forgotten since
    /// `generation` was read.
    pub fn put(
        &self,
        name: &str,
        tokens: &TokenSet,
        (generation, version): (u64, i64),
        now: Instant,
        unix_now: u64,
    ) {
        if !keepable(tokens.expires_at, unix_now) {
            return;
        }
        let mut entries = self.entries();
        // Checked under the lock that `forget` takes too: a forget either happened before
        // (and bumped the generation) or happens after (and removes this entry).
        if self.generation() != generation {
            return;
        }
        if entries.len() >= CAPACITY {
            entries.retain(|_, (_, until, _)| now < *until);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(
            name.to_owned(),
            (
                CachedToken {
                    access_token: tokens.access_token.clone(),
                    token_type: tokens.token_type.clone(),
                    expires_at: tokens.expires_at,
                },
                now + TTL,
                version,
            ),
        );
    }

    /// Drops what is kept for `name`, and makes lookups in flight not store theirs.
    pub fn forget(&self, name: &str) {
        let mut entries = self.entries();
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(name);
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether a token expiring at `expires_at` may be kept at `unix_now`: the component cannot
/// find it due within [`TTL`] (its default margin is at most [`MARGIN_CEILING_SECS`]).
fn keepable(expires_at: Option<u64>, unix_now: u64) -> bool {
    match expires_at {
        None => true,
        Some(expires_at) => {
            expires_at
                > unix_now
                    .saturating_add(MARGIN_CEILING_SECS)
                    .saturating_add(TTL.as_secs())
        }
    }
}

/// The largest refresh margin the component uses without a configured one (the core's
/// `lifecycle::MARGIN_CEILING_SECS`; `tests/component/lifecycle.rs` checks it against the
/// component).
pub const MARGIN_CEILING_SECS: u64 = 300;

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(access: &str, expires_at: Option<u64>) -> TokenSet {
        TokenSet {
            access_token: access.into(),
            token_type: "Bearer".to_owned(),
            expires_at,
            refresh_token: None,
            id_token: None,
            scopes: vec![],
            obtained_at: 0,
            extras: vec![],
            dpop_key_thumbprint: None,
        }
    }

    #[test]
    fn kept_for_the_ttl_only_and_never_near_expiry() {
        let cache = TokenCache::default();
        let start = Instant::now();
        let read = (cache.generation(), 7);
        cache.put("t1:a", &tokens("A", Some(10_000)), read, start, 1_000);
        let kept = cache.get("t1:a", start, 7).unwrap();
        assert_eq!(kept.access_token, "A");
        assert_eq!(kept.expires_at, Some(10_000));
        assert_eq!(cache.get("t1:a", start + TTL, 7), None);
        assert_eq!(cache.get("t1:b", start, 7), None);
        // The database changed since (a commit anywhere): not used.
        assert_eq!(cache.get("t1:a", start, 8), None);
        // Within the largest margin plus the TTL of expiry: asked again every time.
        cache.put("t1:c", &tokens("C", Some(1_310)), read, start, 1_000);
        assert_eq!(cache.get("t1:c", start, 7), None);
        cache.put("t1:d", &tokens("D", Some(1_311)), read, start, 1_000);
        assert!(cache.get("t1:d", start, 7).is_some());
        cache.put("t1:e", &tokens("E", None), read, start, 1_000);
        assert!(cache.get("t1:e", start, 7).is_some());
    }

    #[test]
    fn forgetting_drops_the_entry_and_lookups_in_flight() {
        let cache = TokenCache::default();
        let now = Instant::now();
        let before = cache.generation();
        cache.put("t1:a", &tokens("A", None), (before, 1), now, 0);
        cache.forget("t1:a");
        assert_eq!(cache.get("t1:a", now, 1), None);
        // A lookup that read the store before the forget does not store what it read.
        cache.put("t1:a", &tokens("OLD", None), (before, 1), now, 0);
        assert_eq!(cache.get("t1:a", now, 1), None);
        cache.put(
            "t1:a",
            &tokens("NEW", None),
            (cache.generation(), 1),
            now,
            0,
        );
        assert_eq!(cache.get("t1:a", now, 1).unwrap().access_token, "NEW");
    }

    #[test]
    fn debug_never_shows_a_token() {
        let cache = TokenCache::default();
        let now = Instant::now();
        cache.put("t1:a", &tokens("SECRET-TOKEN", None), (0, 0), now, 0);
        let shown = format!("{cache:?} {:?}", cache.get("t1:a", now, 0).unwrap());
        assert!(!shown.contains("SECRET-TOKEN"), "{shown}");
    }
}
