//! The token → context registry.
//!
//! It holds, per token, the context Snowflake last reported (or `None` before the token's
//! first statement, when the connection's login defaults apply), whether the token was minted
//! by `session new` (only minted tokens are accepted over TCP), and when it was last used.
//! Changes are made in memory and written by one writer thread ([`super::writer`]); the
//! methods the runner calls stay synchronous and never touch the disk. A handler that
//! changed durable state (a mint, an end, a context or transaction change) awaits
//! [`Registry::persisted`] before answering, so no acknowledged change is lost by a crash.
//! Uses are written at most once per [`touch_interval`] per token, so a token in daily use
//! is not expired by `tokens.ttl` even when its context never changes. At most `tokens.max`
//! tokens are kept, which also bounds the state file each write rewrites.

use std::sync::Arc;
use std::time::Duration;

use super::Context;
use super::store::{Store, StoredLoginContext, StoredToken, unix_now};
use super::writer::{Shared, Tracked, Writer};

/// The default of `tokens.max`.
pub const DEFAULT_MAX_TOKENS: usize = 1000;

/// Why the registry refused or could not keep a change.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("the daemon already keeps {max} tokens, the most `tokens.max` allows")]
    Full { max: usize },
    #[error("the change is in effect but could not be saved to {path}; see the daemon's log")]
    NotSaved { path: String },
}

/// A token as `session list` shows it.
#[derive(Debug, Clone)]
pub struct TokenSummary {
    pub name: String,
    pub context: Option<Context>,
    pub minted: bool,
    pub idle_for: Duration,
}

/// The registry. Cheap to share behind an `Arc`; its mutex is never held across an await.
pub struct Registry {
    shared: Arc<Shared>,
    store: Option<Store>,
    writer: Option<Writer>,
    ttl: Duration,
    max_tokens: usize,
}

/// How stale a token's saved `last_used` may get before a use is written: an hour, or a
/// quarter of the ttl when that is shorter, so a token in use never comes near expiry on disk.
pub fn touch_interval(ttl: Duration) -> Duration {
    let hour = Duration::from_secs(3600);
    if ttl.is_zero() {
        hour
    } else {
        hour.min(ttl / 4)
    }
}

impl Registry {
    /// An in-memory registry (tests, or when persistence is unavailable).
    pub fn in_memory(ttl: Duration) -> Self {
        Self {
            shared: Arc::new(Shared::new(Tracked::default())),
            store: None,
            writer: None,
            ttl,
            max_tokens: DEFAULT_MAX_TOKENS,
        }
    }

    /// Loads saved tokens (dropping those unused for longer than `ttl`) and starts the writer.
    pub fn open(store: Store, ttl: Duration) -> std::io::Result<Self> {
        let mut state = store.load()?;
        let now = unix_now();
        let before = state.tokens.len();
        state
            .tokens
            .retain(|_, t| ttl.is_zero() || now.saturating_sub(t.last_used) <= ttl.as_secs());
        let expired = before - state.tokens.len();
        tracing::info!(path = %store.path().display(), restored = state.tokens.len(), expired, "token contexts loaded");
        let shared = Arc::new(Shared::new(Tracked::new(state)));
        let writer = Writer::start(shared.clone(), store.clone())?;
        if expired > 0 {
            shared.changed(&mut shared.lock(), false);
        }
        Ok(Self {
            shared,
            store: Some(store),
            writer: Some(writer),
            ttl,
            max_tokens: DEFAULT_MAX_TOKENS,
        })
    }

    /// Keeps at most `max` tokens (at least one).
    pub fn with_max_tokens(mut self, max: usize) -> Self {
        self.max_tokens = max.max(1);
        self
    }

    /// Resolves once every durable change made so far is on disk (immediately without a
    /// state file). Await it before acknowledging a mint, an end, or a context change.
    pub async fn persisted(&self) -> Result<(), RegistryError> {
        let target = self.shared.lock().durable;
        self.wait_written(target).await
    }

    /// Resolves once every change made so far, uses included, was written (for shutdown).
    pub async fn flush(&self) -> Result<(), RegistryError> {
        let target = self.shared.lock().changed;
        self.wait_written(target).await
    }

    async fn wait_written(&self, target: u64) -> Result<(), RegistryError> {
        let (Some(writer), Some(store)) = (&self.writer, &self.store) else {
            return Ok(());
        };
        if target == 0 || writer.wait_for(target).await {
            Ok(())
        } else {
            Err(RegistryError::NotSaved {
                path: store.path().display().to_string(),
            })
        }
    }

    /// Whether `token` may be used: it is known, or there is room for one more.
    pub fn admit(&self, token: &str) -> Result<(), RegistryError> {
        let tracked = self.shared.lock();
        let tokens = &tracked.saved.tokens;
        if tokens.contains_key(token) || tokens.len() < self.max_tokens {
            Ok(())
        } else {
            Err(RegistryError::Full {
                max: self.max_tokens,
            })
        }
    }

    /// The token's saved context; `None` if it has none yet (login defaults apply).
    pub fn context(&self, token: &str) -> Option<Context> {
        self.shared
            .lock()
            .saved
            .tokens
            .get(token)
            .and_then(|t| t.context.clone())
    }

    /// Whether `session new` minted this token (and `session end` has not forgotten it).
    pub fn is_minted(&self, token: &str) -> bool {
        self.shared
            .lock()
            .saved
            .tokens
            .get(token)
            .is_some_and(|t| t.minted)
    }

    /// Records a token's use, creating it if needed. The use is handed to the writer when
    /// the token's saved `last_used` is older than [`touch_interval`]; nobody waits for it.
    pub fn touch(&self, token: &str) {
        let now = unix_now();
        let mut guard = self.shared.lock();
        let tracked = &mut *guard;
        tracked
            .saved
            .tokens
            .entry(token.to_string())
            .or_insert_with(|| new_token(false, now))
            .last_used = now;
        let last_written = tracked.uses_written.get(token).copied().unwrap_or(0);
        if now.saturating_sub(last_written) >= touch_interval(self.ttl).as_secs() {
            tracked.uses_written.insert(token.to_string(), now);
            self.shared.changed(tracked, false);
        }
    }

    /// Stores the context Snowflake reported for the token.
    pub fn set_context(&self, token: &str, context: Context) {
        let now = unix_now();
        let mut guard = self.shared.lock();
        let tracked = &mut *guard;
        let entry = tracked
            .saved
            .tokens
            .entry(token.to_string())
            .or_insert_with(|| new_token(false, now));
        if entry.context.as_ref() == Some(&context) {
            return;
        }
        entry.context = Some(context);
        entry.last_used = now;
        tracked.uses_written.insert(token.to_string(), now);
        self.shared.changed(tracked, true);
    }

    /// Whether the token's last statements left a transaction open.
    pub fn in_transaction(&self, token: &str) -> bool {
        self.shared
            .lock()
            .saved
            .tokens
            .get(token)
            .is_some_and(|t| t.in_transaction)
    }

    /// Records that the token's transaction began (`true`) or ended (`false`); persisted.
    pub fn set_in_transaction(&self, token: &str, open: bool) {
        let mut guard = self.shared.lock();
        let tracked = &mut *guard;
        let Some(entry) = tracked.saved.tokens.get_mut(token) else {
            return;
        };
        if entry.in_transaction != open {
            entry.in_transaction = open;
            self.shared.changed(tracked, true);
        }
    }

    /// Forgets the token's own context (it falls back to the login defaults); keeps the token.
    pub fn clear_context(&self, token: &str) {
        let mut guard = self.shared.lock();
        let tracked = &mut *guard;
        if let Some(entry) = tracked.saved.tokens.get_mut(token)
            && entry.context.take().is_some()
        {
            self.shared.changed(tracked, true);
        }
    }

    /// Registers a freshly minted token, unless `tokens.max` are kept already.
    pub fn add_minted(&self, token: &str) -> Result<(), RegistryError> {
        let now = unix_now();
        let mut guard = self.shared.lock();
        let tracked = &mut *guard;
        let tokens = &mut tracked.saved.tokens;
        if !tokens.contains_key(token) && tokens.len() >= self.max_tokens {
            return Err(RegistryError::Full {
                max: self.max_tokens,
            });
        }
        tokens.insert(token.to_string(), new_token(true, now));
        tracked.uses_written.insert(token.to_string(), now);
        self.shared.changed(tracked, true);
        Ok(())
    }

    /// Forgets a token; returns whether it existed.
    pub fn remove(&self, token: &str) -> bool {
        let mut guard = self.shared.lock();
        let tracked = &mut *guard;
        let existed = tracked.saved.tokens.remove(token).is_some();
        if existed {
            tracked.uses_written.remove(token);
            self.shared.changed(tracked, true);
        }
        existed
    }

    /// Forgets tokens unused for longer than the configured time; returns their names.
    pub fn expire_unused(&self) -> Vec<String> {
        if self.ttl.is_zero() {
            return Vec::new();
        }
        let now = unix_now();
        let mut guard = self.shared.lock();
        let tracked = &mut *guard;
        let tokens = &mut tracked.saved.tokens;
        let expired: Vec<String> = tokens
            .iter()
            .filter(|(_, t)| now.saturating_sub(t.last_used) > self.ttl.as_secs())
            .map(|(name, _)| name.clone())
            .collect();
        for name in &expired {
            tokens.remove(name);
            tracked.uses_written.remove(name);
        }
        if !expired.is_empty() {
            self.shared.changed(tracked, false);
        }
        expired
    }

    /// The login defaults last seen on the connection identified by `connection`.
    pub fn login_context(&self, connection: &str) -> Option<Context> {
        let tracked = self.shared.lock();
        let saved = tracked.saved.login_context.as_ref()?;
        (saved.connection == connection).then(|| saved.context.clone())
    }

    /// Remembers the login defaults of `connection` (written when they change).
    pub fn set_login_context(&self, connection: &str, context: &Context) {
        let mut guard = self.shared.lock();
        let tracked = &mut *guard;
        let fresh = StoredLoginContext {
            connection: connection.to_string(),
            context: context.clone(),
        };
        if tracked.saved.login_context.as_ref() == Some(&fresh) {
            return;
        }
        tracked.saved.login_context = Some(fresh);
        self.shared.changed(tracked, false);
    }

    /// How many tokens are known.
    pub fn len(&self) -> usize {
        self.shared.lock().saved.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shared.lock().saved.tokens.is_empty()
    }

    /// Every token, for `session list`.
    pub fn list(&self) -> Vec<TokenSummary> {
        let now = unix_now();
        self.shared
            .lock()
            .saved
            .tokens
            .iter()
            .map(|(name, t)| TokenSummary {
                name: name.clone(),
                context: t.context.clone(),
                minted: t.minted,
                idle_for: Duration::from_secs(now.saturating_sub(t.last_used)),
            })
            .collect()
    }
}

impl Drop for Registry {
    /// Writes what is queued before the registry goes away.
    fn drop(&mut self) {
        if let Some(writer) = &mut self.writer {
            writer.stop(&self.shared);
        }
    }
}

fn new_token(minted: bool, now: u64) -> StoredToken {
    StoredToken {
        context: None,
        minted,
        last_used: now,
        in_transaction: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let ttl = Duration::from_secs(3600);
        let registry = Registry::open(Store::new(dir.path()), ttl).unwrap();
        let context = Context {
            database: Some("DB".into()),
            ..Context::default()
        };
        registry.set_context("a", context.clone());
        registry.add_minted("m").unwrap();
        drop(registry);
        let reopened = Registry::open(Store::new(dir.path()), ttl).unwrap();
        assert_eq!(reopened.context("a"), Some(context));
        assert!(reopened.is_minted("m"));
        assert!(!reopened.is_minted("a"));
        assert!(reopened.remove("m"));
        reopened.set_login_context("u@a", &Context::default());
        drop(reopened);
        let again = Registry::open(Store::new(dir.path()), ttl).unwrap();
        assert_eq!(again.login_context("u@a"), Some(Context::default()));
        assert_eq!(
            again.login_context("other@b"),
            None,
            "never another connection's defaults"
        );
        assert!(!again.is_minted("m"));
    }

    fn saved_at(dir: &std::path::Path) -> super::super::store::SavedState {
        Store::new(dir).load().unwrap()
    }

    #[tokio::test]
    async fn an_awaited_change_is_on_disk_while_the_registry_runs() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(Store::new(dir.path()), Duration::ZERO).unwrap();
        registry.add_minted("m").unwrap();
        registry.set_context(
            "a",
            Context {
                schema: Some("S".into()),
                ..Context::default()
            },
        );
        registry.persisted().await.unwrap();
        // Read behind the running registry's back, as a restart after SIGKILL would.
        let saved = saved_at(dir.path());
        assert!(saved.tokens["m"].minted);
        assert_eq!(
            saved.tokens["a"]
                .context
                .as_ref()
                .unwrap()
                .schema
                .as_deref(),
            Some("S")
        );
        assert!(registry.remove("m"));
        registry.persisted().await.unwrap();
        assert!(!saved_at(dir.path()).tokens.contains_key("m"));
    }

    #[tokio::test]
    async fn a_failed_write_is_reported_to_the_waiter() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let registry = Registry::open(Store::new(&state), Duration::ZERO).unwrap();
        // The state directory cannot be created: a file is in its way.
        std::fs::write(&state, "not a directory").unwrap();
        registry.add_minted("m").unwrap();
        let error = registry.persisted().await.unwrap_err();
        assert!(matches!(error, RegistryError::NotSaved { .. }), "{error}");
    }

    #[test]
    fn tokens_are_capped() {
        let registry = Registry::in_memory(Duration::ZERO).with_max_tokens(2);
        registry.add_minted("one").unwrap();
        registry.touch("two");
        let full = registry.add_minted("three").unwrap_err();
        assert!(matches!(full, RegistryError::Full { max: 2 }), "{full}");
        assert!(registry.admit("three").is_err(), "no room for a new name");
        assert!(registry.admit("two").is_ok(), "known tokens stay usable");
        assert!(registry.remove("two"));
        registry.add_minted("three").unwrap();
        assert_eq!(registry.len(), 2);
    }

    #[test]
    fn a_token_in_use_is_not_expired_though_its_context_never_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let day = 24 * 3600;
        let mut state = super::super::store::SavedState::default();
        state.tokens.insert(
            "daily".into(),
            StoredToken {
                context: None,
                minted: true,
                last_used: unix_now() - 20 * day,
                in_transaction: false,
            },
        );
        store.save(&state).unwrap();
        let registry = Registry::open(store.clone(), Duration::from_secs(30 * day)).unwrap();
        registry.touch("daily");
        drop(registry);
        // With a ttl the saved `last_used` of 20 days ago would exceed, the use keeps it.
        let reopened = Registry::open(store, Duration::from_secs(10 * day)).unwrap();
        assert!(reopened.is_minted("daily"), "the use was saved");
    }

    #[test]
    fn uses_are_written_at_most_once_per_interval() {
        let registry = Registry::in_memory(Duration::from_secs(30 * 24 * 3600));
        registry.touch("t");
        let after_first = registry.shared.lock().changed;
        for _ in 0..100 {
            registry.touch("t");
        }
        assert_eq!(registry.shared.lock().changed, after_first);
        assert_eq!(
            touch_interval(Duration::from_secs(60)),
            Duration::from_secs(15)
        );
        assert_eq!(touch_interval(Duration::ZERO), Duration::from_secs(3600));
    }
}
