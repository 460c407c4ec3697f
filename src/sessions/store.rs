//! The state file: token contexts written atomically (temp file, fsync, rename) with mode
//! 0600, so an idle exit, a crash or a restart loses no context.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::Context;

/// One token as persisted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredToken {
    pub context: Option<Context>,
    pub minted: bool,
    /// Seconds since the Unix epoch.
    pub last_used: u64,
    /// The token began a transaction that has not ended. Kept on disk so that, if the daemon
    /// stops (or crashes) meanwhile, the token's next statement is told its transaction is
    /// gone instead of silently running outside it.
    #[serde(default)]
    pub in_transaction: bool,
}

/// The context a fresh session starts in, remembered for the connection it was seen on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredLoginContext {
    /// Identifies the connection settings (see `Backend::fingerprint`); a different
    /// connection's defaults are never reused.
    pub connection: String,
    pub context: Context,
}

/// Everything in the state file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SavedState {
    pub tokens: BTreeMap<String, StoredToken>,
    #[serde(default)]
    pub login_context: Option<StoredLoginContext>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    #[serde(flatten)]
    state: SavedState,
}

/// Reads and writes `tokens.json` in the state directory.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

impl Store {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join("tokens.json"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads saved tokens; a missing file is an empty registry, a damaged one is moved aside
    /// (and reported) rather than stopping the daemon.
    pub fn load(&self) -> std::io::Result<SavedState> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SavedState::default()),
            Err(e) => return Err(e),
        };
        match serde_json::from_str::<StateFile>(&text) {
            Ok(file) => Ok(file.state),
            Err(e) => {
                let aside = self.path.with_extension("json.damaged");
                tracing::warn!(path = %self.path.display(), error = %e, moved_to = %aside.display(), "state file unreadable; starting with no saved contexts");
                std::fs::rename(&self.path, aside)?;
                Ok(SavedState::default())
            }
        }
    }

    /// Replaces the file with `tokens`, atomically.
    pub fn save(&self, state: &SavedState) -> std::io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        let body = serde_json::to_vec_pretty(&StateFile {
            version: 1,
            state: state.clone(),
        })?;
        let temp = self
            .path
            .with_extension(format!("json.tmp{}", std::process::id()));
        {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temp)?;
            file.write_all(&body)?;
            file.sync_all()?;
        }
        std::fs::rename(&temp, &self.path)?;
        Ok(())
    }
}

/// Seconds since the Unix epoch, for `last_used`.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_private_and_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(&dir.path().join("state"));
        assert_eq!(store.load().unwrap(), SavedState::default());
        let mut tokens = BTreeMap::new();
        tokens.insert(
            "a".to_string(),
            StoredToken {
                context: Some(Context {
                    database: Some("DB".into()),
                    ..Context::default()
                }),
                minted: true,
                last_used: 5,
                in_transaction: false,
            },
        );
        let state = SavedState {
            tokens,
            login_context: Some(StoredLoginContext {
                connection: "u@a".into(),
                context: Context::default(),
            }),
        };
        store.save(&state).unwrap();
        assert_eq!(store.load().unwrap(), state);
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("state"))
            .unwrap()
            .collect();
        assert_eq!(leftovers.len(), 1, "no temp file is left behind");
    }

    #[test]
    fn a_damaged_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        std::fs::write(store.path(), "{not json").unwrap();
        assert_eq!(store.load().unwrap(), SavedState::default());
        assert!(dir.path().join("tokens.json.damaged").exists());
    }
}
