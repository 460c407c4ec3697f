//! `snowflaked install --print`: what `install` would do, written out as a POSIX shell
//! script — every directory, every file with its full content, every command, in order.
//!
//! A script rather than a listing because it is at once readable, reviewable and runnable
//! (`snowflaked install --print | sh`, e.g. on a machine where the binary will live
//! elsewhere after editing the path). Pure: building the text changes nothing.

use std::fmt::Write as _;

use super::plan::{self, Cmd, FileSpec, Target, shell_word};
use super::templates::RenderError;

/// Ends each here-document; no template contains a line like it (checked by a test).
const HEREDOC_END: &str = "SNOWFLAKED_EOF";

/// One step of the script.
#[derive(Debug, Clone)]
pub enum Step {
    Comment(String),
    Mkdir {
        path: std::path::PathBuf,
        mode: Option<u32>,
    },
    Write(FileSpec),
    Run(Cmd),
}

/// The steps of a systemd install for `target`.
pub fn systemd_steps(target: &Target) -> Result<Vec<Step>, RenderError> {
    let mut steps = vec![Step::Mkdir {
        path: target.unit_dir(),
        mode: None,
    }];
    steps.extend(plan::systemd_files(target)?.into_iter().map(Step::Write));
    steps.extend(plan::systemd_enable().into_iter().map(Step::Run));
    steps.push(Step::Comment(format!(
        "{} is written but not enabled; to listen on loopback TCP as well: systemctl --user enable --now {}",
        plan::TCP_SOCKET_UNIT,
        plan::TCP_SOCKET_UNIT
    )));
    Ok(steps)
}

/// The steps of a launchd install for `target`.
pub fn launchd_steps(target: &Target) -> Result<Vec<Step>, RenderError> {
    let file = plan::launchd_file(target)?;
    let mut steps: Vec<Step> = target
        .launchd_dirs()
        .into_iter()
        .map(|path| Step::Mkdir {
            path,
            mode: Some(plan::PRIVATE_DIR_MODE),
        })
        .collect();
    if let Some(parent) = file.path.parent() {
        steps.push(Step::Mkdir {
            path: parent.to_path_buf(),
            mode: None,
        });
    }
    steps.push(Step::Write(file));
    steps.push(Step::Comment(format!(
        "only if the agent is already loaded and the file changed: {}",
        plan::launchctl_bootout(target.uid)
    )));
    steps.push(Step::Run(plan::launchctl_bootstrap(
        target.uid,
        &target.plist_path(),
    )));
    Ok(steps)
}

/// The script for `steps`.
pub fn render(steps: &[Step]) -> String {
    let mut out = String::from(
        "#!/bin/sh\n# What `snowflaked install` would do for this user. Nothing has been changed.\nset -e\n",
    );
    for step in steps {
        // Writing to a String cannot fail.
        let _ = match step {
            Step::Comment(text) => writeln!(out, "# {text}"),
            Step::Mkdir { path, mode } => {
                let path = shell_word(&path.display().to_string());
                match mode {
                    Some(mode) => writeln!(out, "mkdir -p {path} && chmod {mode:04o} {path}"),
                    None => writeln!(out, "mkdir -p {path}"),
                }
            }
            Step::Write(file) => {
                let path = shell_word(&file.path.display().to_string());
                // A quoted delimiter: the shell expands nothing inside the document.
                writeln!(
                    out,
                    "cat > {path} <<'{HEREDOC_END}'\n{}{HEREDOC_END}\nchmod {:04o} {path}",
                    file.content, file.mode
                )
            }
            Step::Run(cmd) => writeln!(out, "{cmd}"),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::*;
    use crate::cli::install::templates;

    fn target(home: &str) -> Target {
        let env: HashMap<String, String> = [("HOME".to_string(), home.to_string())].into();
        Target::resolve(&env, PathBuf::from("/usr/bin/snowflaked"), 1000).unwrap()
    }

    #[test]
    fn the_systemd_script_holds_every_file_and_command_in_order() {
        let script = render(&systemd_steps(&target("/home/ann")).unwrap());
        let at = |needle: &str| {
            script
                .find(needle)
                .unwrap_or_else(|| panic!("{needle} missing"))
        };
        assert!(at("mkdir -p /home/ann/.config/systemd/user") < at("cat > "));
        assert!(
            at("cat > /home/ann/.config/systemd/user/snowflaked.service <<'SNOWFLAKED_EOF'")
                < at("systemctl --user daemon-reload")
        );
        assert!(
            at("systemctl --user daemon-reload")
                < at("systemctl --user enable --now snowflaked.socket\n")
        );
        assert!(script.contains("ExecStart=/usr/bin/snowflaked serve\n"));
        assert!(script.contains("chmod 0644 /home/ann/.config/systemd/user/snowflaked.socket\n"));
        // Only mentioned in comments, never run.
        assert!(
            !script
                .lines()
                .any(|l| l.starts_with("systemctl") && l.contains("snowflaked-tcp.socket"))
        );
    }

    #[test]
    fn the_launchd_script_creates_private_directories_first() {
        let script = render(&launchd_steps(&target("/Users/my home")).unwrap());
        assert!(script.contains(
            "mkdir -p '/Users/my home/Library/Caches/snowflaked' && chmod 0700 '/Users/my home/Library/Caches/snowflaked'"
        ));
        assert!(script.contains(
            "launchctl bootstrap gui/1000 '/Users/my home/Library/LaunchAgents/com.snowflaked.agent.plist'"
        ));
    }

    #[test]
    fn no_template_can_end_a_here_document_early() {
        for template in [
            templates::SOCKET_TEMPLATE,
            templates::TCP_SOCKET_TEMPLATE,
            templates::SERVICE_TEMPLATE,
            templates::PLIST_TEMPLATE,
        ] {
            assert!(!template.lines().any(|l| l == HEREDOC_END));
        }
    }
}
