//! `snowflaked config [--check]`: what the daemon would use and where each part comes from,
//! secrets redacted; with `--check`, one login with that connection. Printing the settings,
//! printing the connection and the login check are separate steps, so a configuration error
//! found after the settings were printed still leaves them on screen.

use std::process::ExitCode;

use super::Error;
use super::output::outln;
use crate::config::duration::format as duration;
use crate::config::{Auth, ConnectionSettings, DaemonSettings, paths, sources};

/// Prints the resolved configuration; with `check`, also logs in once.
pub fn run(check: bool) -> Result<ExitCode, Error> {
    let env = paths::ProcessEnv;
    let settings = sources::load_settings(&env)?;
    print_settings(&settings, &env);
    let connection = sources::load_connection(&env)?;
    print_connection(&connection);
    if check {
        super::runtime()?.block_on(check_login(&connection, &settings))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_settings(settings: &DaemonSettings, env: &paths::ProcessEnv) {
    outln!("config file   {}", paths::config_file(env).display());
    outln!(
        "socket        {}",
        settings
            .socket
            .clone()
            .unwrap_or_else(|| paths::default_socket(env))
            .display()
    );
    if let Some(tcp) = settings.tcp {
        outln!("tcp           {tcp}");
    }
    outln!(
        "state dir     {}",
        settings
            .state_dir
            .clone()
            .unwrap_or_else(|| paths::state_dir(env))
            .display()
    );
    outln!("idle timeout  {}", duration(settings.idle_timeout));
    let pool = &settings.pool;
    outln!(
        "pool          max {} · warm {} · checkout timeout {} · heartbeat {} · recycle after {}",
        pool.max_size,
        pool.min_idle,
        duration(pool.checkout_timeout),
        duration(pool.heartbeat_interval),
        duration(pool.max_lifetime)
    );
    outln!(
        "queries       max rows {} · timeout {} · read-only {}",
        settings.query.max_rows,
        duration(settings.query.timeout),
        settings.query.read_only
    );
}

fn print_connection(connection: &ConnectionSettings) {
    outln!("connection    {}", connection.source);
    outln!("account       {}", connection.account);
    outln!("user          {}", connection.user);
    let credential = match &connection.auth {
        Auth::KeyPair {
            private_key_file, ..
        } => format!("key pair ({})", private_key_file.display()),
        other => format!("{} <redacted>", other.method()),
    };
    outln!("credential    {credential}");
    if let Some(url) = connection.base_url() {
        outln!("endpoint      {url}");
    }
    for (label, value) in [
        ("warehouse", &connection.warehouse),
        ("database", &connection.database),
        ("schema", &connection.schema),
        ("role", &connection.role),
    ] {
        if let Some(value) = value {
            outln!("{label:<13} {value}");
        }
    }
}

/// Logs in once and prints who Snowflake says we are. A login that works but whose identity
/// cannot be read back still passes: the connection is usable.
async fn check_login(
    connection: &ConnectionSettings,
    settings: &DaemonSettings,
) -> Result<(), Error> {
    use crate::snowflake::Backend;
    let backend =
        crate::snowflake::connector::ConnectorBackend::new(connection, settings.pool.login_timeout)
            .map_err(Error::Check)?;
    let session = backend.login().await.map_err(Error::Check)?;
    let sql = "SELECT CURRENT_ACCOUNT(), CURRENT_USER(), CURRENT_ROLE(), CURRENT_WAREHOUSE()";
    match session
        .execute(sql, Some(1), tokio_util::sync::CancellationToken::new())
        .await
    {
        Ok(output) => {
            let row = output
                .rows
                .first()
                .map(|r| crate::row::values(r))
                .unwrap_or_default();
            let cell = |i: usize| row.get(i).map(super::format::cell_text).unwrap_or_default();
            outln!(
                "check         logged in: account {} · user {} · role {} · warehouse {}",
                cell(0),
                cell(1),
                cell(2),
                cell(3)
            );
        }
        Err(e) => {
            outln!("check         logged in; reading the session's identity failed: {e}")
        }
    }
    Ok(())
}
