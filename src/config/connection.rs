//! The Snowflake connection: which account, user and credential the daemon logs in with.
//!
//! Credentials come from the first source that defines a connection (product.md):
//! 1. `[snowflake]` in snowflaked's config.toml, or `connection = "NAME"` naming one of
//!    Snowflake's `connections.toml` entries;
//! 2. the `SNOWFLAKE_*` variables the prototype used, also read from `.env` files;
//! 3. Snowflake's own `connections.toml` / `config.toml` (`default_connection_name`,
//!    `SNOWFLAKE_DEFAULT_CONNECTION_NAME`, else the connection called `default`).
//!
//! This module is the pure half: it turns already-read key/value tables into
//! [`ConnectionSettings`]. Reading files and the environment is [`super::sources`]' job.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::secret::Secret;

use super::ConfigError;

/// A connection's keys, lower-case, as in `connections.toml` (`account`, `user`, `password`…).
pub type Fields = BTreeMap<String, String>;

/// How the daemon proves who it is.
#[derive(Clone, Debug)]
pub enum Auth {
    Password(Secret),
    /// A programmatic access token, which Snowflake accepts in place of a password.
    Pat(Secret),
    KeyPair {
        private_key_file: PathBuf,
        passphrase: Option<Secret>,
    },
    OAuth(Secret),
}

impl Auth {
    /// A short name for logs and `snowflaked config`.
    pub fn method(&self) -> &'static str {
        match self {
            Auth::Password(_) => "password",
            Auth::Pat(_) => "programmatic access token",
            Auth::KeyPair { .. } => "key pair",
            Auth::OAuth(_) => "oauth",
        }
    }
}

/// Where a connection was found, for error messages and `snowflaked config`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionSource {
    DaemonConfig(String),
    Environment(String),
    ConnectionsToml { path: String, name: String },
}

impl fmt::Display for ConnectionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionSource::DaemonConfig(path) => write!(f, "[snowflake] in {path}"),
            ConnectionSource::Environment(origin) => write!(f, "{origin}"),
            ConnectionSource::ConnectionsToml { path, name } => {
                write!(f, "connection {name:?} in {path}")
            }
        }
    }
}

/// Everything needed to log in once.
#[derive(Clone, Debug)]
pub struct ConnectionSettings {
    pub source: ConnectionSource,
    pub account: String,
    pub user: String,
    pub auth: Auth,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub protocol: Option<String>,
    pub warehouse: Option<String>,
    pub database: Option<String>,
    pub schema: Option<String>,
    pub role: Option<String>,
}

impl ConnectionSettings {
    /// The URL the client crate should talk to, when it is not the account's default host.
    pub fn base_url(&self) -> Option<String> {
        let host = self.host.as_deref()?;
        let protocol = self.protocol.as_deref().unwrap_or("https");
        Some(match self.port {
            Some(port) => format!("{protocol}://{host}:{port}"),
            None => format!("{protocol}://{host}"),
        })
    }

    /// A one-line description without secrets: `user@account via source`.
    pub fn describe(&self) -> String {
        format!("{}@{} ({})", self.user, self.account, self.source)
    }
}

/// Everything the resolution looks at, already read from disk and the environment.
#[derive(Debug, Default)]
pub struct CredentialInputs {
    /// The daemon config file's path, for messages.
    pub daemon_config_path: String,
    /// `[snowflake]` in the daemon's config.toml.
    pub daemon_table: Option<Fields>,
    /// `connection = "NAME"` in the daemon's config.toml.
    pub daemon_connection_name: Option<String>,
    /// `SNOWFLAKE_*` variables (process environment over `.env` files), keyed like `Fields`.
    pub environment: Fields,
    /// Where those variables came from, e.g. "environment and /home/u/project/.env".
    pub environment_origin: String,
    /// Snowflake's `connections.toml` path and its tables (merged with `[connections]` of its
    /// `config.toml`).
    pub connections_path: String,
    pub connections: BTreeMap<String, Fields>,
    /// `SNOWFLAKE_DEFAULT_CONNECTION_NAME`, then `default_connection_name` of Snowflake's
    /// config.toml.
    pub default_connection_name: Option<String>,
}

/// Maps the prototype's `SNOWFLAKE_*` variable names to connection keys.
pub const ENVIRONMENT_KEYS: &[(&str, &str)] = &[
    ("SNOWFLAKE_ACCOUNT", "account"),
    ("SNOWFLAKE_USER", "user"),
    ("SNOWFLAKE_PASSWORD", "password"),
    ("SNOWFLAKE_PAT", "pat"),
    ("SNOWFLAKE_TOKEN", "token"),
    ("SNOWFLAKE_AUTHENTICATOR", "authenticator"),
    ("SNOWFLAKE_PRIVATE_KEY_FILE", "private_key_file"),
    ("SNOWFLAKE_PRIVATE_KEY_FILE_PWD", "private_key_file_pwd"),
    ("SNOWFLAKE_WAREHOUSE", "warehouse"),
    ("SNOWFLAKE_DATABASE", "database"),
    ("SNOWFLAKE_SCHEMA", "schema"),
    ("SNOWFLAKE_ROLE", "role"),
    ("SNOWFLAKE_HOST", "host"),
    ("SNOWFLAKE_PORT", "port"),
    ("SNOWFLAKE_PROTOCOL", "protocol"),
];

/// Keys whose values are secrets; a file holding any of them must be private.
pub const SECRET_KEYS: &[&str] = &["password", "pat", "token", "private_key_file_pwd"];

/// Picks the connection by the documented precedence.
pub fn resolve(inputs: &CredentialInputs) -> Result<ConnectionSettings, ConfigError> {
    if let Some(table) = inputs.daemon_table.as_ref().filter(|t| !t.is_empty()) {
        let source = ConnectionSource::DaemonConfig(inputs.daemon_config_path.clone());
        return from_fields(source, table);
    }
    if let Some(name) = &inputs.daemon_connection_name {
        return named_connection(inputs, name);
    }
    if inputs.environment.contains_key("account") || inputs.environment.contains_key("host") {
        let source = ConnectionSource::Environment(inputs.environment_origin.clone());
        return from_fields(source, &inputs.environment);
    }
    match &inputs.default_connection_name {
        Some(name) => named_connection(inputs, name),
        None if inputs.connections.contains_key("default") => named_connection(inputs, "default"),
        None => Err(ConfigError::NoConnection {
            hint: format!(
                "set SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER and SNOWFLAKE_PAT (or SNOWFLAKE_PASSWORD / \
                 SNOWFLAKE_PRIVATE_KEY_FILE) in the environment or a .env file, add a [snowflake] \
                 table to {}, or define a connection in {}",
                inputs.daemon_config_path, inputs.connections_path
            ),
        }),
    }
}

fn named_connection(
    inputs: &CredentialInputs,
    name: &str,
) -> Result<ConnectionSettings, ConfigError> {
    let fields = inputs
        .connections
        .get(name)
        .ok_or_else(|| ConfigError::UnknownConnection {
            name: name.to_string(),
            path: inputs.connections_path.clone(),
        })?;
    let source = ConnectionSource::ConnectionsToml {
        path: inputs.connections_path.clone(),
        name: name.to_string(),
    };
    from_fields(source, fields)
}

/// Builds settings from one connection's keys.
pub fn from_fields(
    source: ConnectionSource,
    fields: &Fields,
) -> Result<ConnectionSettings, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        origin: source.to_string(),
        message,
    };
    let get = |key: &str| {
        fields
            .get(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let host = get("host");
    let account = match (get("account"), &host) {
        (Some(account), _) => account,
        // A custom host (an emulator, a private link) identifies the endpoint by itself.
        (None, Some(host)) => host.split('.').next().unwrap_or(host).to_string(),
        (None, None) => return Err(invalid("`account` is missing".into())),
    };
    let user = get("user").ok_or_else(|| invalid("`user` is missing".into()))?;
    let port = get("port")
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| invalid(format!("`port` {p:?} is not a port number")))
        })
        .transpose()?;
    let protocol = get("protocol").map(|p| p.to_ascii_lowercase());
    if let Some(p) = &protocol
        && p != "http"
        && p != "https"
    {
        return Err(invalid(format!(
            "`protocol` must be http or https, not {p:?}"
        )));
    }
    let auth = choose_auth(fields, &get).map_err(|e| invalid(e.to_string()))?;
    Ok(ConnectionSettings {
        source: source.clone(),
        account,
        user,
        auth,
        host,
        port,
        protocol,
        warehouse: get("warehouse"),
        database: get("database"),
        schema: get("schema"),
        role: get("role"),
    })
}

/// Why no credential could be chosen from a connection's fields.
#[derive(Debug, thiserror::Error)]
enum AuthError {
    #[error("authenticator {authenticator} needs `{field}`")]
    Missing {
        authenticator: &'static str,
        field: &'static str,
    },
    #[error("a programmatic access token needs `token`")]
    MissingPat,
    #[error(
        "authenticator {0:?} is not supported (use snowflake, programmatic_access_token, snowflake_jwt or oauth)"
    )]
    Unsupported(String),
    #[error("`token` is set but `authenticator` is not (oauth or programmatic_access_token)")]
    TokenWithoutAuthenticator,
    #[error("no credential: set a PAT, a password, or a private key file")]
    None,
}

fn choose_auth(fields: &Fields, get: &dyn Fn(&str) -> Option<String>) -> Result<Auth, AuthError> {
    let authenticator = get("authenticator").map(|a| a.to_ascii_lowercase());
    let private_key = get("private_key_file").or_else(|| get("private_key_path"));
    match authenticator.as_deref() {
        Some("oauth") => {
            let token = get("token").ok_or(AuthError::Missing {
                authenticator: "oauth",
                field: "token",
            })?;
            return Ok(Auth::OAuth(Secret::new(token)));
        }
        Some("snowflake_jwt") => {
            let file = private_key.ok_or(AuthError::Missing {
                authenticator: "snowflake_jwt",
                field: "private_key_file",
            })?;
            return Ok(key_pair(file, get("private_key_file_pwd")));
        }
        Some("programmatic_access_token") => {
            let token = get("token")
                .or_else(|| get("pat"))
                .ok_or(AuthError::MissingPat)?;
            return Ok(Auth::Pat(Secret::new(token)));
        }
        Some("snowflake") | None => {}
        Some(other) => return Err(AuthError::Unsupported(other.to_string())),
    }
    if let Some(pat) = get("pat") {
        return Ok(Auth::Pat(Secret::new(pat)));
    }
    if let Some(file) = private_key {
        return Ok(key_pair(file, get("private_key_file_pwd")));
    }
    if let Some(password) = get("password") {
        return Ok(Auth::Password(Secret::new(password)));
    }
    if fields.contains_key("token") {
        return Err(AuthError::TokenWithoutAuthenticator);
    }
    Err(AuthError::None)
}

fn key_pair(file: String, passphrase: Option<String>) -> Auth {
    Auth::KeyPair {
        private_key_file: PathBuf::from(file),
        passphrase: passphrase.map(Secret::new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn daemon_table_wins_over_everything() {
        let inputs = CredentialInputs {
            daemon_config_path: "cfg.toml".into(),
            daemon_table: Some(fields(&[
                ("account", "a1"),
                ("user", "u1"),
                ("password", "p"),
            ])),
            environment: fields(&[("account", "a2"), ("user", "u2"), ("pat", "t")]),
            ..Default::default()
        };
        let settings = resolve(&inputs).unwrap();
        assert_eq!(settings.account, "a1");
        assert!(matches!(settings.auth, Auth::Password(_)));
    }

    #[test]
    fn environment_comes_before_connections_toml() {
        let mut connections = BTreeMap::new();
        connections.insert(
            "default".to_string(),
            fields(&[("account", "c"), ("user", "cu"), ("password", "x")]),
        );
        let inputs = CredentialInputs {
            environment: fields(&[("account", "e"), ("user", "eu"), ("pat", "t")]),
            environment_origin: "environment".into(),
            connections,
            ..Default::default()
        };
        let settings = resolve(&inputs).unwrap();
        assert_eq!(settings.account, "e");
        assert!(matches!(settings.auth, Auth::Pat(_)));
    }

    #[test]
    fn default_connection_name_selects_a_table() {
        let mut connections = BTreeMap::new();
        connections.insert(
            "dev".to_string(),
            fields(&[
                ("account", "d"),
                ("user", "du"),
                ("private_key_file", "/k.p8"),
            ]),
        );
        let inputs = CredentialInputs {
            connections,
            connections_path: "connections.toml".into(),
            default_connection_name: Some("dev".into()),
            ..Default::default()
        };
        let settings = resolve(&inputs).unwrap();
        assert_eq!(settings.account, "d");
        assert!(matches!(settings.auth, Auth::KeyPair { .. }));
        assert_eq!(
            settings.source.to_string(),
            "connection \"dev\" in connections.toml"
        );
    }

    #[test]
    fn missing_named_connection_is_an_error_naming_it() {
        let inputs = CredentialInputs {
            daemon_connection_name: Some("prod".into()),
            connections_path: "connections.toml".into(),
            ..Default::default()
        };
        let err = resolve(&inputs).unwrap_err().to_string();
        assert!(
            err.contains("prod") && err.contains("connections.toml"),
            "{err}"
        );
    }

    #[test]
    fn nothing_configured_says_what_to_set() {
        let err = resolve(&CredentialInputs::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("SNOWFLAKE_ACCOUNT"), "{err}");
    }

    #[test]
    fn host_port_protocol_make_the_base_url() {
        let settings = from_fields(
            ConnectionSource::Environment("env".into()),
            &fields(&[
                ("user", "u"),
                ("password", "p"),
                ("host", "127.0.0.1"),
                ("port", "8080"),
                ("protocol", "http"),
            ]),
        )
        .unwrap();
        assert_eq!(
            settings.base_url().as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(settings.account, "127");
    }

    #[test]
    fn oauth_and_bad_values_are_checked() {
        let oauth = from_fields(
            ConnectionSource::Environment("env".into()),
            &fields(&[
                ("account", "a"),
                ("user", "u"),
                ("authenticator", "OAUTH"),
                ("token", "tok"),
            ]),
        )
        .unwrap();
        assert!(matches!(oauth.auth, Auth::OAuth(_)));
        let bad_port = from_fields(
            ConnectionSource::Environment("env".into()),
            &fields(&[
                ("account", "a"),
                ("user", "u"),
                ("password", "p"),
                ("port", "http"),
            ]),
        );
        assert!(bad_port.unwrap_err().to_string().contains("port"));
    }

    #[test]
    fn debug_output_never_contains_the_secret() {
        let settings = from_fields(
            ConnectionSource::Environment("env".into()),
            &fields(&[
                ("account", "a"),
                ("user", "u"),
                ("password", "s3cr3t-value"),
            ]),
        )
        .unwrap();
        assert!(!format!("{settings:?}").contains("s3cr3t-value"));
    }
}
