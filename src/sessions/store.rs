//! The state file: token contexts written atomically (temp file, fsync, rename) with mode
//! 0600, so an idle exit, a crash or a restart loses no context. Temp files a crashed daemon
//! left behind are removed when the file is loaded. The file holds at most `tokens.max`
//! tokens (the registry refuses more), so each rewrite is bounded.

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
    /// (and reported) rather than stopping the daemon. Temp files of writers that are gone
    /// are removed first.
    pub fn load(&self) -> std::io::Result<SavedState> {
        self.remove_leftover_temp_files();
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
        let temp = self.temp_path(std::process::id());
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
