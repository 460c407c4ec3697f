//! The small subcommands: `use`, `context`, `status`, `session …`, `cancel`, `stop`,
//! `metrics`.

use std::process::ExitCode;

use comfy_table::{Table, presets};

use super::ContextKind;
use super::output::outln;
use crate::api::{ContextResponse, ContextUpdate};
use crate::client::{Client, ClientError};

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
    let response = client.set_context(&update).await?;
    print_context(&response);
    Ok(ExitCode::SUCCESS)
}

pub async fn context(client: &Client, json: bool) -> Result<ExitCode, ClientError> {
    let response = client.context().await?;
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
    let status = client.status().await?;
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
        "sessions   {} in use · {} pinned · {} idle · {} logging in · max {} ({} logins, {} failed)",
        s.in_use,
        // Held by an open transaction between its statements: counted apart, not as idle.
        s.pinned,
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
    let minted = client.mint_session().await?;
    outln!("{}", minted.token);
    Ok(ExitCode::SUCCESS)
}

pub async fn session_end(client: &Client, token: Option<String>) -> Result<ExitCode, ClientError> {
    let target = match token {
        Some(token) => client.with_token(token),
        None => client.clone(),
    };
    let ack = target.end_session().await?;
    outln!("{}", ack.message);
    Ok(ExitCode::SUCCESS)
}

pub async fn session_list(client: &Client, json: bool) -> Result<ExitCode, ClientError> {
    let list = client.sessions().await?;
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
    let ack = client.cancel(id).await?;
    outln!("{}", ack.message);
    Ok(ExitCode::SUCCESS)
}

pub async fn stop(client: &Client) -> Result<ExitCode, ClientError> {
    // Stopping a daemon that is not running must not start one.
    let ack = client.without_self_start().shutdown().await?;
    outln!("{}", ack.message);
    Ok(ExitCode::SUCCESS)
}

pub async fn metrics(client: &Client) -> Result<ExitCode, ClientError> {
    let text = client.metrics().await?;
    super::output::write(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}
