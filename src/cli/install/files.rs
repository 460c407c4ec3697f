//! The files `install` writes and `uninstall` removes: what is at a path, what to do with a
//! file already there (only files carrying the marker are `install`'s own), writing
//! atomically with a fixed mode, removing — each reported in one line.

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::templates::has_marker;
use super::{Report, Reported};

/// Unit files and the plist hold no secrets; systemd and launchd only need to read them.
pub const FILE_MODE: u32 = 0o644;

/// A file to write, with its full content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub path: PathBuf,
    pub content: String,
}

/// What is at a file's path before `install` or `uninstall` acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    Absent,
    /// A regular file with UTF-8 content.
    Text(String),
    /// A symlink, a directory, or a file that is not text: never written by `install`, so
    /// someone else manages it.
    Other,
}

impl Existing {
    /// What is at `path`, without following a symlink: a link there is someone's own
    /// arrangement (a dotfiles repository, say), which `install` must not write through.
    pub fn read(path: &Path, report: &mut Report) -> Result<Existing, Reported> {
        let read = || -> io::Result<Existing> {
            let metadata = match fs::symlink_metadata(path) {
                Ok(metadata) => metadata,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Existing::Absent),
                Err(e) => return Err(e),
            };
            if !metadata.is_file() {
                return Ok(Existing::Other);
            }
            Ok(String::from_utf8(fs::read(path)?).map_or(Existing::Other, Existing::Text))
        };
        read().map_err(|e| report.error(format!("cannot read {}: {e}", path.display())))
    }

    /// Written by `install` (it carries the marker), so `install` updates it and `uninstall`
    /// may remove it.
    pub fn is_ours(&self) -> bool {
        matches!(self, Existing::Text(text) if has_marker(text))
    }
}

/// What `install` does with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteAction {
    Create,
    /// The file already holds exactly this content; it is left as it is.
    Unchanged,
    /// An earlier `install` wrote it (the marker is there); it is rewritten.
    Update,
    /// Someone else's file, overwritten because `--force` was given.
    Replace,
    /// Someone else's file, kept: `install` stops before changing anything.
    Refuse,
}

impl WriteAction {
    /// Files carrying the marker are brought up to date; anything else is the user's and only
    /// replaced when forced.
    pub fn decide(existing: &Existing, rendered: &str, force: bool) -> WriteAction {
        match existing {
            Existing::Absent => WriteAction::Create,
            Existing::Text(text) if text == rendered => WriteAction::Unchanged,
            _ if existing.is_ours() => WriteAction::Update,
            _ if force => WriteAction::Replace,
            _ => WriteAction::Refuse,
        }
    }

    /// Whether the file's content changes.
    pub fn writes(self) -> bool {
        matches!(
            self,
            WriteAction::Create | WriteAction::Update | WriteAction::Replace
        )
    }
}

/// Decides what to do with each file and stops before anything is written if one of them
/// belongs to someone else, so that a refused install leaves no half-written set behind.
/// Otherwise writes what needs writing and reports every file, written or not.
pub fn write_all(
    files: &[FileSpec],
    force: bool,
    report: &mut Report,
) -> Result<Vec<WriteAction>, Reported> {
    let mut actions = Vec::with_capacity(files.len());
    for file in files {
        let existing = Existing::read(&file.path, report)?;
        actions.push(WriteAction::decide(&existing, &file.content, force));
    }
    let mut refused = false;
    for (file, _) in files
        .iter()
        .zip(&actions)
        .filter(|(_, a)| **a == WriteAction::Refuse)
    {
        refused = true;
        report.warn(format!(
            "{} exists and was not written by `snowflaked install` (it has no marker line)",
            file.path.display()
        ));
    }
    if refused {
        return Err(report.error(
            "nothing was changed. Move those files away, or run `snowflaked install --force` to \
             replace them",
        ));
    }
    for (file, action) in files.iter().zip(&actions) {
        if action.writes() {
            write_file(file)
                .map_err(|e| report.error(format!("cannot write {}: {e}", file.path.display())))?;
        }
        let verb = match action {
            WriteAction::Create => "created",
            WriteAction::Unchanged => "unchanged",
            WriteAction::Update => "updated",
            WriteAction::Replace | WriteAction::Refuse => "replaced",
        };
        report.say(format!("{verb:<9} {}", file.path.display()));
    }
    Ok(actions)
}

/// Creates `dir` (and its parents) and makes it private, also when it already existed: a
/// directory holding the API socket or the daemon's logs must be the user's alone.
pub fn ensure_private_dir(dir: &Path, report: &mut Report) -> Result<(), Reported> {
    fs::create_dir_all(dir)
        .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(0o700)))
        .map_err(|e| report.error(format!("cannot create {}: {e}", dir.display())))?;
    report.say(format!("{:<9} {} (mode 0700)", "directory", dir.display()));
    Ok(())
}

/// Removes the file at `path`.
pub fn remove(path: &Path, report: &mut Report) -> Result<(), Reported> {
    match fs::remove_file(path) {
        Ok(()) => {
            report.say(format!("{:<9} {}", "removed", path.display()));
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(report.error(format!("cannot remove {}: {e}", path.display()))),
    }
}

/// Removes `link` if it is a symlink to `target`, which is what `systemctl enable` made of
/// it; anything else there is left alone.
pub fn remove_link_to(link: &Path, target: &Path, report: &mut Report) -> Result<(), Reported> {
    match fs::read_link(link) {
        Ok(points_to) if points_to == target => remove(link, report),
        _ => Ok(()),
    }
}

/// Writes through a temporary file in the same directory and a rename, so the init system
/// never reads a half-written unit, and sets the mode explicitly rather than leaving it to
/// the user's umask.
fn write_file(file: &FileSpec) -> io::Result<()> {
    let dir = file.path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = file.path.file_name().unwrap_or_default().to_string_lossy();
    // A leading dot and a trailing suffix: neither systemd nor launchd takes it for a unit.
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> io::Result<()> {
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(&temporary)?;
        out.write_all(file.content.as_bytes())?;
        out.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
        drop(out);
        fs::rename(&temporary, &file.path)
    };
    let result = write();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::install::templates::MARKER;

    #[test]
    fn existing_files_are_read_without_following_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let read = |path: &Path| Existing::read(path, &mut Report::default()).unwrap();
        let file = dir.path().join("a");
        assert_eq!(read(&file), Existing::Absent);
        fs::write(&file, "text").unwrap();
        assert_eq!(read(&file), Existing::Text("text".into()));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read(&link), Existing::Other);
        assert_eq!(read(dir.path()), Existing::Other);
    }

    #[test]
    fn write_decisions() {
        let ours = Existing::Text(format!("# {MARKER}\nold\n"));
        let rendered = format!("# {MARKER}\nnew\n");
        let theirs = Existing::Text("[Unit]\n".into());
        let decide = WriteAction::decide;
        assert_eq!(
            decide(&Existing::Absent, &rendered, false),
            WriteAction::Create
        );
        let same = Existing::Text(rendered.clone());
        assert_eq!(decide(&same, &rendered, false), WriteAction::Unchanged);
        assert_eq!(decide(&ours, &rendered, false), WriteAction::Update);
        assert_eq!(decide(&theirs, &rendered, false), WriteAction::Refuse);
        assert_eq!(decide(&theirs, &rendered, true), WriteAction::Replace);
        assert_eq!(
            decide(&Existing::Other, &rendered, false),
            WriteAction::Refuse
        );
        assert_eq!(
            decide(&Existing::Other, &rendered, true),
            WriteAction::Replace
        );
        assert!(!WriteAction::Unchanged.writes() && WriteAction::Update.writes());
        assert!(ours.is_ours() && !theirs.is_ours() && !Existing::Other.is_ours());
    }
}
