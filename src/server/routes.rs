//! Routing and the handlers: parse the request into plain values, call the runner, answer
//! JSON (or Prometheus text for `/metrics`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::{AppState, Transport, auth};
use crate::api::{self, ErrorKind};
use crate::runner::{ContextChange, QueryInput};
use crate::sessions::{Context, token};

type Answer = Response<Full<Bytes>>;

/// Answers one request; never fails (errors become JSON error answers).
pub async fn handle(
    state: Arc<AppState>,
    transport: Transport,
    request: Request<Incoming>,
) -> Answer {
    state
        .metrics
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let result = route(&state, transport, request).await;
    match result {
        Ok(answer) => answer,
        Err(error) => {
            if error.status.is_server_error() {
                tracing::warn!(%method, %path, status = error.status.as_u16(), kind = %error.detail.kind, message = %error.detail.message, "request failed");
            } else {
                tracing::debug!(%method, %path, status = error.status.as_u16(), kind = %error.detail.kind, "request refused");
            }
            json(error.status, &error.body())
        }
    }
}

async fn route(
    state: &Arc<AppState>,
    transport: Transport,
    request: Request<Incoming>,
) -> Result<Answer, ApiError> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    // Before routing: over TCP nothing, not even a 404, answers a request without a minted
    // token (see `auth`).
    let token = auth::identify(
        state.runner.registry(),
        transport,
        request.uri(),
        request.headers(),
    )?;
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.clone(), segments.as_slice()) {
        (Method::GET, ["health"]) => Ok(json(StatusCode::OK, &health())),
        (Method::GET, ["metrics"]) => Ok(metrics(state)),
        (Method::GET, ["v1", "status"]) => Ok(json(StatusCode::OK, &status(state))),
        (Method::POST, ["v1", "query"]) => {
            state.runner.registry().admit(&token)?;
            let request_id = header(&request, api::REQUEST_ID_HEADER)?;
            let body: api::QueryRequest = read_json(state, request).await?;
            let answer = query(state, &token, body, request_id).await;
            // A statement may have changed the context even if a later one failed.
            state.runner.registry().persisted().await?;
            answer
        }
        (Method::GET, ["v1", "context"]) => Ok(json(
            StatusCode::OK,
            &context_response(state, &token).await?,
        )),
        (Method::PUT, ["v1", "context"]) => {
            state.runner.registry().admit(&token)?;
            let update: api::ContextUpdate = read_json(state, request).await?;
            let change = ContextChange {
                database: update.database,
                schema: update.schema,
                warehouse: update.warehouse,
                role: update.role,
                query_tag: update.query_tag,
            };
            let changed = state.runner.set_context(&token, change).await;
            state.runner.registry().persisted().await?;
            changed?;
            Ok(json(
                StatusCode::OK,
                &context_response(state, &token).await?,
            ))
        }
        (Method::POST, ["v1", "sessions"]) => {
            // Every minted token comes from the Unix socket, where the kernel vouched for the
            // peer; a TCP client cannot multiply the token it was handed.
            unix_only(transport, "minting tokens")?;
            let minted = token::mint().map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorKind::Internal,
                    format!("no randomness: {e}"),
                )
            })?;
            state.runner.registry().add_minted(&minted)?;
            state.runner.registry().persisted().await?;
            tracing::info!(token = %crate::sessions::token::for_log(&minted), "token minted");
            Ok(json(
                StatusCode::CREATED,
                &api::NewSession { token: minted },
            ))
        }
        (Method::GET, ["v1", "sessions"]) => {
            unix_only(transport, "listing tokens")?;
            Ok(json(StatusCode::OK, &session_list(state)))
        }
        (Method::DELETE, ["v1", "sessions", "current"]) => {
            let existed = state.runner.end_token(&token).await?;
            state.runner.registry().persisted().await?;
            tracing::info!(token = %crate::sessions::token::for_log(&token), existed, "token ended");
            Ok(json(
                StatusCode::OK,
                &api::Ack {
                    ok: true,
                    message: if existed {
                        format!("ended {token}")
                    } else {
                        format!("{token} was not known")
                    },
                },
            ))
        }
        (Method::GET, ["v1", "queries"]) => {
            let params = query_params(request.uri(), &["all"])?;
            let all = params
                .iter()
                .any(|(k, v)| *k == "all" && *v != "false" && *v != "0");
            Ok(json(
                StatusCode::OK,
                &api::StatementList {
                    statements: state
                        .statements
                        .list(&token, all)
                        .into_iter()
                        .map(statement_info)
                        .collect(),
                },
            ))
        }
        (Method::GET, ["v1", "queries", id]) => match state.statements.info(&token, id) {
            Some(info) => Ok(json(StatusCode::OK, &statement_info(info))),
            None => Err(crate::statements::StatementError::NotFound(id.to_string()).into()),
        },
        (Method::GET, ["v1", "queries", id, "result"]) => {
            let params = query_params(request.uri(), &["offset", "limit", "wait_ms"])?;
            let number = |key: &str| -> Result<Option<u64>, ApiError> {
                params
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| {
                        v.parse::<u64>().map_err(|_| {
                            ApiError::bad_request(format!(
                                "`{key}` must be a whole number, not {v:?}"
                            ))
                        })
                    })
                    .transpose()
            };
            let offset = number("offset")?.unwrap_or(0);
            let limit = state.statements.page_limit(number("limit")?);
            let wait = Duration::from_millis(number("wait_ms")?.unwrap_or(0));
            let waited = state
                .statements
                .wait_page(&token, id, wait, offset, limit)
                .await?;
            Ok(waited_answer(state, &token, waited))
        }
        (Method::POST, ["v1", "queries", id, "cancel"]) => {
            if state.statements.cancel(&token, id) {
                Ok(json(
                    StatusCode::OK,
                    &api::Ack {
                        ok: true,
                        message: format!("cancelling {id}"),
                    },
                ))
            } else {
                Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    ErrorKind::NotFound,
                    format!("no running statement has id {id}"),
                )
                .with_hint(
                    "ids are the request ids `snowflaked query` shows while a statement runs",
                ))
            }
        }
        (Method::POST, ["v1", "shutdown"]) => {
            unix_only(transport, "stopping the daemon")?;
            tracing::info!("shutdown requested over the API");
            state.shutdown_requested.cancel();
            Ok(json(
                StatusCode::ACCEPTED,
                &api::Ack {
                    ok: true,
                    message: "draining and exiting".into(),
                },
            ))
        }
        (
            _,
            ["health"]
            | ["metrics"]
            | [
                "v1",
                "status" | "query" | "context" | "sessions" | "shutdown" | "queries",
            ]
            | ["v1", "queries", _]
            | ["v1", "queries", _, "result"]
            | ["v1", "sessions", "current"],
        ) => Err(ApiError::method_not_allowed(&method, &path)),
        _ => Err(ApiError::not_found(&path)),
    }
}

/// Operations that concern every token are for the user's own processes on the Unix socket,
/// not for TCP clients holding one minted token.
fn unix_only(transport: Transport, what: &str) -> Result<(), ApiError> {
    match transport {
        Transport::Unix => Ok(()),
        Transport::Tcp => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorKind::Forbidden,
            format!("{what} is only allowed over the Unix socket"),
        )),
    }
}

/// A header's value; absent is `None`, but a value that is not visible ASCII is a 400 rather
/// than silently ignored.
fn header(request: &Request<Incoming>, name: &str) -> Result<Option<String>, ApiError> {
    request
        .headers()
        .get(name)
        .map(|v| {
            v.to_str()
                .map(str::to_string)
                .map_err(|_| ApiError::bad_request(format!("the {name} header is not ASCII")))
        })
        .transpose()
}

async fn read_json<T: DeserializeOwned>(
    state: &AppState,
    request: Request<Incoming>,
) -> Result<T, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::BodyTooLarge,
            format!(
                "the request body is larger than {} bytes",
                state.max_body_bytes
            ),
        )
        .with_hint("send large SQL from a file the daemon can read, or raise max_body_bytes")
    };
    if let Some(length) = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && length > state.max_body_bytes
    {
        return Err(too_large());
    }
    let limited = Limited::new(request.into_body(), state.max_body_bytes);
    let collected = tokio::time::timeout(state.request_read_timeout, limited.collect())
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                ErrorKind::RequestTimeout,
                "the request body did not arrive in time",
            )
        })?;
    let bytes = match collected {
        Ok(c) => c.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(too_large());
        }
        Err(e) => {
            return Err(ApiError::bad_request(format!(
                "cannot read the request body: {e}"
            )));
        }
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
}

async fn query(
    state: &AppState,
    token: &str,
    body: api::QueryRequest,
    request_id: Option<String>,
) -> Result<Answer, ApiError> {
    if body.sql.trim().is_empty() {
        return Err(ApiError::bad_request("`sql` is empty"));
    }
    let input = QueryInput {
        sql: body.sql,
        max_rows: body.max_rows,
        timeout: body.timeout_ms.map(Duration::from_millis),
        read_only: body.read_only,
        transaction: body.transaction,
        request_id,
        params: match &body.params {
            Some(json) => crate::binds::Params::from_json(json)
                .map_err(|e| ApiError::bad_request(format!("params: {e}")))?,
            None => crate::binds::Params::None,
        },
        query_tag: match body.query_tag {
            Some(tag) if tag.is_empty() => {
                return Err(ApiError::bad_request(
                    "`query_tag` is empty; leave it out to use the token's tag",
                ));
            }
            Some(tag) if tag.chars().count() > api::MAX_QUERY_TAG_CHARS => {
                return Err(ApiError::bad_request(format!(
                    "`query_tag` is longer than Snowflake's {} characters",
                    api::MAX_QUERY_TAG_CHARS
                )));
            }
            tag => tag,
        },
    };
    if let Some(wait_ms) = body.wait_ms {
        // Owned by the daemon from here on: this request only waits for it.
        let id = state.statements.start_detached(token, input);
        let limit = state.statements.page_limit(body.max_rows);
        let waited = state
            .statements
            .wait_page(token, &id, Duration::from_millis(wait_ms), 0, limit)
            .await?;
        return Ok(waited_answer(state, token, waited));
    }
    let (id, outcome) = state.statements.run_owned(token, input).await;
    let outcome = outcome?;
    let output = outcome.output;
    let response = api::QueryResponse {
        query_id: output.query_id,
        columns: api_columns(output.columns),
        row_count: output.rows.len() as u64,
        rows: output.rows,
        truncated: output.truncated,
        statements: outcome
            .statements
            .into_iter()
            .map(|(query_id, row_count)| api::StatementSummary {
                query_id,
                row_count,
            })
            .collect(),
        results: outcome
            .results
            .into_iter()
            .map(|r| api::StatementResult {
                statement: r.sql,
                query_id: r.output.query_id,
                columns: api_columns(r.output.columns),
                row_count: r.output.rows.len() as u64,
                rows: r.output.rows,
                truncated: r.output.truncated,
                rows_affected: r.rows_affected,
            })
            .collect(),
        context: to_api_context(&outcome.context),
        elapsed_ms: outcome.elapsed.as_millis() as u64,
        in_transaction: outcome.in_transaction,
        warnings: outcome.warnings,
        id: Some(id),
        page: None,
    };
    Ok(large_answer(state, json(StatusCode::OK, &response)))
}

/// Notes a large answer, so freed memory goes back to the OS once the daemon is quiet.
fn large_answer(state: &AppState, answer: Answer) -> Answer {
    if answer.body().size_hint().exact().unwrap_or(0) > LARGE_ANSWER_BYTES {
        state
            .memory_to_return
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
    answer
}

/// A statement that is still running (202 with its state), or a page of its result.
fn waited_answer(state: &AppState, token: &str, waited: crate::statements::Waited) -> Answer {
    use crate::statements::Waited;
    match waited {
        Waited::Running(info) => json(StatusCode::ACCEPTED, &statement_info(info)),
        Waited::Page(page) => {
            let response = api::QueryResponse {
                query_id: page.info.query_id.clone().unwrap_or_default(),
                columns: api_columns(page.columns),
                row_count: page.rows.len() as u64,
                rows: page.rows,
                truncated: page.more,
                statements: Vec::new(),
                // A page is one statement's result (the last one of the request).
                results: Vec::new(),
                context: to_api_context(&page.context),
                elapsed_ms: page.info.elapsed.as_millis() as u64,
                in_transaction: state.runner.pool().is_pinned(token),
                warnings: Vec::new(),
                id: Some(page.info.id),
                page: Some(api::PageInfo {
                    offset: page.offset,
                    total_rows: Some(page.total_rows).filter(|_| !page.more || page.total_rows > 0),
                    more: page.more,
                }),
            };
            large_answer(state, json(StatusCode::OK, &response))
        }
    }
}

fn statement_info(info: crate::statements::Info) -> api::StatementInfo {
    api::StatementInfo {
        started: chrono::DateTime::<chrono::Utc>::from(info.started)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        elapsed_ms: info.elapsed.as_millis() as u64,
        state: info.state.as_str().to_string(),
        error: info.error.map(|e| *ApiError::from(e).detail),
        id: info.id,
        query_id: info.query_id,
        rows: info.rows,
        sql: info.sql,
        detached: info.detached,
        held: info.held,
    }
}

/// The query string's `key=value` pairs; keys outside `allowed` are a 400, not ignored.
fn query_params<'a>(
    uri: &'a hyper::Uri,
    allowed: &[&str],
) -> Result<Vec<(&'a str, &'a str)>, ApiError> {
    let mut params = Vec::new();
    for pair in uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, "true"));
        if !allowed.contains(&key) {
            return Err(ApiError::bad_request(format!(
                "unknown parameter `{key}` (expected one of: {})",
                allowed.join(", ")
            )));
        }
        params.push((key, value));
    }
    Ok(params)
}

/// Result columns as the wire shows them.
fn api_columns(columns: Vec<crate::snowflake::ResultColumn>) -> Vec<api::Column> {
    columns
        .into_iter()
        .map(|c| api::Column {
            name: c.name,
            ty: c.ty,
            nullable: c.nullable,
            scale: c.scale,
        })
        .collect()
}

/// Answers larger than this leave enough freed memory behind to be worth returning to the OS.
const LARGE_ANSWER_BYTES: u64 = 1024 * 1024;

fn to_api_context(context: &Context) -> api::Context {
    api::Context {
        database: context.database.clone(),
        schema: context.schema.clone(),
        warehouse: context.warehouse.clone(),
        role: context.role.clone(),
        query_tag: context.query_tag.clone(),
    }
}

async fn context_response(state: &AppState, token: &str) -> Result<api::ContextResponse, ApiError> {
    let context = state.runner.context_of(token).await?;
    Ok(api::ContextResponse {
        token: token.to_string(),
        context: to_api_context(&context),
        in_transaction: state.runner.pool().is_pinned(token),
    })
}

fn session_list(state: &AppState) -> api::SessionList {
    let pool = state.runner.pool();
    api::SessionList {
        sessions: state
            .runner
            .registry()
            .list()
            .into_iter()
            .map(|t| api::SessionInfo {
                in_transaction: pool.is_pinned(&t.name),
                context: to_api_context(
                    &t.context
                        .or_else(|| pool.login_context())
                        .unwrap_or_default(),
                ),
                last_used_s_ago: t.idle_for.as_secs(),
                minted: t.minted,
                token: t.name,
            })
            .collect(),
    }
}

fn health() -> api::Health {
    api::Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
    }
}

/// The status snapshot, shared by `/v1/status` and the systemd status line.
pub fn status(state: &AppState) -> api::Status {
    use std::sync::atomic::Ordering::Relaxed;
    let pool = state.runner.pool().stats();
    // This request itself holds a connection open; the clock restarts when it closes.
    let idle_left_s = if state.idle_timeout.is_zero() || state.activity.open() > 1 {
        None
    } else {
        Some(state.idle_timeout.as_secs())
    };
    api::Status {
        version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
        uptime_s: state.started.elapsed().as_secs(),
        activation: state.activation.to_string(),
        idle_timeout_s: state.idle_timeout.as_secs(),
        idle_left_s,
        sessions: api::SessionCounts {
            total: pool.total() as u64,
            in_use: pool.in_use as u64,
            idle: pool.idle as u64,
            pinned: pool.pinned as u64,
            logging_in: pool.logging_in as u64,
            max: pool.max as u64,
            logins: pool.logins,
            login_failures: pool.login_failures,
        },
        tokens: state.runner.registry().len() as u64,
        open_transactions: pool.open_transactions as u64,
        queries: api::QueryCounts {
            served: state.metrics.queries_served.load(Relaxed),
            failed: state.metrics.queries_failed.load(Relaxed),
            running: state.metrics.queries_running.load(Relaxed),
        },
        connection: state.runner.pool().describe(),
        listeners: state.listeners.clone(),
    }
}

fn metrics(state: &AppState) -> Answer {
    let pool = state.runner.pool().stats();
    let gauges = crate::metrics::Gauges {
        sessions_idle: pool.idle,
        sessions_in_use: pool.in_use,
        sessions_logging_in: pool.logging_in,
        sessions_max: pool.max,
        logins: pool.logins,
        login_failures: pool.login_failures,
        tokens: state.runner.registry().len(),
        open_transactions: pool.pinned,
        uptime_s: state.started.elapsed().as_secs(),
    };
    let mut answer = Response::new(Full::new(Bytes::from(state.metrics.render(&gauges))));
    answer.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    answer
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Answer {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut answer = Response::new(Full::new(Bytes::from(body)));
    *answer.status_mut() = status;
    answer
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    answer
}
