//! Valid access tokens kept in memory for [`TTL`], so that `POST
//! /v1/connections/{id}/token` for a token that is not due answers on the async side,
//! without a store thread, an SQLite read, an unseal or a component call.
//!
//! An entry is kept only while the component could not yet decide that the token is due: its
//! expiry is more than the largest default refresh margin
//! ([`MARGIN_CEILING_SECS`]) plus [`TTL`] away, or unknown. It is
//! dropped at once by this process's changes to the connection (connected again, revoked,
//! removed, refreshed, a refresh refused: [`TokenCache::forget`]); a change made by another
//! process (the CLI on the same store, another instance of the service) is seen within
//! [`TTL`]. A lookup that raced such a change does not store what it read
//! ([`TokenCache::generation`]).
//!
//! The tokens are held in this process's memory only, as they are while any request is
//! answered; `Debug` never shows them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::types::TokenSet;

/// How long an entry is used before the store is asked again.
pub const TTL: Duration = Duration::from_secs(1);

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

#[derive(Default)]
struct Inner {
    entries: Mutex<HashMap<String, (CachedToken, Instant)>>,
    /// Bumped by every [`TokenCache::forget`]: a lookup that began before it does not store.
    generation: AtomicU64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

impl TokenCache {
    /// The cached token of store connection `name`, if one is fresh at `now`.
    pub fn get(&self, name: &str, now: Instant) -> Option<CachedToken> {
        let entries = self.entries();
        let (token, until) = entries.get(name)?;
        (now < *until).then(|| token.clone())
    }

    /// The generation to pass to [`TokenCache::put`]: read it before reading the store.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Keeps `tokens` for `name` until `now + TTL`, when they may be kept (see the module's
    /// doc) and nothing was forgotten since `generation` was read.
    pub fn put(&self, name: &str, tokens: &TokenSet, generation: u64, now: Instant, unix_now: u64) {
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
            entries.retain(|_, (_, until)| now < *until);
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
            ),
        );
    }

    /// Drops what is kept for `name`, and makes lookups in flight not store theirs.
    pub fn forget(&self, name: &str) {
        let mut entries = self.entries();
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(name);
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (CachedToken, Instant)>> {
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
        }
    }

    #[test]
    fn kept_for_the_ttl_only_and_never_near_expiry() {
        let cache = TokenCache::default();
        let start = Instant::now();
        let generation = cache.generation();
        cache.put("t1:a", &tokens("A", Some(10_000)), generation, start, 1_000);
        let kept = cache.get("t1:a", start).unwrap();
        assert_eq!(kept.access_token, "A");
        assert_eq!(kept.expires_at, Some(10_000));
        assert_eq!(cache.get("t1:a", start + TTL), None);
        assert_eq!(cache.get("t1:b", start), None);
        // Within the largest margin plus the TTL of expiry: asked again every time.
        cache.put("t1:c", &tokens("C", Some(1_301)), generation, start, 1_000);
        assert_eq!(cache.get("t1:c", start), None);
        cache.put("t1:d", &tokens("D", Some(1_302)), generation, start, 1_000);
        assert!(cache.get("t1:d", start).is_some());
        cache.put("t1:e", &tokens("E", None), generation, start, 1_000);
        assert!(cache.get("t1:e", start).is_some());
    }

    #[test]
    fn forgetting_drops_the_entry_and_lookups_in_flight() {
        let cache = TokenCache::default();
        let now = Instant::now();
        let before = cache.generation();
        cache.put("t1:a", &tokens("A", None), before, now, 0);
        cache.forget("t1:a");
        assert_eq!(cache.get("t1:a", now), None);
        // A lookup that read the store before the forget does not store what it read.
        cache.put("t1:a", &tokens("OLD", None), before, now, 0);
        assert_eq!(cache.get("t1:a", now), None);
        cache.put("t1:a", &tokens("NEW", None), cache.generation(), now, 0);
        assert_eq!(cache.get("t1:a", now).unwrap().access_token, "NEW");
    }

    #[test]
    fn debug_never_shows_a_token() {
        let cache = TokenCache::default();
        let now = Instant::now();
        cache.put("t1:a", &tokens("SECRET-TOKEN", None), 0, now, 0);
        let shown = format!("{cache:?} {:?}", cache.get("t1:a", now).unwrap());
        assert!(!shown.contains("SECRET-TOKEN"), "{shown}");
    }
}
