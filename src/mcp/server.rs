//! The MCP protocol handler: `initialize` mints this client's token, `tools/list` lists the
//! offered tools, `tools/call` validates the arguments and calls the daemon.
//!
//! Protocol errors (unknown tool, arguments that do not match the schema) are JSON-RPC errors;
//! everything that goes wrong after that — a failed statement, a refused write, a daemon that
//! cannot be reached — is a tool result with `isError: true`, so the model reads it and the
//! server keeps serving.

use std::sync::Arc;

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
use super::tools::{self, ContextArgs, QueryArgs, ResultFormat, ToolKind, UseArgs};
use crate::api::{ContextUpdate, QueryRequest};
use crate::client::{Client, ClientError};

const INSTRUCTIONS: &str = "Snowflake through snowflaked, a local daemon that keeps logged-in sessions warm. \
This conversation has its own context (database, schema, warehouse, role) that persists between calls: \
check it with `context`, change it with `use`, then read with `query`. Results are capped by rows and \
characters; prefer aggregates, filters and LIMIT over raising the caps.";

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
        Ok(self
            .inner
            .client
            .with_token(token.clone().unwrap_or_default()))
    }

    /// Ends the token this server minted (rolling back an open transaction); a token given
    /// with `--session` belongs to someone else and stays.
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
        match client.end_session().await {
            Ok(_) => tracing::info!("ended this MCP client's token"),
            Err(e) => tracing::warn!("could not end this MCP client's token: {e}"),
        }
    }

    async fn dispatch(
        &self,
        kind: ToolKind,
        arguments: JsonObject,
    ) -> Result<CallToolResult, ErrorData> {
        let result = match kind {
            ToolKind::Query => {
                let args: QueryArgs = parse(kind, arguments)?;
                self.run_sql(args, true).await
            }
            ToolKind::Execute => {
                let args: QueryArgs = parse(kind, arguments)?;
                self.run_sql(args, false).await
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
        };
        Ok(result.unwrap_or_else(|error| render::error_result(&error)))
    }

    /// `query` (read-only by the daemon's lexer) and `execute` (one transaction).
    async fn run_sql(
        &self,
        args: QueryArgs,
        read_only: bool,
    ) -> Result<CallToolResult, ClientError> {
        let client = self.client().await?;
        let mut request = QueryRequest {
            sql: args.sql,
            ..Default::default()
        };
        request.max_rows = args.max_rows;
        request.timeout_ms = args.timeout_s.map(|s| s.saturating_mul(1000));
        request.read_only = read_only.then_some(true);
        request.transaction = !read_only;
        let response = client.query(&request).await?;
        let max_chars = args
            .max_chars
            .unwrap_or(self.inner.options.default_max_chars);
        Ok(render::query_result(
            &response,
            args.format.unwrap_or(ResultFormat::Markdown),
            max_chars,
        ))
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
        // A cancelled request drops the daemon call, whose closed connection cancels the
        // statement in Snowflake.
        tokio::select! {
            result = self.dispatch(kind, arguments) => result.map(CallToolResponse::from),
            () = context.ct.cancelled() => Err(ErrorData::internal_error("cancelled by the client", None)),
        }
    }
}
