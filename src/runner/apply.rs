//! Getting a session into a token's context before its statements run.
//!
//! Only the difference between the session's context and the token's is replayed. When the
//! token's saved context cannot be applied (its database was dropped, a role revoked, the
//! backend restarted empty), the statement must never run in whatever context the pooled
//! session happens to have — that may be another token's. Instead a fresh session (the
//! connection's login defaults) gets every part of the token's context that still applies,
//! the client is warned about each part that did not, and what Snowflake then reports is
//! saved as the token's context.

use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;

use super::{Request, RunError, Runner};
use crate::pool::Lease;
use crate::sessions::Context;
use crate::sessions::context::{self, quote_ident};
use crate::snowflake::BackendError;

impl Runner {
    /// Checks out a session for the request's token with the token's context applied.
    pub(super) async fn checkout_for(&self, request: &mut Request<'_>) -> Result<Lease, RunError> {
        let lease = self
            .pool
            .checkout(request.token, self.registry.context(request.token).as_ref())
            .await?;
        let lease = self.prepare(request, lease).await?;
        self.tag_for_request(request, lease).await
    }

    /// A freshly logged-in session with the token's context applied.
    pub(super) async fn checkout_fresh_for(
        &self,
        request: &mut Request<'_>,
    ) -> Result<Lease, RunError> {
        let lease = self.pool.checkout_fresh(request.token).await?;
        let lease = self.prepare(request, lease).await?;
        self.tag_for_request(request, lease).await
    }

    /// `--query-tag`: sets the request's own tag on the session (also on a session that
    /// replaces an expired one mid-request). Snowflake has no per-statement tag and the client
    /// crate no per-statement session parameters, so the tag is set with ALTER SESSION and the
    /// token's own tag restored after ([`Runner::restore_query_tag`]). The session's recorded
    /// context says the request's tag first, so if the request ends before the restore, the
    /// session's next user sees the difference and applies its own.
    async fn tag_for_request(
        &self,
        request: &Request<'_>,
        mut lease: Lease,
    ) -> Result<Lease, RunError> {
        let Some(tag) = &request.query_tag else {
            return Ok(lease);
        };
        let mut recorded = lease.resolve_context().await?;
        recorded.query_tag = Some(tag.clone());
        lease.set_context(recorded);
        let sql = format!(
            "ALTER SESSION SET QUERY_TAG = {}",
            context::quote_string(tag)
        );
        if let Err(e) = lease.execute(&sql, Some(0), CancellationToken::new()).await {
            return Err(e.into());
        }
        Ok(lease)
    }

    /// Puts the token's own query tag back after a `--query-tag` request. If that fails the
    /// session (unless it holds the token's transaction) is not reused.
    pub(super) async fn restore_query_tag(&self, token: &str, lease: &mut Lease) {
        let tag = self.wanted_context(token).query_tag;
        let sql = match &tag {
            Some(tag) => format!(
                "ALTER SESSION SET QUERY_TAG = {}",
                context::quote_string(tag)
            ),
            None => "ALTER SESSION UNSET QUERY_TAG".to_string(),
        };
        match lease.execute(&sql, Some(0), CancellationToken::new()).await {
            Ok(_) => {
                if let Ok(mut recorded) = lease.resolve_context().await {
                    recorded.query_tag = tag;
                    lease.set_context(recorded);
                }
            }
            Err(e) if lease.is_pinned() => {
                tracing::warn!(token = %crate::sessions::token::for_log(token), error = %e, "restoring the query tag failed; the transaction's statements keep the request's tag");
            }
            Err(e) => {
                tracing::warn!(error = %e, "restoring the query tag failed; the session is not reused");
                lease.discard();
            }
        }
    }

    /// Applies the difference between the session's context and the token's.
    async fn prepare(
        &self,
        request: &mut Request<'_>,
        mut lease: Lease,
    ) -> Result<Lease, RunError> {
        if lease.is_pinned() {
            // A transaction session already has the token's context.
            return Ok(lease);
        }
        let token = request.token;
        for attempt in 0..2 {
            let saved = self.registry.context(token);
            let default_tag = self.default_tag(token);
            if saved.is_none() && lease.context().is_none() && default_tag.is_none() {
                // A fresh session has the login defaults, which is what the token wants.
                return Ok(lease);
            }
            let mut wanted = match saved {
                Some(saved) => saved,
                None => match self.pool.login_context() {
                    Some(defaults) => defaults,
                    // Only the default tag is missing: this session has the login defaults.
                    None if lease.context().is_none() => lease.resolve_context().await?,
                    None => {
                        // The login defaults are unknown and this session is not at them:
                        // only a fresh session is sure to have them.
                        drop(lease);
                        lease = self.pool.checkout_fresh(token).await?;
                        continue;
                    }
                },
            };
            wanted.query_tag = wanted.query_tag.or(default_tag);
            let current = lease.resolve_context().await?;
            let plan = context::plan(&current, &wanted);
            if !plan.cannot_clear.is_empty() && !lease.is_fresh() {
                // No statement can clear what another token set; a fresh session can.
                tracing::debug!(token = %crate::sessions::token::for_log(token), fields = ?plan.cannot_clear, "context needs a fresh session");
                drop(lease);
                lease = self.pool.checkout_fresh(token).await?;
                continue;
            }
            if plan.statements.is_empty() {
                return Ok(lease);
            }
            tracing::debug!(
                token = %crate::sessions::token::for_log(token),
                session = lease.session_id(),
                changes = plan.statements.len(),
                "applying context"
            );
            let mut failure = None;
            for statement in &plan.statements {
                if let Err(e) = lease
                    .execute(statement, Some(0), CancellationToken::new())
                    .await
                {
                    failure = Some(e);
                    break;
                }
            }
            match failure {
                None => {
                    let actual = lease
                        .read_context(wanted.query_tag.clone())
                        .await?
                        .unwrap_or(wanted);
                    lease.set_context(actual);
                    return Ok(lease);
                }
                Some(e) if e.is_session_expired() && attempt == 0 => {
                    self.metrics
                        .session_expiry_recoveries
                        .fetch_add(1, Ordering::Relaxed);
                    lease.discard();
                    drop(lease);
                    lease = self.pool.checkout_fresh(token).await?;
                }
                Some(BackendError::Statement { .. }) => {
                    // Part of the plan ran, so this session's context is a mix of the token's
                    // and whoever used it before: never run the token's statement here.
                    lease.discard();
                    drop(lease);
                    return self.apply_what_applies(request, wanted).await;
                }
                Some(e) => {
                    // The session's context is now unknown; do not reuse it.
                    lease.discard();
                    return Err(e.into());
                }
            }
        }
        Ok(lease)
    }

    /// On a fresh session, applies each part of `wanted` that Snowflake still accepts, warns
    /// the client about each part it refused, and saves what Snowflake then reports.
    async fn apply_what_applies(
        &self,
        request: &mut Request<'_>,
        wanted: Context,
    ) -> Result<Lease, RunError> {
        let token = request.token;
        let mut lease = self.pool.checkout_fresh(token).await?;
        let base = lease.resolve_context().await?;
        let mut refused: Vec<(&str, String, String)> = Vec::new();
        let mut database_applied = true;
        let steps: [(&str, &Option<String>, &Option<String>); 3] = [
            ("role", &wanted.role, &base.role),
            ("warehouse", &wanted.warehouse, &base.warehouse),
            ("database", &wanted.database, &base.database),
        ];
        for (field, want, have) in steps {
            let Some(name) = want.as_deref().filter(|_| want != have) else {
                continue;
            };
            let sql = format!("USE {} {}", field.to_ascii_uppercase(), quote_ident(name));
            match lease.execute(&sql, Some(0), CancellationToken::new()).await {
                Ok(_) => {}
                Err(BackendError::Statement { message, .. }) => {
                    if field == "database" {
                        database_applied = false;
                    }
                    refused.push((field, name.to_string(), message));
                }
                Err(e) => {
                    lease.discard();
                    return Err(e.into());
                }
            }
        }
        if let (Some(schema), true) = (&wanted.schema, database_applied) {
            let qualified = match &wanted.database {
                Some(d) => format!("{}.{}", quote_ident(d), quote_ident(schema)),
                None => quote_ident(schema),
            };
            match lease
                .execute(
                    &format!("USE SCHEMA {qualified}"),
                    Some(0),
                    CancellationToken::new(),
                )
                .await
            {
                Ok(_) => {}
                Err(BackendError::Statement { message, .. }) => {
                    refused.push(("schema", schema.clone(), message))
                }
                Err(e) => {
                    lease.discard();
                    return Err(e.into());
                }
            }
        } else if let Some(schema) = &wanted.schema {
            refused.push((
                "schema",
                schema.clone(),
                "its database could not be applied".into(),
            ));
        }
        let actual = match lease.read_context(wanted.query_tag.clone()).await? {
            Some(actual) => actual,
            None => {
                lease.discard();
                return Err(RunError::Unreachable(
                    "the session's context could not be read back from Snowflake".into(),
                ));
            }
        };
        for (field, name, why) in refused {
            let now = match field {
                "role" => &actual.role,
                "warehouse" => &actual.warehouse,
                "database" => &actual.database,
                _ => &actual.schema,
            };
            let now = now.as_deref().unwrap_or("none");
            request.warnings.push(format!(
                "this token's {field} {name} could not be applied ({why}); it now has {field} {now} — run `snowflaked use {field} NAME` to choose another"
            ));
        }
        tracing::warn!(
            token = %crate::sessions::token::for_log(token),
            dropped = request.warnings.len(),
            "the token's saved context could not be fully applied; continuing from the connection's login defaults"
        );
        // Saved only if the token still wants what this request set out to apply: a USE of the
        // token that finished meanwhile (a parallel call) is newer and must not be overwritten.
        if self.registry.context(token).as_ref() == Some(&wanted) {
            self.registry.set_context(token, actual.clone());
        }
        lease.set_context(actual);
        Ok(lease)
    }
}
