//! The file-system side of `install` and `uninstall`: reading what is at a path, writing a
//! file atomically with a fixed mode, removing a file or an enable link — each reported in
//! one line. Decisions about *whether* to write or remove are [`super::plan`]'s.

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::plan::{self, Existing, FileSpec, WriteAction};
use super::report::{Report, Reported};

/// What is at `path`, without following a symlink: a link there is someone's own
/// arrangement (a dotfiles repository, say), which `install` must not write through.
pub fn read_existing(path: &Path) -> io::Result<Existing> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Existing::Absent),
        Err(e) => return Err(e),
    };
    if !metadata.is_file() {
        return Ok(Existing::Other);
    }
    Ok(match String::from_utf8(fs::read(path)?) {
        Ok(text) => Existing::Text(text),
        Err(_) => Existing::Other,
    })
}

/// Decides what to do with each file and stops before anything is written if one of them
/// belongs to someone else, so that a refused install leaves no half-written set behind.
pub fn prepare_writes(
    files: &[FileSpec],
    force: bool,
    report: &mut Report,
) -> Result<Vec<WriteAction>, Reported> {
    let mut actions = Vec::with_capacity(files.len());
    for file in files {
        let existing = read_existing(&file.path)
            .map_err(|e| report.error(format!("cannot read {}: {e}", file.path.display())))?;
        actions.push(plan::write_action(&existing, &file.content, force));
    }
    let refused: Vec<&FileSpec> = files
        .iter()
        .zip(&actions)
        .filter(|(_, action)| **action == WriteAction::Refuse)
        .map(|(file, _)| file)
        .collect();
    if refused.is_empty() {
        return Ok(actions);
    }
    for file in &refused {
        report.warn(format!(
            "{} exists and was not written by `snowflaked install` (it has no marker line)",
            file.path.display()
        ));
    }
    Err(report.error(
        "nothing was changed. Move those files away, or run `snowflaked install --force` to \
         replace them",
    ))
}

/// Writes the files `actions` says to write (creating their directory) and reports every
/// file, written or not.
pub fn apply_writes(
    files: &[FileSpec],
    actions: &[WriteAction],
    report: &mut Report,
) -> Result<(), Reported> {
    for (file, action) in files.iter().zip(actions) {
        if action.writes() {
            write_file(file)
                .map_err(|e| report.error(format!("cannot write {}: {e}", file.path.display())))?;
        }
        report.say(format!("{:<9} {}", action.verb(), file.path.display()));
    }
    Ok(())
}

/// Creates `dir` (and its parents) and gives it `mode`, also when it already existed: a
/// directory holding the API socket or the daemon's logs must be the user's alone.
pub fn ensure_private_dir(dir: &Path, mode: u32) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
}

/// The permission bits of the file at `path`, if there is one.
pub fn mode(path: &Path) -> Option<u32> {
    fs::metadata(path).ok().map(|m| m.permissions().mode())
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
    let name = file
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A leading dot and a trailing suffix: neither systemd nor launchd takes it for a unit.
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = write_then_rename(&temporary, file);
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

fn write_then_rename(temporary: &Path, file: &FileSpec) -> io::Result<()> {
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(file.mode)
        .open(temporary)?;
    out.write_all(file.content.as_bytes())?;
    out.set_permissions(fs::Permissions::from_mode(file.mode))?;
    drop(out);
    fs::rename(temporary, &file.path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::install::templates::MARKER;

    fn spec(path: &Path, content: &str) -> FileSpec {
        FileSpec {
            path: path.to_path_buf(),
            content: content.to_string(),
            mode: 0o644,
        }
    }

    #[test]
    fn existing_files_are_read_without_following_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a");
        assert_eq!(read_existing(&file).unwrap(), Existing::Absent);
        fs::write(&file, "text").unwrap();
        assert_eq!(read_existing(&file).unwrap(), Existing::Text("text".into()));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_existing(&link).unwrap(), Existing::Other);
        assert_eq!(read_existing(dir.path()).unwrap(), Existing::Other);
    }

    #[test]
    fn a_foreign_file_stops_the_whole_set_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join("a.socket");
        let theirs = dir.path().join("b.service");
        fs::write(&theirs, "[Service]\n").unwrap();
        let files = [
            spec(&mine, &format!("# {MARKER}\n")),
            spec(&theirs, &format!("# {MARKER}\n")),
        ];
        let mut report = Report::default();
        assert_eq!(prepare_writes(&files, false, &mut report), Err(Reported));
        assert!(!mine.exists());
        assert!(
            report
                .text()
                .contains("b.service exists and was not written")
        );
        let actions = prepare_writes(&files, true, &mut report).unwrap();
        assert_eq!(actions, [WriteAction::Create, WriteAction::Replace]);
    }

    #[test]
    fn files_are_written_with_their_mode_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.socket");
        let files = [spec(&path, "content\n")];
        let mut report = Report::default();
        apply_writes(&files, &[WriteAction::Create], &mut report).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "content\n");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        assert_eq!(
            fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1,
            "no temporary left"
        );
        assert!(report.text().starts_with("created   "));
    }

    #[test]
    fn only_links_to_the_unit_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let unit = dir.path().join("x.socket");
        let other = dir.path().join("y.socket");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&other, &link).unwrap();
        let mut report = Report::default();
        remove_link_to(&link, &unit, &mut report).unwrap();
        assert!(fs::symlink_metadata(&link).is_ok());
        fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&unit, &link).unwrap();
        remove_link_to(&link, &unit, &mut report).unwrap();
        assert!(fs::symlink_metadata(&link).is_err());
    }
}
