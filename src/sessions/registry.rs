//! The token → context registry.
//!
//! It holds, per token, the context Snowflake last reported (or `None` before the token's
//! first statement, when the connection's login defaults apply), whether the token was minted
//! by `session new` (only minted tokens are accepted over TCP), and when it was last used.
//! Every change is persisted through [`Store`] before the call returns, so no acknowledged
//! `USE` is lost by a crash.

use std::sync::Mutex;
use std::time::Duration;

use super::Context;
use super::store::{SavedState, Store, StoredLoginContext, StoredToken, unix_now};

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
    state: Mutex<SavedState>,
    store: Option<Store>,
    ttl: Duration,
}

impl Registry {
    /// An in-memory registry (tests, or when persistence is unavailable).
    pub fn in_memory(ttl: Duration) -> Self {
        Self {
            state: Mutex::new(SavedState::default()),
            store: None,
            ttl,
        }
    }

    /// Loads saved tokens (dropping those unused for longer than `ttl`).
    pub fn open(store: Store, ttl: Duration) -> std::io::Result<Self> {
        let mut state = store.load()?;
        let now = unix_now();
        let before = state.tokens.len();
        state
            .tokens
            .retain(|_, t| ttl.is_zero() || now.saturating_sub(t.last_used) <= ttl.as_secs());
        tracing::info!(path = %store.path().display(), restored = state.tokens.len(), expired = before - state.tokens.len(), "token contexts loaded");
        Ok(Self {
            state: Mutex::new(state),
            store: Some(store),
            ttl,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SavedState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn persist(&self, state: &SavedState) {
        if let Some(store) = &self.store
            && let Err(e) = store.save(state)
        {
            tracing::error!(path = %store.path().display(), error = %e, "cannot save token contexts");
        }
    }

    /// The token's saved context; `None` if it has none yet (login defaults apply).
    pub fn context(&self, token: &str) -> Option<Context> {
        self.lock()
            .tokens
            .get(token)
            .and_then(|t| t.context.clone())
    }

    /// Whether `session new` minted this token (and `session end` has not forgotten it).
    pub fn is_minted(&self, token: &str) -> bool {
        self.lock().tokens.get(token).is_some_and(|t| t.minted)
    }

    /// Records a token's use, creating it if needed.
    pub fn touch(&self, token: &str) {
        let mut state = self.lock();
        let tokens = &mut state.tokens;
        tokens
            .entry(token.to_string())
            .or_insert_with(|| StoredToken {
                context: None,
                minted: false,
                last_used: 0,
                in_transaction: false,
            })
            .last_used = unix_now();
    }

    /// Stores the context Snowflake reported for the token.
    pub fn set_context(&self, token: &str, context: Context) {
        let mut state = self.lock();
        let tokens = &mut state.tokens;
        let entry = tokens
            .entry(token.to_string())
            .or_insert_with(|| StoredToken {
                context: None,
                minted: false,
                last_used: unix_now(),
                in_transaction: false,
            });
        if entry.context.as_ref() == Some(&context) {
            return;
        }
        entry.context = Some(context);
        entry.last_used = unix_now();
        self.persist(&state);
    }

    /// Whether the token's last statements left a transaction open.
    pub fn in_transaction(&self, token: &str) -> bool {
        self.lock()
            .tokens
            .get(token)
            .is_some_and(|t| t.in_transaction)
    }

    /// Records that the token's transaction began (`true`) or ended (`false`); persisted.
    pub fn set_in_transaction(&self, token: &str, open: bool) {
        let mut state = self.lock();
        let Some(entry) = state.tokens.get_mut(token) else {
            return;
        };
        if entry.in_transaction != open {
            entry.in_transaction = open;
            self.persist(&state);
        }
    }

    /// Forgets the token's own context (it falls back to the login defaults); keeps the token.
    pub fn clear_context(&self, token: &str) {
        let mut state = self.lock();
        if let Some(entry) = state.tokens.get_mut(token)
            && entry.context.take().is_some()
        {
            self.persist(&state);
        }
    }

    /// Registers a freshly minted token.
    pub fn add_minted(&self, token: &str) {
        let mut state = self.lock();
        let tokens = &mut state.tokens;
        tokens.insert(
            token.to_string(),
            StoredToken {
                context: None,
                minted: true,
                last_used: unix_now(),
                in_transaction: false,
            },
        );
        self.persist(&state);
    }

    /// Forgets a token; returns whether it existed.
    pub fn remove(&self, token: &str) -> bool {
        let mut state = self.lock();
        let tokens = &mut state.tokens;
        let existed = tokens.remove(token).is_some();
        if existed {
            self.persist(&state);
        }
        existed
    }

    /// Forgets tokens unused for longer than the configured time; returns their names.
    pub fn expire_unused(&self) -> Vec<String> {
        if self.ttl.is_zero() {
            return Vec::new();
        }
        let now = unix_now();
        let mut state = self.lock();
        let tokens = &mut state.tokens;
        let expired: Vec<String> = tokens
            .iter()
            .filter(|(_, t)| now.saturating_sub(t.last_used) > self.ttl.as_secs())
            .map(|(name, _)| name.clone())
            .collect();
        for name in &expired {
            tokens.remove(name);
        }
        if !expired.is_empty() {
            self.persist(&state);
        }
        expired
    }

    /// The login defaults last seen on the connection identified by `connection`.
    pub fn login_context(&self, connection: &str) -> Option<Context> {
        let state = self.lock();
        let saved = state.login_context.as_ref()?;
        (saved.connection == connection).then(|| saved.context.clone())
    }

    /// Remembers the login defaults of `connection` (persisted when they change).
    pub fn set_login_context(&self, connection: &str, context: &Context) {
        let mut state = self.lock();
        let fresh = StoredLoginContext {
            connection: connection.to_string(),
            context: context.clone(),
        };
        if state.login_context.as_ref() == Some(&fresh) {
            return;
        }
        state.login_context = Some(fresh);
        self.persist(&state);
    }

    /// How many tokens are known.
    pub fn len(&self) -> usize {
        self.lock().tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().tokens.is_empty()
    }

    /// Every token, for `session list`.
    pub fn list(&self) -> Vec<TokenSummary> {
        let now = unix_now();
        self.lock()
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
        registry.add_minted("m");
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
}
