//! The small subcommands: `use`, `context`, `status`, `session …`, `cancel`, `stop`,
//! `metrics`, `config`.

use std::process::ExitCode;

use comfy_table::{Table, presets};
use hyper::Method;

use super::ContextKind;
use super::output::outln;
use crate::api::{Ack, ContextResponse, ContextUpdate, NewSession, SessionList, Status};
use crate::client::{Client, ClientError};
use crate::config::{Auth, paths, sources};

pub async fn use_context(
    client: &Client,
    kind: ContextKind,
    name: String,
) -> Result<ExitCode, ClientError> {
    let mut update = ContextUpdate::default();
    match kind {
        ContextKind::Database => update.database = Some(name),
        ContextKind::Schema => update.schema = Some(name),
        ContextKind::Warehouse => update.warehouse = Some(name),
        ContextKind::Role => update.role = Some(name),
        ContextKind::QueryTag => update.query_tag = Some(name),
    }
    let response: ContextResponse = client
        .call(Method::PUT, "/v1/context", &update, None)
        .await?;
    print_context(&response);
    Ok(ExitCode::SUCCESS)
}

pub async fn context(client: &Client, json: bool) -> Result<ExitCode, ClientError> {
    let response: ContextResponse = client.get(Method::GET, "/v1/context").await?;
    if json {
        outln!("{}", serde_json::to_string(&response).unwrap_or_default());
    } else {
        print_context(&response);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_context(response: &ContextResponse) {
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
    let c = &response.context;
    outln!("token      {}", response.token);
    outln!("database   {}", show(&c.database));
    outln!("schema     {}", show(&c.schema));
    outln!("warehouse  {}", show(&c.warehouse));
    outln!("role       {}", show(&c.role));
    if let Some(tag) = &c.query_tag {
        outln!("query tag  {tag}");
    }
    if response.in_transaction {
        outln!("an open transaction holds this token's session (COMMIT or ROLLBACK ends it)");
    }
}

pub async fn status(client: &Client, json: bool) -> Result<ExitCode, ClientError> {
    let status: Status = client.get(Method::GET, "/v1/status").await?;
    if json {
        outln!("{}", serde_json::to_string(&status).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    let idle = match (status.idle_timeout_s, status.idle_left_s) {
        (0, _) => "never exits when idle".to_string(),
        (_, Some(left)) => format!(
            "exits after {} idle",
            crate::config::duration::format(std::time::Duration::from_secs(left))
        ),
        (_, None) => "busy".to_string(),
    };
    let s = &status.sessions;
    outln!(
        "snowflaked {} · pid {} · up {} · {}",
        status.version,
        status.pid,
        humantime::format_duration(std::time::Duration::from_secs(status.uptime_s)),
        activation_label(&status.activation)
    );
    outln!("idle       {idle}");
    outln!("listening  {}", status.listeners.join(", "));
    outln!("snowflake  {}", status.connection);
    outln!(
        "sessions   {} in use · {} idle · {} logging in · max {} ({} logins, {} failed)",
        s.in_use,
        s.idle,
        s.logging_in,
        s.max,
        s.logins,
        s.login_failures
    );
    outln!(
        "tokens     {} · {} open transaction{}",
        status.tokens,
        status.open_transactions,
        if status.open_transactions == 1 {
            ""
        } else {
            "s"
        }
    );
    outln!(
        "queries    {} served · {} failed · {} running",
        status.queries.served,
        status.queries.failed,
        status.queries.running
    );
    Ok(ExitCode::SUCCESS)
}

fn activation_label(activation: &str) -> &str {
    match activation {
        "systemd" => "socket-activated by systemd",
        "launchd" => "started by launchd",
        "self" => "self-started by a client",
        _ => "started in the foreground",
    }
}

pub async fn session_new(client: &Client) -> Result<ExitCode, ClientError> {
    let minted: NewSession = client.call(Method::POST, "/v1/sessions", &(), None).await?;
    outln!("{}", minted.token);
    Ok(ExitCode::SUCCESS)
}

pub async fn session_end(client: &Client, token: Option<String>) -> Result<ExitCode, ClientError> {
    let mut target = client.clone();
    if let Some(token) = token {
        target.token = token;
    }
    let ack: Ack = target.get(Method::DELETE, "/v1/sessions/current").await?;
    outln!("{}", ack.message);
    Ok(ExitCode::SUCCESS)
}

pub async fn session_list(client: &Client, json: bool) -> Result<ExitCode, ClientError> {
    let list: SessionList = client.get(Method::GET, "/v1/sessions").await?;
    if json {
        outln!("{}", serde_json::to_string(&list).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table.set_header([
        "token",
        "database",
        "schema",
        "warehouse",
        "role",
        "transaction",
        "last used",
    ]);
    let show = |v: &Option<String>| v.clone().unwrap_or_default();
    for s in &list.sessions {
        table.add_row([
            s.token.clone(),
            show(&s.context.database),
            show(&s.context.schema),
            show(&s.context.warehouse),
            show(&s.context.role),
            if s.in_transaction {
                "open".into()
            } else {
                String::new()
            },
            format!(
                "{} ago",
                crate::config::duration::format_elapsed(std::time::Duration::from_secs(
                    s.last_used_s_ago
                ))
            ),
        ]);
    }
    outln!("{table}");
    Ok(ExitCode::SUCCESS)
}

pub async fn cancel(client: &Client, id: &str) -> Result<ExitCode, ClientError> {
    let ack: Ack = client
        .call(Method::POST, &format!("/v1/queries/{id}/cancel"), &(), None)
        .await?;
    outln!("{}", ack.message);
    Ok(ExitCode::SUCCESS)
}

pub async fn stop(client: &Client) -> Result<ExitCode, ClientError> {
    let mut no_start = client.clone();
    // Stopping a daemon that is not running must not start one.
    no_start.self_start = false;
    let ack: Ack = no_start
        .call(Method::POST, "/v1/shutdown", &(), None)
        .await?;
    outln!("{}", ack.message);
    Ok(ExitCode::SUCCESS)
}

pub async fn metrics(client: &Client) -> Result<ExitCode, ClientError> {
    let text = client.text("/metrics").await?;
    super::output::write(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// `snowflaked config [--check]`: what the daemon would use, with sources, secrets redacted.
pub fn config(check: bool) -> ExitCode {
    let env = paths::ProcessEnv;
    let settings = match sources::load_settings(&env) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    outln!("config file   {}", paths::config_file(&env).display());
    outln!(
        "socket        {}",
        settings
            .socket
            .clone()
            .unwrap_or_else(|| paths::default_socket(&env))
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
            .unwrap_or_else(|| paths::state_dir(&env))
            .display()
    );
    outln!(
        "idle timeout  {}",
        crate::config::duration::format(settings.idle_timeout)
    );
    outln!(
        "pool          max {} · warm {} · checkout timeout {} · heartbeat {} · recycle after {}",
        settings.pool.max_size,
        settings.pool.min_idle,
        crate::config::duration::format(settings.pool.checkout_timeout),
        crate::config::duration::format(settings.pool.heartbeat_interval),
        crate::config::duration::format(settings.pool.max_lifetime)
    );
    outln!(
        "queries       max rows {} · timeout {} · read-only {}",
        settings.query.max_rows,
        crate::config::duration::format(settings.query.timeout),
        settings.query.read_only
    );
    let connection = match sources::load_connection(&env) {
        Ok(connection) => connection,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
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
    if !check {
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(3);
        }
    };
    runtime.block_on(async {
        use crate::snowflake::Backend;
        let backend = match crate::snowflake::connector::ConnectorBackend::new(
            &connection,
            settings.pool.login_timeout,
        ) {
            Ok(backend) => backend,
            Err(e) => {
                eprintln!("check failed: {e}");
                return ExitCode::from(2);
            }
        };
        let session = match backend.login().await {
            Ok(session) => session,
            Err(e) => {
                eprintln!("check failed: {e}");
                return ExitCode::from(2);
            }
        };
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
                ExitCode::SUCCESS
            }
            Err(e) => {
                outln!("check         logged in; reading the session's identity failed: {e}");
                ExitCode::SUCCESS
            }
        }
    })
}
