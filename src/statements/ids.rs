//! The statements file: which statement id belongs to which token and Snowflake query id, so
//! `result ID` still works after the daemon restarted (the rows then come from Snowflake's
//! result cache). A small file of its own next to the state file, written atomically (temp
//! file, fsync, rename) with mode 0600; a file that cannot be read is set aside and the daemon
//! starts without the old ids rather than not at all.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::paths::STATEMENTS_FILE;

/// A finished statement as remembered across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remembered {
    pub id: String,
    pub token: String,
    /// Snowflake's query id, when the statement got that far.
    #[serde(default)]
    pub query_id: Option<String>,
    /// How it ended: `succeeded`, `failed` or `cancelled`.
    pub state: String,
    /// The first line of the SQL.
    pub sql: String,
    /// Milliseconds since the Unix epoch.
    pub started_ms: u64,
    pub elapsed_ms: u64,
    pub rows: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    statements: Vec<Remembered>,
}

/// Reads and writes the statements file.
#[derive(Debug, Clone)]
pub struct IdsFile {
    path: PathBuf,
}

impl IdsFile {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: crate::config::paths::statements_file(state_dir),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What an earlier daemon remembered; nothing when there is no (readable) file.
    pub fn load(&self) -> Vec<Remembered> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot read the statements file; earlier statement ids are forgotten");
                return Vec::new();
            }
        };
        match serde_json::from_str::<Saved>(&text) {
            Ok(saved) => saved.statements,
            Err(e) => {
                let aside = self.path.with_extension("json.unreadable");
                let _ = std::fs::rename(&self.path, &aside);
                tracing::warn!(path = %self.path.display(), aside = %aside.display(), error = %e, "the statements file is malformed; set aside, earlier statement ids are forgotten");
                Vec::new()
            }
        }
    }

    /// Replaces the file's contents atomically.
    pub fn save(&self, statements: &[Remembered]) -> std::io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let temp = dir.join(format!(".{STATEMENTS_FILE}.{}.tmp", std::process::id()));
        let body = serde_json::to_vec(&Saved {
            statements: statements.to_vec(),
        })
        .map_err(std::io::Error::other)?;
        crate::sessions::store::replace_privately(&self.path, &temp, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn round_trips_privately_and_survives_a_malformed_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = IdsFile::new(&dir.path().join("state"));
        assert!(file.load().is_empty());
        let one = Remembered {
            id: "q-1".into(),
            token: "default".into(),
            query_id: Some("01b2".into()),
            state: "succeeded".into(),
            sql: "SELECT 1".into(),
            started_ms: 5,
            elapsed_ms: 7,
            rows: Some(1),
        };
        file.save(std::slice::from_ref(&one)).unwrap();
        assert_eq!(file.load(), vec![one]);
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(file.path(), "{not json").unwrap();
        assert!(file.load().is_empty());
        assert!(!file.path().exists(), "the malformed file was set aside");
    }
}
