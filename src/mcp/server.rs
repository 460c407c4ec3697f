//! The MCP protocol handler: `initialize` mints this client's token, `tools/list` lists the
//! offered tools, `tools/call` validates the arguments and calls the daemon.
//!
//! Protocol errors (unknown tool, arguments that do not match the schema) are JSON-RPC errors;
//! everything that goes wrong after that — a failed statement, a refused write, a daemon that
//! cannot be reached — is a tool result with `isError: true`, so the model reads it and the
//! server keeps serving.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation,
    InitializeRequestParams, InitializeResult, JsonObject, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::de::DeserializeOwned;

use super::Options;
use super::render;
use super::tools::{
    self, CancelArgs, ColumnsArgs, ContextArgs, DEFAULT_WAIT_S, DescribeArgs, QueriesArgs,
    QueryArgs, ResultArgs, ResultFormat, TablesArgs, ToolKind, UseArgs,
};
use crate::api::{ContextUpdate, QueryRequest};
use crate::catalog;
use crate::client::{Client, ClientError, PageRequest, QueryOutcome};
use tokio_util::sync::CancellationToken;

const INSTRUCTIONS: &str = "Snowflake through snowflaked, a local daemon that keeps logged-in sessions warm. \
This conversation has its own context (database, schema, warehouse, role) that persists between calls: \
check it with `context`, change it with `use`, find tables with `tables` and `columns`, look at one with \
`describe`, then read with `query`, passing values as bind `params`. Results are capped by rows and \
characters; prefer aggregates, filters and LIMIT over raising the caps. A statement that runs longer \
than the call's wait answers its id: get its rows with `result`, list statements with `queries`, stop \
one with `cancel`.";

/// One MCP client's server: cheap to clone, one per `snowflaked mcp` process.
#[derive(Clone)]
pub struct SnowflakedMcp {
    inner: Arc<Inner>,
}

struct Inner {
    /// The daemon client, whose token field is replaced per call by [`Inner::token`].
    client: Client,
    options: Options,
    tools: Vec<Tool>,
    /// This client's token once known. A tokio mutex: minting happens under it, so two
    /// concurrent first calls mint one token, not two.
    token: tokio::sync::Mutex<Option<String>>,
}

impl SnowflakedMcp {
    pub fn new(client: Client, options: Options) -> Self {
        let tools = tools::definitions(options.allow_writes);
        let token = options.fixed_token.clone();
        Self {
            inner: Arc::new(Inner {
                client,
                tools,
                token: tokio::sync::Mutex::new(token),
                options,
            }),
        }
    }

    /// A client carrying this MCP client's token, minting it on first use.
    async fn client(&self) -> Result<Client, ClientError> {
        let mut token = self.inner.token.lock().await;
        if token.is_none() {
            let minter = self.inner.client.with_token(crate::api::DEFAULT_TOKEN);
            let minted = minter.mint_session().await?;
            tracing::info!("minted this MCP client's token");
            *token = Some(minted.token);
        }
        let mut client = self.inner.client.clone();
        client.token = token.clone().unwrap_or_default();
        Ok(client)
    }

    /// Ends the token this server minted (rolling back an open transaction), first cancelling
    /// the statements it left running: nobody could read their results once the token is
    /// gone. A token given with `--session` belongs to someone else and stays, and so do its
    /// statements (its owner can still fetch them with `snowflaked result ID`).
    pub async fn end_session(&self) {
        if self.inner.options.fixed_token.is_some() {
            return;
        }
        let Some(token) = self.inner.token.lock().await.take() else {
            return;
        };
        // Ending must not start a daemon that is not running: a token whose daemon is gone
        // has nothing left to end but its saved context.
        let client = self.inner.client.with_token(token).without_self_start();
        if let Ok(list) = client.statements(false).await {
            for statement in list.statements.iter().filter(|s| s.state == "running") {
                if let Err(e) = client.cancel(&statement.id).await {
                    tracing::warn!(id = %statement.id, "could not cancel a statement this MCP client left running: {e}");
                    continue;
                }
                // Until it has stopped: a token cannot end under a statement of its open
                // transaction.
                let _ = client.result_page(&statement.id, stop_probe()).await;
                tracing::info!(id = %statement.id, "cancelled a statement this MCP client left running");
            }
        }
        match client.end_session().await {
            Ok(_) => tracing::info!("ended this MCP client's token"),
            Err(e) => tracing::warn!("could not end this MCP client's token: {e}"),
        }
    }

    async fn dispatch(
        &self,
        kind: ToolKind,
        arguments: JsonObject,
        cancelled: &CancellationToken,
    ) -> Result<CallToolResult, ErrorData> {
        let result = match kind {
            ToolKind::Query | ToolKind::Execute => {
                let args: QueryArgs = parse(kind, arguments)?;
                return self.run_sql(args, kind == ToolKind::Query, cancelled).await;
            }
            ToolKind::Use => {
                let args: UseArgs = parse(kind, arguments)?;
                if args.is_empty() {
                    return Err(ErrorData::invalid_params(
                        "invalid arguments for tool `use`: give at least one of database, schema, warehouse, role, query_tag",
                        None,
                    ));
                }
                self.use_context(args).await
            }
            ToolKind::Context => {
                let _: ContextArgs = parse(kind, arguments)?;
                self.context().await
            }
            ToolKind::Describe => {
                let args: DescribeArgs = parse(kind, arguments)?;
                return unless_cancelled(cancelled, self.describe(args)).await;
            }
            ToolKind::Tables => {
                let args: TablesArgs = parse(kind, arguments)?;
                return unless_cancelled(cancelled, self.tables(args)).await;
            }
            ToolKind::Columns => {
                let args: ColumnsArgs = parse(kind, arguments)?;
                return unless_cancelled(cancelled, self.columns(args)).await;
            }
            ToolKind::Result => {
                let args: ResultArgs = parse(kind, arguments)?;
                // Only a wait: dropping it leaves the statement alone.
                return unless_cancelled(cancelled, async {
                    Ok(self
                        .result(args)
                        .await
                        .unwrap_or_else(|e| render::error_result(&e)))
                })
                .await;
            }
            ToolKind::Queries => {
                let args: QueriesArgs = parse(kind, arguments)?;
                self.queries(args).await
            }
            ToolKind::Cancel => {
                let args: CancelArgs = parse(kind, arguments)?;
                self.cancel(args).await
            }
        };
        Ok(result.unwrap_or_else(|error| render::error_result(&error)))
    }

    /// `query` (read-only by the daemon's lexer) and `execute` (one transaction). The
    /// statement is started with a bounded wait, so it belongs to the daemon: past the wait
    /// the answer is its id and state, and a call the MCP client cancels cancels it by id
    /// (a closed connection no longer would).
    async fn run_sql(
        &self,
        args: QueryArgs,
        read_only: bool,
        cancelled: &CancellationToken,
    ) -> Result<CallToolResult, ErrorData> {
        let client = match self.client().await {
            Ok(client) => client,
            Err(error) => return Ok(render::error_result(&error)),
        };
        let request = QueryRequest {
            sql: args.sql,
            max_rows: args.max_rows,
            timeout_ms: args.timeout_s.map(|s| s.saturating_mul(1000)),
            read_only: read_only.then_some(true),
            transaction: !read_only,
            params: args.params,
            query_tag: None,
            wait_ms: Some(args.wait_s.unwrap_or(DEFAULT_WAIT_S).saturating_mul(1000)),
        };
        let max_chars = args
            .max_chars
            .unwrap_or(self.inner.options.default_max_chars);
        let format = args.format.unwrap_or(ResultFormat::Markdown);
        // Chosen here, so the statement can be cancelled before it answers.
        let request_id = crate::api::new_statement_id("mcp");
        tokio::select! {
            answer = client.submit(&request, &request_id) => Ok(match answer {
                Ok(QueryOutcome::Finished(response)) => render::query_result(&response, format, max_chars),
                Ok(QueryOutcome::Running(info)) => render::running_result(&info),
                Err(error) => render::error_result(&error),
            }),
            () = cancelled.cancelled() => {
                match client.cancel(&request_id).await {
                    Ok(_) => tracing::info!(id = %request_id, "cancelled at the MCP client's request"),
                    Err(e) => tracing::warn!(id = %request_id, "could not cancel the statement: {e}"),
                }
                Err(cancelled_by_client())
            }
        }
    }

    async fn use_context(&self, args: UseArgs) -> Result<CallToolResult, ClientError> {
        let update = ContextUpdate {
            database: args.database,
            schema: args.schema,
            warehouse: args.warehouse,
            role: args.role,
            query_tag: args.query_tag,
        };
        let client = self.client().await?;
        let response = client.set_context(&update).await?;
        Ok(render::context_result(&response))
    }

    async fn context(&self) -> Result<CallToolResult, ClientError> {
        let client = self.client().await?;
        let response = client.context().await?;
        Ok(render::context_result(&response))
    }

    fn max_chars(&self, asked: Option<usize>) -> usize {
        asked.unwrap_or(self.inner.options.default_max_chars)
    }

    async fn describe(&self, args: DescribeArgs) -> Result<CallToolResult, ErrorData> {
        let client = match self.client().await {
            Ok(client) => client,
            Err(error) => return Ok(render::error_result(&error)),
        };
        let described =
            catalog::describe(&client, &args.name, args.sample.unwrap_or(0), args.max_rows).await;
        Ok(match described {
            Ok(described) => render::described_result(
                &args.name,
                &described,
                args.format.unwrap_or_default(),
                self.max_chars(args.max_chars),
            ),
            Err(error) => render::catalog_error(&error),
        })
    }

    async fn tables(&self, args: TablesArgs) -> Result<CallToolResult, ErrorData> {
        let client = match self.client().await {
            Ok(client) => client,
            Err(error) => return Ok(render::error_result(&error)),
        };
        let listing = catalog::tables(
            &client,
            args.pattern.as_deref(),
            args.within.as_deref(),
            args.max_rows,
        )
        .await;
        Ok(self.listing(listing, args.format, args.max_chars, "tables"))
    }

    async fn columns(&self, args: ColumnsArgs) -> Result<CallToolResult, ErrorData> {
        let client = match self.client().await {
            Ok(client) => client,
            Err(error) => return Ok(render::error_result(&error)),
        };
        let listing = catalog::columns(
            &client,
            &args.pattern,
            args.within.as_deref(),
            args.max_rows,
        )
        .await;
        Ok(self.listing(listing, args.format, args.max_chars, "columns"))
    }

    fn listing(
        &self,
        listing: Result<catalog::Listing, catalog::CatalogError>,
        format: Option<ResultFormat>,
        max_chars: Option<usize>,
        what: &str,
    ) -> CallToolResult {
        match listing {
            Ok(listing) => render::listing_result(
                &listing,
                format.unwrap_or_default(),
                self.max_chars(max_chars),
                what,
            ),
            Err(error) => render::catalog_error(&error),
        }
    }

    async fn result(&self, args: ResultArgs) -> Result<CallToolResult, ClientError> {
        let client = self.client().await?;
        let wait = Duration::from_secs(args.wait_s.unwrap_or(DEFAULT_WAIT_S));
        let answer = client
            .result_page(
                &args.id,
                PageRequest {
                    offset: args.offset.unwrap_or(0),
                    limit: args.max_rows,
                    wait: Some(wait),
                },
            )
            .await?;
        Ok(match answer {
            QueryOutcome::Finished(response) => render::query_result(
                &response,
                args.format.unwrap_or_default(),
                self.max_chars(args.max_chars),
            ),
            QueryOutcome::Running(info) => render::running_result(&info),
        })
    }

    async fn queries(&self, args: QueriesArgs) -> Result<CallToolResult, ClientError> {
        let client = self.client().await?;
        let list = client.statements(args.all.unwrap_or(false)).await?;
        Ok(render::queries_result(&list))
    }

    /// Cancels, then waits briefly for the statement to stop, to answer how it ended.
    async fn cancel(&self, args: CancelArgs) -> Result<CallToolResult, ClientError> {
        let client = self.client().await?;
        client.cancel(&args.id).await?;
        let state = match client.result_page(&args.id, stop_probe()).await {
            Ok(QueryOutcome::Finished(_)) => "succeeded",
            Ok(QueryOutcome::Running(_)) => "running",
            Err(ClientError::Api { error, .. })
                if error.kind == crate::api::ErrorKind::Cancelled =>
            {
                "cancelled"
            }
            Err(ClientError::Api { .. }) => "failed",
            Err(other) => return Err(other),
        };
        Ok(render::cancel_result(&args.id, state))
    }
}

/// One row of a statement's result, waiting up to [`STOP_WAIT`]: asks how a cancelled
/// statement ended.
fn stop_probe() -> PageRequest {
    PageRequest {
        offset: 0,
        limit: Some(1),
        wait: Some(STOP_WAIT),
    }
}

/// How long a cancelled statement is given to stop before its state is reported.
const STOP_WAIT: Duration = Duration::from_secs(5);

fn cancelled_by_client() -> ErrorData {
    ErrorData::internal_error("cancelled by the client", None)
}

/// Runs `call` unless the MCP client cancels the request first (dropping it).
async fn unless_cancelled(
    cancelled: &CancellationToken,
    call: impl Future<Output = Result<CallToolResult, ErrorData>>,
) -> Result<CallToolResult, ErrorData> {
    tokio::select! {
        result = call => result,
        () = cancelled.cancelled() => Err(cancelled_by_client()),
    }
}

/// Arguments that do not match the tool's schema are a JSON-RPC error (-32602), as the MCP
/// specification has it for malformed requests.
fn parse<T: DeserializeOwned>(kind: ToolKind, arguments: JsonObject) -> Result<T, ErrorData> {
    let value: T = serde_json::from_value(serde_json::Value::Object(arguments)).map_err(|e| {
        ErrorData::invalid_params(
            format!("invalid arguments for tool `{}`: {e}", kind.name()),
            None,
        )
    })?;
    Ok(value)
}

impl ServerHandler for SnowflakedMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("snowflaked", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        context.peer.set_peer_info(request.clone());
        // Mint now, so the first tool call is a plain statement. A daemon that cannot be
        // reached is not fatal here: the first tool call tries again and reports it.
        if let Err(e) = self.client().await {
            tracing::warn!("could not get a token from snowflaked yet: {e}");
        }
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.inner.tools.clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.inner.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(kind) = ToolKind::find(&request.name, self.inner.options.allow_writes) else {
            let hint = if request.name == "execute" {
                " (writes are offered only when the server runs with --allow-writes)"
            } else {
                ""
            };
            return Err(ErrorData::invalid_params(
                format!("unknown tool: {}{hint}", request.name),
                None,
            ));
        };
        let arguments = request.arguments.unwrap_or_default();
        self.dispatch(kind, arguments, &context.ct)
            .await
            .map(CallToolResponse::from)
    }
}
