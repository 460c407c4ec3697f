//! The IO half of configuration: reads config.toml, `SNOWFLAKED_*` / `SNOWFLAKE_*` variables,
//! `.env` files, systemd credentials and Snowflake's own files, then hands plain values to the
//! pure merges in [`super::settings`] and [`super::connection`].
//!
//! Files that hold credentials must be private to their owner; one readable by others is
//! refused with a message saying `chmod 0600`, as the official connectors warn.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::connection::{self, CredentialInputs, ENVIRONMENT_KEYS, Fields, SECRET_KEYS};
use super::paths::{self, Env};
use super::{ConfigError, ConnectionSettings, DaemonSettings};

/// The name of the systemd credential (`LoadCredential=snowflake.env:…`) holding
/// `SNOWFLAKE_*` lines; [`paths`] owns it.
pub use super::paths::CREDENTIAL_NAME;

/// Reads the daemon's settings: defaults < config.toml < `SNOWFLAKED_*` variables. Flags are
/// applied by the caller on the returned value.
pub fn load_settings(env: &dyn Env) -> Result<DaemonSettings, ConfigError> {
    let path = paths::config_file(env);
    let mut builder = config::Config::builder();
    if path.exists() {
        builder =
            builder.add_source(config::File::from(path.clone()).format(config::FileFormat::Toml));
    }
    let mut variables: BTreeMap<String, String> = BTreeMap::new();
    for name in SETTINGS_VARIABLES {
        if let Some(value) = env.var(name) {
            variables.insert(name.to_string(), value);
        }
    }
    builder = builder.add_source(
        config::Environment::with_prefix("SNOWFLAKED")
            .prefix_separator("_")
            .separator("__")
            .source(Some(variables.into_iter().collect())),
    );
    let origin = format!("{} or SNOWFLAKED_* variables", path.display());
    builder
        .build()
        .and_then(|c| c.try_deserialize::<DaemonSettings>())
        .map_err(|e| ConfigError::Invalid {
            origin,
            message: e.to_string(),
        })
}

/// The `SNOWFLAKED_*` variables that are daemon settings (the client's own, such as
/// `SNOWFLAKED_SESSION`, are left out so they cannot be mistaken for settings).
const SETTINGS_VARIABLES: &[&str] = &[
    "SNOWFLAKED_SOCKET",
    "SNOWFLAKED_TCP",
    "SNOWFLAKED_IDLE_TIMEOUT",
    "SNOWFLAKED_DRAIN_TIMEOUT",
    "SNOWFLAKED_LOG_LEVEL",
    "SNOWFLAKED_MAX_BODY_BYTES",
    "SNOWFLAKED_REQUEST_READ_TIMEOUT",
    "SNOWFLAKED_WRITE_STALL_TIMEOUT",
    "SNOWFLAKED_STATE_DIR",
    "SNOWFLAKED_POOL__MAX_SIZE",
    "SNOWFLAKED_POOL__MIN_IDLE",
    "SNOWFLAKED_POOL__CHECKOUT_TIMEOUT",
    "SNOWFLAKED_POOL__HEARTBEAT_INTERVAL",
    "SNOWFLAKED_POOL__MAX_LIFETIME",
    "SNOWFLAKED_POOL__LOGIN_TIMEOUT",
    "SNOWFLAKED_QUERY__MAX_ROWS",
    "SNOWFLAKED_QUERY__TIMEOUT",
    "SNOWFLAKED_QUERY__READ_ONLY",
    "SNOWFLAKED_QUERY__MAX_CHARS",
    "SNOWFLAKED_TOKENS__TTL",
    "SNOWFLAKED_TOKENS__TRANSACTION_IDLE_TIMEOUT",
    "SNOWFLAKED_TOKENS__MAX",
    "SNOWFLAKED_RESULTS__MEMORY",
    "SNOWFLAKED_RESULTS__KEEP",
    "SNOWFLAKED_RESULTS__DIR",
    "SNOWFLAKED_RESULTS__MAX_ROWS",
];

/// Finds the Snowflake connection by the documented precedence.
pub fn load_connection(env: &dyn Env) -> Result<ConnectionSettings, ConfigError> {
    connection::resolve(&read_credential_inputs(env)?)
}

/// Reads every credential source without deciding between them.
pub fn read_credential_inputs(env: &dyn Env) -> Result<CredentialInputs, ConfigError> {
    let mut inputs = CredentialInputs::default();

    let daemon_config = paths::config_file(env);
    inputs.daemon_config_path = daemon_config.display().to_string();
    if let Some(table) = read_toml(&daemon_config)? {
        if let Some(snowflake) = table.get("snowflake").and_then(|v| v.as_table()) {
            let fields = table_fields(snowflake);
            require_private_if_secret(&daemon_config, &fields)?;
            inputs.daemon_table = Some(fields);
        }
        inputs.daemon_connection_name = table
            .get("connection")
            .and_then(|v| v.as_str())
            .map(str::to_string);
    }

    let (environment, origin) = read_environment(env)?;
    inputs.environment = environment;
    inputs.environment_origin = origin;

    let connections_path = paths::snowflake_connections_file(env);
    inputs.connections_path = connections_path.display().to_string();
    if let Some(table) = read_toml(&connections_path)? {
        require_private(&connections_path)?;
        for (name, value) in &table {
            if let Some(t) = value.as_table() {
                inputs.connections.insert(name.clone(), table_fields(t));
            }
        }
    }
    let snowflake_config = paths::snowflake_config_file(env);
    let mut default_name = None;
    if let Some(table) = read_toml(&snowflake_config)? {
        if let Some(connections) = table.get("connections").and_then(|v| v.as_table()) {
            require_private(&snowflake_config)?;
            for (name, value) in connections {
                if let Some(t) = value.as_table() {
                    inputs
                        .connections
                        .entry(name.clone())
                        .or_insert_with(|| table_fields(t));
                }
            }
        }
        default_name = table
            .get("default_connection_name")
            .and_then(|v| v.as_str())
            .map(str::to_string);
    }
    inputs.default_connection_name = env
        .var("SNOWFLAKE_DEFAULT_CONNECTION_NAME")
        .or(default_name);
    Ok(inputs)
}

/// `SNOWFLAKE_*` values: the process environment over `./.env`, over
/// `~/.config/snowflaked/snowflake.env` (or its copy in the systemd credentials directory).
/// Returns the values and a description of where they came from.
fn read_environment(env: &dyn Env) -> Result<(Fields, String), ConfigError> {
    let mut files: Vec<PathBuf> = Vec::new();
    // Under systemd the unit hands ~/.config/snowflaked/snowflake.env over as a credential (the
    // sandbox may hide the original); elsewhere (launchd, self-started, foreground) it is read
    // in place.
    files.push(paths::passed_credentials_file(env).unwrap_or_else(|| paths::credentials_file(env)));
    if let Ok(cwd) = std::env::current_dir() {
        files.push(cwd.join(".env"));
    }

    let mut fields = Fields::new();
    let mut origins = Vec::new();
    for file in files.iter().filter(|f| f.is_file()) {
        let mut found = Fields::new();
        let entries = dotenvy::from_path_iter(file).map_err(|e| ConfigError::Invalid {
            origin: file.display().to_string(),
            message: e.to_string(),
        })?;
        for entry in entries {
            let (name, value) = entry.map_err(|e| ConfigError::Invalid {
                origin: file.display().to_string(),
                message: e.to_string(),
            })?;
            if let Some((_, key)) = ENVIRONMENT_KEYS.iter().find(|(var, _)| *var == name) {
                found.insert(key.to_string(), value);
            }
        }
        if !found.is_empty() {
            require_private_if_secret(file, &found)?;
            origins.push(file.display().to_string());
            fields.extend(found);
        }
    }
    let mut from_process = false;
    for (var, key) in ENVIRONMENT_KEYS {
        if let Some(value) = env.var(var) {
            fields.insert(key.to_string(), value);
            from_process = true;
        }
    }
    if from_process {
        origins.push("SNOWFLAKE_* environment variables".to_string());
    }
    let origin = if origins.is_empty() {
        "SNOWFLAKE_* environment variables".to_string()
    } else {
        origins.join(" and ")
    };
    Ok((fields, origin))
}

fn read_toml(path: &Path) -> Result<Option<toml::Table>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.display().to_string(),
                source,
            });
        }
    };
    text.parse::<toml::Table>()
        .map(Some)
        .map_err(|e| ConfigError::Invalid {
            origin: path.display().to_string(),
            message: e.message().to_string(),
        })
}

fn table_fields(table: &toml::Table) -> Fields {
    table
        .iter()
        .filter_map(|(k, v)| {
            let value = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => return None,
            };
            Some((k.to_ascii_lowercase(), value))
        })
        .collect()
}

fn require_private_if_secret(path: &Path, fields: &Fields) -> Result<(), ConfigError> {
    if SECRET_KEYS.iter().any(|k| fields.contains_key(*k)) {
        require_private(path)?;
    }
    Ok(())
}

/// Refuses a credential file that group or others can read or write.
pub fn require_private(path: &Path) -> Result<(), ConfigError> {
    let metadata = std::fs::metadata(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ConfigError::InsecurePermissions {
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_for(home: &Path) -> HashMap<String, String> {
        HashMap::from([
            ("HOME".to_string(), home.display().to_string()),
            (
                "SNOWFLAKE_HOME".to_string(),
                home.join("sf").display().to_string(),
            ),
        ])
    }

    fn write(path: &Path, text: &str, mode: u32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn settings_come_from_file_then_variables() {
        let home = tempfile::tempdir().unwrap();
        write(
            &home.path().join(".config/snowflaked/config.toml"),
            "idle_timeout = \"5m\"\n[pool]\nmax_size = 7\n",
            0o644,
        );
        let mut env = env_for(home.path());
        env.insert("SNOWFLAKED_POOL__MAX_SIZE".into(), "9".into());
        env.insert("SNOWFLAKED_SESSION".into(), "not-a-setting".into());
        let settings = load_settings(&env).unwrap();
        assert_eq!(settings.idle_timeout, std::time::Duration::from_secs(300));
        assert_eq!(settings.pool.max_size, 9);
    }

    #[test]
    fn a_bad_setting_names_its_origin() {
        let home = tempfile::tempdir().unwrap();
        write(
            &home.path().join(".config/snowflaked/config.toml"),
            "idle_timeout = \"soon\"\n",
            0o644,
        );
        let err = load_settings(&env_for(home.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("config.toml") && err.contains("soon"), "{err}");
    }

    #[test]
    fn connections_toml_readable_by_others_is_refused() {
        let home = tempfile::tempdir().unwrap();
        write(
            &home.path().join("sf/connections.toml"),
            "[default]\naccount = \"a\"\nuser = \"u\"\npassword = \"p\"\n",
            0o644,
        );
        let err = load_connection(&env_for(home.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("chmod 0600"), "{err}");
        std::fs::set_permissions(
            home.path().join("sf/connections.toml"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let settings = load_connection(&env_for(home.path())).unwrap();
        assert_eq!(settings.account, "a");
    }

    #[test]
    fn snowflake_env_in_the_config_dir_is_read_without_systemd() {
        let home = tempfile::tempdir().unwrap();
        write(
            &home.path().join(".config/snowflaked/snowflake.env"),
            "# comment only lines are fine\nSNOWFLAKE_ACCOUNT=acc\nSNOWFLAKE_USER=me\nSNOWFLAKE_PAT=tok\n",
            0o600,
        );
        let settings = load_connection(&env_for(home.path())).unwrap();
        assert_eq!(settings.account, "acc");
        std::fs::set_permissions(
            home.path().join(".config/snowflaked/snowflake.env"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let err = load_connection(&env_for(home.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("chmod 0600"), "{err}");
    }

    #[test]
    fn systemd_credential_file_provides_snowflake_variables() {
        let home = tempfile::tempdir().unwrap();
        let creds = home.path().join("creds");
        write(
            &creds.join(CREDENTIAL_NAME),
            "SNOWFLAKE_ACCOUNT=acc\nSNOWFLAKE_USER=me\nSNOWFLAKE_PAT=tok\n",
            0o600,
        );
        let mut env = env_for(home.path());
        env.insert("CREDENTIALS_DIRECTORY".into(), creds.display().to_string());
        let settings = load_connection(&env).unwrap();
        assert_eq!(settings.user, "me");
        assert!(settings.source.to_string().contains(CREDENTIAL_NAME));
    }
}
