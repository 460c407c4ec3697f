//! Sockets the daemon binds itself when no init system handed any over.
//!
//! The Unix socket's directory is created 0700 and the socket chmod'ed 0600. A socket file
//! left by a dead daemon (nothing answers a connect) is replaced; one where a daemon still
//! answers is not stolen. TCP is accepted on loopback addresses only.
//!
//! A bound socket file is remembered by device and inode ([`BoundSocket`]), so the daemon
//! removes the path only while it is still the socket it bound: a successor that replaced it
//! keeps its own.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// A socket file this process created, identified by device, inode and status-change time
/// (a file system may give a new socket the inode number of one just removed; its ctime then
/// differs unless both fall in the same clock tick).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundSocket {
    pub path: PathBuf,
    identity: FileIdentity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    device: u64,
    inode: u64,
    changed: (i64, i64),
}

impl FileIdentity {
    fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            device: meta.dev(),
            inode: meta.ino(),
            changed: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

impl BoundSocket {
    /// Remembers the socket file now at `path`.
    fn at(path: &Path) -> io::Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            identity: FileIdentity::of(&std::fs::symlink_metadata(path)?),
        })
    }

    /// Removes the file if it is still the socket this process bound; returns whether it
    /// did. Call it while the listener is still open: a daemon started meanwhile then finds
    /// the socket answering and does not replace it, so the check and the unlink cannot be
    /// split by a replacement.
    pub fn remove_if_ours(&self) -> io::Result<bool> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if FileIdentity::of(&meta) == self.identity => {
                std::fs::remove_file(&self.path)?;
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Binds the API socket at `path`.
pub fn bind_unix(path: &Path) -> io::Result<(UnixListener, BoundSocket)> {
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "another snowflaked is already listening on {}",
                        path.display()
                    ),
                ));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                ) =>
            {
                tracing::info!(path = %path.display(), "replacing a stale socket left by a daemon that is gone");
                std::fs::remove_file(path)?;
            }
            Err(e) => return Err(e),
        },
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; refusing to replace it",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let bound = BoundSocket::at(path)?;
    Ok((listener, bound))
}

/// Binds a loopback TCP address.
pub fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "refusing to listen on {addr}: snowflaked serves TCP on loopback addresses only"
            ),
        ));
    }
    TcpListener::bind(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_socket_is_replaced_and_a_live_one_is_not_stolen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/api.sock");
        let (live, _) = bind_unix(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        let err = bind_unix(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        drop(live);
        // The file remains but nobody listens: stale.
        assert!(path.exists());
        let _again = bind_unix(&path).unwrap();
    }

    #[test]
    fn only_the_socket_this_process_bound_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.sock");
        let (first, ours) = bind_unix(&path).unwrap();
        drop(first);
        // A second link keeps the first inode allocated, so the successor's socket cannot
        // reuse its number (which the identity check also guards against, by ctime).
        std::fs::hard_link(&path, dir.path().join("first.sock")).unwrap();
        // A successor replaces the stale socket with its own.
        let (_successor, theirs) = bind_unix(&path).unwrap();
        assert!(!ours.remove_if_ours().unwrap(), "not ours any more");
        assert!(path.exists(), "the successor's socket is kept");
        assert!(theirs.remove_if_ours().unwrap());
        assert!(!path.exists());
        assert!(!theirs.remove_if_ours().unwrap(), "already gone");
    }

    #[test]
    fn a_regular_file_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.sock");
        std::fs::write(&path, "keep me").unwrap();
        assert!(bind_unix(&path).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
    }

    #[test]
    fn tcp_must_be_loopback() {
        assert!(bind_tcp("0.0.0.0:0".parse().unwrap()).is_err());
        assert!(bind_tcp("127.0.0.1:0".parse().unwrap()).is_ok());
    }
}
