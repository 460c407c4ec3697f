//! The state file: token contexts written atomically (temp file, fsync, rename) with mode
//! 0600, so an idle exit, a crash or a restart loses no context. Temp files a crashed daemon
//! left behind are removed when the file is loaded. The file holds at most `tokens.max`
//! tokens (the registry refuses more), so each rewrite is bounded.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Context;

/// One token as the registry keeps it (in memory; the file's form is [`disk::Token`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredToken {
    pub context: Option<Context>,
    pub minted: bool,
    /// Seconds since the Unix epoch.
    pub last_used: u64,
    /// The token began a transaction that has not ended. Kept on disk so that, if the daemon
    /// stops (or crashes) meanwhile, the token's next statement is told its transaction is
    /// gone instead of silently running outside it.
    pub in_transaction: bool,
}

/// The context a fresh session starts in, remembered for the connection it was seen on.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLoginContext {
    /// Identifies the connection settings (see `Backend::fingerprint`); a different
    /// connection's defaults are never reused.
    pub connection: String,
    pub context: Context,
}

/// Everything the state file holds, as the registry keeps it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SavedState {
    pub tokens: BTreeMap<String, StoredToken>,
    pub login_context: Option<StoredLoginContext>,
}

/// The on-disk format, version 1: private serde types converted to and from the registry's,
/// so that the in-memory types (and the API's) can change without changing the file. Field
/// order and names here *are* the format; `format_tests` pins it byte for byte.
mod disk {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::{Context, SavedState, StoredLoginContext, StoredToken};

    pub const VERSION: u32 = 1;

    #[derive(Serialize, Deserialize)]
    pub struct File {
        pub version: u32,
        pub tokens: BTreeMap<String, Token>,
        #[serde(default)]
        pub login_context: Option<LoginContext>,
    }

    #[derive(Serialize, Deserialize)]
    pub struct Token {
        context: Option<TokenContext>,
        minted: bool,
        last_used: u64,
        /// Absent in files written before transactions were tracked.
        #[serde(default)]
        in_transaction: bool,
    }

    #[derive(Serialize, Deserialize)]
    pub struct LoginContext {
        connection: String,
        context: TokenContext,
    }

    #[derive(Serialize, Deserialize)]
    struct TokenContext {
        database: Option<String>,
        schema: Option<String>,
        warehouse: Option<String>,
        role: Option<String>,
        /// Absent in files written before query tags were kept.
        #[serde(default)]
        query_tag: Option<String>,
    }

    impl From<&Context> for TokenContext {
        fn from(c: &Context) -> Self {
            Self {
                database: c.database.clone(),
                schema: c.schema.clone(),
                warehouse: c.warehouse.clone(),
                role: c.role.clone(),
                query_tag: c.query_tag.clone(),
            }
        }
    }

    impl From<TokenContext> for Context {
        fn from(c: TokenContext) -> Self {
            Self {
                database: c.database,
                schema: c.schema,
                warehouse: c.warehouse,
                role: c.role,
                query_tag: c.query_tag,
            }
        }
    }

    impl From<&SavedState> for File {
        fn from(state: &SavedState) -> Self {
            let tokens = state
                .tokens
                .iter()
                .map(|(name, t)| {
                    let token = Token {
                        context: t.context.as_ref().map(TokenContext::from),
                        minted: t.minted,
                        last_used: t.last_used,
                        in_transaction: t.in_transaction,
                    };
                    (name.clone(), token)
                })
                .collect();
            let login_context = state.login_context.as_ref().map(|l| LoginContext {
                connection: l.connection.clone(),
                context: TokenContext::from(&l.context),
            });
            Self {
                version: VERSION,
                tokens,
                login_context,
            }
        }
    }

    impl From<File> for SavedState {
        fn from(file: File) -> Self {
            let tokens = file
                .tokens
                .into_iter()
                .map(|(name, t)| {
                    let token = StoredToken {
                        context: t.context.map(Context::from),
                        minted: t.minted,
                        last_used: t.last_used,
                        in_transaction: t.in_transaction,
                    };
                    (name, token)
                })
                .collect();
            let login_context = file.login_context.map(|l| StoredLoginContext {
                connection: l.connection,
                context: l.context.into(),
            });
            Self {
                tokens,
                login_context,
            }
        }
    }
}

/// Reads and writes `tokens.json` in the state directory.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

impl Store {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: crate::config::paths::tokens_file(state_dir),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads saved tokens; a missing file is an empty registry, a damaged one is moved aside
    /// (and reported) rather than stopping the daemon. Temp files of writers that are gone
    /// are removed first.
    pub fn load(&self) -> std::io::Result<SavedState> {
        self.remove_leftover_temp_files();
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SavedState::default()),
            Err(e) => return Err(e),
        };
        match serde_json::from_str::<disk::File>(&text) {
            Ok(file) => Ok(file.into()),
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
        let body = serde_json::to_vec_pretty(&disk::File::from(state))?;
        replace_privately(&self.path, &self.temp_path(std::process::id()), &body)
    }

    /// The temp file process `pid` writes before renaming it over the state file.
    fn temp_path(&self, pid: u32) -> PathBuf {
        self.path.with_extension(format!("json.tmp{pid}"))
    }

    /// Removes `tokens.json.tmp<pid>` files whose writer is gone (a crash between write and
    /// rename leaves one); a file of a live process (another daemon sharing this state
    /// directory) is left alone, as is anything that is not such a temp file.
    fn remove_leftover_temp_files(&self) {
        let (Some(dir), Some(name)) = (self.path.parent(), self.path.file_name()) else {
            return;
        };
        let prefix = format!("{}.tmp", name.to_string_lossy());
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(pid) = file_name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if pid != std::process::id() && process_is_alive(pid) {
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!(path = %entry.path().display(), "removed a temp state file left by a crash")
                }
                Err(e) => {
                    tracing::warn!(path = %entry.path().display(), error = %e, "cannot remove a leftover temp state file")
                }
            }
        }
    }
}

/// Whether a process with this id exists (signal 0 checks without sending anything).
fn process_is_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 performs only the existence and permission checks.
    let sent = unsafe { libc::kill(pid, 0) };
    sent == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Seconds since the Unix epoch, for `last_used`.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// Replaces `path` with `body` so that a reader or a crash sees the old file or the new one,
/// never a part: written to `temp` (mode 0600, beside `path`), fsynced, renamed over `path`.
/// The daemon's files of record (this state file, the statements file) are written this way.
pub(crate) fn replace_privately(path: &Path, temp: &Path, body: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(temp)?;
    file.write_all(body)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(temp, path)
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
    fn temp_files_left_by_crashed_writers_are_removed_on_load() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        store.save(&SavedState::default()).unwrap();
        // A pid that cannot be running (above the kernel's pid limit), our own (a previous
        // process with our pid crashed), and a live one that is not us (our parent).
        let dead = store.temp_path(i32::MAX as u32);
        let ours = store.temp_path(std::process::id());
        let live = store.temp_path(std::os::unix::process::parent_id());
        let unrelated = dir.path().join("tokens.json.tmpnotapid");
        for path in [&dead, &ours, &live, &unrelated] {
            std::fs::write(path, "{partial").unwrap();
        }
        assert_eq!(store.load().unwrap(), SavedState::default());
        assert!(!dead.exists(), "a dead writer's temp file is removed");
        assert!(
            !ours.exists(),
            "a temp file under our own pid is a leftover"
        );
        assert!(live.exists(), "a live process's temp file is not touched");
        assert!(
            unrelated.exists(),
            "only tokens.json.tmp<pid> files are removed"
        );
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

#[cfg(test)]
mod format_tests {
    use super::*;

    /// `tokens.json` as the daemon wrote it before the file had types of its own: a token
    /// with a full context, one with none, one without `in_transaction` (older still), and
    /// the login defaults.
    const TODAYS_FILE: &str = r#"{
  "version": 1,
  "tokens": {
    "default": {
      "context": {
        "database": "DB",
        "schema": "PUBLIC",
        "warehouse": "WH",
        "role": null,
        "query_tag": "tag"
      },
      "minted": false,
      "last_used": 1700000000,
      "in_transaction": true
    },
    "minted": {
      "context": null,
      "minted": true,
      "last_used": 1700000001,
      "in_transaction": false
    }
  },
  "login_context": {
    "connection": "u@acct",
    "context": {
      "database": null,
      "schema": null,
      "warehouse": "COMPUTE_WH",
      "role": "PUBLIC",
      "query_tag": null
    }
  }
}"#;

    #[test]
    fn a_file_in_todays_format_is_read_and_written_back_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        std::fs::write(store.path(), TODAYS_FILE).unwrap();
        let state = store.load().unwrap();
        let default = &state.tokens["default"];
        let context = default.context.as_ref().unwrap();
        assert_eq!(context.database.as_deref(), Some("DB"));
        assert_eq!(context.schema.as_deref(), Some("PUBLIC"));
        assert_eq!(context.warehouse.as_deref(), Some("WH"));
        assert_eq!(context.role, None);
        assert_eq!(context.query_tag.as_deref(), Some("tag"));
        assert!(!default.minted && default.in_transaction);
        assert_eq!(default.last_used, 1_700_000_000);
        let minted = &state.tokens["minted"];
        assert!(minted.minted && minted.context.is_none() && !minted.in_transaction);
        let login = state.login_context.as_ref().unwrap();
        assert_eq!(login.connection, "u@acct");
        assert_eq!(login.context.warehouse.as_deref(), Some("COMPUTE_WH"));
        store.save(&state).unwrap();
        assert_eq!(std::fs::read_to_string(store.path()).unwrap(), TODAYS_FILE);
    }

    #[test]
    fn older_files_without_newer_fields_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let old = r#"{"version":1,"tokens":{"t":{"context":{"database":"DB","schema":null,"warehouse":null,"role":null},"minted":false,"last_used":3}}}"#;
        std::fs::write(store.path(), old).unwrap();
        let state = store.load().unwrap();
        let token = &state.tokens["t"];
        assert!(!token.in_transaction);
        assert_eq!(token.context.as_ref().unwrap().query_tag, None);
        assert!(state.login_context.is_none());
        assert!(!dir.path().join("tokens.json.damaged").exists());
    }
}
