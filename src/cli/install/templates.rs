//! The init-system files `snowflaked install` writes, rendered from the templates in
//! `packaging/` (embedded at build time, so an installed binary needs no source tree).
//!
//! Pure: rendering replaces the placeholders with values escaped for the file's syntax and
//! puts a marker line on top, by which `uninstall` later recognises the files as its own. It
//! never touches the disk; validation errors name the value that cannot be written.

use std::path::{Path, PathBuf};

use crate::config::paths;

/// `packaging/systemd/snowflaked.socket`.
pub const SOCKET_TEMPLATE: &str = include_str!("../../../packaging/systemd/snowflaked.socket");
/// `packaging/systemd/snowflaked-tcp.socket`.
pub const TCP_SOCKET_TEMPLATE: &str =
    include_str!("../../../packaging/systemd/snowflaked-tcp.socket");
/// `packaging/systemd/snowflaked.service`.
pub const SERVICE_TEMPLATE: &str = include_str!("../../../packaging/systemd/snowflaked.service");
/// `packaging/launchd/com.snowflaked.agent.plist`.
pub const PLIST_TEMPLATE: &str =
    include_str!("../../../packaging/launchd/com.snowflaked.agent.plist");

/// Replaced by the binary's absolute path in every template.
pub const BIN_PLACEHOLDER: &str = "@SNOWFLAKED_BIN@";
/// Replaced by the user's home in the plist: launchd expands neither `~` nor variables.
pub const HOME_PLACEHOLDER: &str = "@HOME@";

/// The phrase on top of every file `install` writes. A file without it was not written by
/// `install` (or was replaced by the user), so neither `install` nor `uninstall` touches it
/// without being told to.
pub const MARKER: &str = "Written by `snowflaked install`";

/// A path that cannot be written into a unit or the plist safely, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path:?} {reason}")]
pub struct RenderError {
    pub path: PathBuf,
    pub reason: &'static str,
}

fn refuse<T>(path: &Path, reason: &'static str) -> Result<T, RenderError> {
    Err(RenderError {
        path: path.to_path_buf(),
        reason,
    })
}

/// Unit files and plists are UTF-8 text.
const NOT_UTF8: &str = "is not valid UTF-8";
/// Init systems run with another working directory.
const NOT_ABSOLUTE: &str = "is not an absolute path";
/// A newline or other control character would end the line or the XML text early.
const CONTROL: &str = "contains a control character";
/// systemd refuses them in an executable's path, whatever the escaping.
const UNSAFE_FOR_SYSTEMD: &str = "contains a quote or a backslash, which systemd does not \
     accept in the path of the program it starts; move the binary to a plainer path";
/// The plist's comments name the paths, and XML comments cannot hold `--`.
const DOUBLE_HYPHEN: &str = "contains \"--\", which the launchd plist cannot hold in its comments";
/// `sun_path` holds 104 bytes on macOS, including the terminating NUL.
const MACOS_SUN_PATH_MAX: usize = 103;
const TOO_LONG: &str =
    "is longer than the 103 bytes a Unix socket address holds on macOS (the launchd socket)";

/// Renders one systemd unit: the marker on top and `@SNOWFLAKED_BIN@` replaced by `binary`,
/// escaped for `ExecStart=`.
pub fn render_unit(template: &str, unit: &str, binary: &Path) -> Result<String, RenderError> {
    let exec = systemd_exec_path(binary)?;
    let header = format!(
        "# {MARKER} from packaging/systemd/{unit}; `snowflaked uninstall` removes it.\n\
         # Running install again overwrites changes made here: put your own settings in a\n\
         # drop-in with `systemctl --user edit {unit}` instead.\n"
    );
    Ok(with_final_newline(
        header + &template.replace(BIN_PLACEHOLDER, &exec),
    ))
}

/// Renders the launchd agent: the marker after the XML declaration (which must come first),
/// `@SNOWFLAKED_BIN@` and `@HOME@` replaced by XML-escaped paths.
pub fn render_plist(binary: &Path, home: &Path) -> Result<String, RenderError> {
    let binary_text = plist_path(binary)?;
    let home_text = plist_path(home)?;
    let socket = paths::launchd_socket(home);
    if socket.as_os_str().len() > MACOS_SUN_PATH_MAX {
        return refuse(&socket, TOO_LONG);
    }
    let body = PLIST_TEMPLATE
        .replace(BIN_PLACEHOLDER, &binary_text)
        .replace(HOME_PLACEHOLDER, &home_text);
    let header = format!(
        "<!-- {MARKER}; `snowflaked uninstall` removes it. Running install again overwrites \
         changes made here. -->\n"
    );
    let rendered = match body.split_once('\n') {
        Some((declaration, rest)) if declaration.starts_with("<?xml") => {
            format!("{declaration}\n{header}{rest}")
        }
        _ => header + &body,
    };
    Ok(with_final_newline(rendered))
}

/// Whether a file's content carries the marker `install` writes.
pub fn has_marker(content: &str) -> bool {
    content.contains(MARKER)
}

/// `path` as the command word of `ExecStart=`: `%` doubled (systemd expands specifiers
/// there) and double quotes around a path with whitespace, which would otherwise split it.
/// `$` stays as it is: systemd substitutes variables in the arguments but not in the
/// command's path. Quotes and backslashes are refused because systemd refuses them in an
/// executable's path ("Executable name contains special characters"), whatever the escaping;
/// all three facts checked with `systemd-analyze --user verify`.
pub fn systemd_exec_path(path: &Path) -> Result<String, RenderError> {
    let text = checked_text(path)?;
    if text.contains(['"', '\'', '\\']) {
        return refuse(path, UNSAFE_FOR_SYSTEMD);
    }
    let escaped = text.replace('%', "%%");
    Ok(if text.contains(char::is_whitespace) {
        format!("\"{escaped}\"")
    } else {
        escaped
    })
}

/// `path` as XML text for the plist: `&`, `<` and `>` escaped, `--` refused.
fn plist_path(path: &Path) -> Result<String, RenderError> {
    let text = checked_text(path)?;
    if text.contains("--") {
        return refuse(path, DOUBLE_HYPHEN);
    }
    Ok(text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;"))
}

/// The path as text, if it can be written into a file at all.
fn checked_text(path: &Path) -> Result<&str, RenderError> {
    match path.to_str() {
        None => refuse(path, NOT_UTF8),
        Some(_) if !path.is_absolute() => refuse(path, NOT_ABSOLUTE),
        Some(text) if text.chars().any(char::is_control) => refuse(path, CONTROL),
        Some(text) => Ok(text),
    }
}

fn with_final_newline(text: String) -> String {
    if text.ends_with('\n') {
        text
    } else {
        text + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_gets_the_marker_and_the_binary_path_and_keeps_its_settings() {
        let bin = "/home/ann/.cargo/bin/snowflaked";
        let unit = render_unit(SERVICE_TEMPLATE, "snowflaked.service", Path::new(bin)).unwrap();
        assert!(unit.starts_with("# Written by `snowflaked install` from packaging/systemd/"));
        assert!(unit.lines().any(|l| l == format!("ExecStart={bin} serve")));
        // Below the three header lines, the template is kept exactly as written.
        let body = unit.splitn(4, '\n').nth(3).unwrap();
        assert_eq!(body, SERVICE_TEMPLATE.replace(BIN_PLACEHOLDER, bin));
        for template in [SOCKET_TEMPLATE, TCP_SOCKET_TEMPLATE, SERVICE_TEMPLATE] {
            let rendered = render_unit(template, "x.socket", Path::new("/b/snowflaked")).unwrap();
            assert!(has_marker(&rendered) && !rendered.contains(BIN_PLACEHOLDER));
            assert!(!has_marker(template), "a template must not look installed");
        }
    }

    #[test]
    fn exec_paths_are_escaped_for_systemd_or_refused() {
        let escape = |p: &str| systemd_exec_path(Path::new(p));
        let reason = |p: &str| escape(p).unwrap_err().reason;
        assert_eq!(escape("/opt/my apps/sf").unwrap(), "\"/opt/my apps/sf\"");
        assert_eq!(escape("/opt/100%/sf").unwrap(), "/opt/100%%/sf");
        assert_eq!(escape("/opt/$HOME/sf").unwrap(), "/opt/$HOME/sf");
        for unsafe_path in ["/opt/a\"b/sf", "/opt/it's/sf", "/opt/a\\b/x"] {
            assert_eq!(reason(unsafe_path), UNSAFE_FOR_SYSTEMD);
        }
        assert_eq!(reason("snowflaked"), NOT_ABSOLUTE);
        assert_eq!(reason("/opt/a\nb"), CONTROL);
        use std::os::unix::ffi::OsStrExt;
        let not_utf8 = Path::new(std::ffi::OsStr::from_bytes(b"/opt/\xff/snowflaked"));
        assert_eq!(systemd_exec_path(not_utf8).unwrap_err().reason, NOT_UTF8);
    }

    #[test]
    fn the_plist_gets_the_marker_after_the_declaration_and_escaped_paths() {
        let home = Path::new("/Users/a&b<c>");
        let plist = render_plist(&home.join("snowflaked"), home).unwrap();
        let mut lines = plist.lines();
        assert!(lines.next().unwrap().starts_with("<?xml"));
        assert!(has_marker(lines.next().unwrap()) && !has_marker(PLIST_TEMPLATE));
        assert!(!plist.contains(BIN_PLACEHOLDER) && !plist.contains(HOME_PLACEHOLDER));
        let home = "/Users/a&amp;b&lt;c&gt;";
        for path in ["snowflaked", "Library/Caches/snowflaked/api.sock"] {
            assert!(plist.contains(&format!("<string>{home}/{path}</string>")));
        }
        let log = "Library/Logs/snowflaked/snowflaked.log";
        assert!(plist.contains(&format!("<string>{home}/{log}</string>")));
    }

    #[test]
    fn plist_values_that_would_break_it_are_refused() {
        let bin = Path::new("/usr/local/bin/snowflaked");
        let hyphens = render_plist(Path::new("/opt/a--b/sf"), Path::new("/Users/ann"));
        assert_eq!(hyphens.unwrap_err().reason, DOUBLE_HYPHEN);
        let home = |n| PathBuf::from(format!("/Users/{}", "x".repeat(n)));
        assert_eq!(render_plist(bin, &home(70)).unwrap_err().reason, TOO_LONG);
        // 68 characters of home is the documented limit (packaging/README.md).
        assert!(render_plist(bin, &home(68 - 7)).is_ok());
    }
}
