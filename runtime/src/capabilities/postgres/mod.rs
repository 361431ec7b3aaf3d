//! `wasmcloud:postgres@0.1.1-draft` in the host: `query.query` and `query.query-batch`, and
//! `prepared.prepare` / `prepared.exec`, through the component's link to a `sqldb-postgres`
//! capability, on the host's connection pool for the link's settings ([`connection`]).
//! Parameters go in PostgreSQL's text format ([`params`]); results come back in its binary
//! format and become `pg-value`s ([`columns`]). A query PostgreSQL refuses is the interface's
//! error with PostgreSQL's message and SQLSTATE: `invalid-params` for a value that does not fit
//! its parameter, `invalid-query` for a statement it cannot run, `unexpected` for the rest (an
//! unreachable server included, which the app's status also shows).

pub mod columns;
pub mod connection;
pub mod floats;
pub mod params;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use scheduler::Provider;
use tokio_postgres::types::ToSql;

pub use super::bindings::wasmcloud::postgres::types as pg;
use super::bindings::wasmcloud::postgres::{prepared, query};
use super::links::LinkGrant;
use super::recent_failures::{RecentFailures, RECONNECT_AFTER};
use crate::engine::GuestState;
use connection::{Pools, Settings};
use pg::{PgValue, PreparedStatementExecError, QueryError, ResultRow, ResultRowEntry};

/// The interfaces, as links name them.
pub const QUERY: &str = "wasmcloud:postgres/query";
pub const PREPARED: &str = "wasmcloud:postgres/prepared";
/// Where a component's log lines about its Postgres links go.
const LOG_CONTEXT: &str = "flotilla:postgres";
/// Prepared statements a component may hold on a host; preparing one more forgets the oldest.
const MAX_PREPARED_PER_COMPONENT: usize = 1024;

/// The host's Postgres pools and the statements components prepared.
#[derive(Default)]
pub struct Databases {
    pools: Pools,
    /// Databases that could not be reached lately, by their settings (a corrected password is
    /// tried at once): when, and why. Calls fail at once for [`RECONNECT_AFTER`] after such a failure instead of each
    /// waiting out the connect timeout while holding a replica's permit.
    unreachable: RecentFailures<Settings, String>,
    prepared: Mutex<BTreeMap<(String, String), BTreeMap<u64, PreparedStatement>>>,
    next_token: AtomicU64,
}

/// A statement a component prepared, and the database it was prepared on.
#[derive(Clone)]
struct PreparedStatement {
    sql: String,
    settings: Settings,
}

impl Databases {
    /// Forgets the prepared statements of apps not in `keep`.
    pub fn retain_apps(&self, keep: impl Fn(&str) -> bool) {
        self.prepared
            .lock()
            .expect("prepared lock")
            .retain(|(app, _), _| keep(app));
    }

    /// Runs `sql` with `params` on the database of `settings` and returns its rows.
    pub async fn query(
        &self,
        settings: &Settings,
        sql: &str,
        params: &[PgValue],
    ) -> Result<Vec<ResultRow>, QueryError> {
        let (client, statement, params) = self.statement(settings, sql, params).await?;
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = client
            .query(&statement, &refs)
            .await
            .map_err(|e| refused(&e))?;
        rows.iter().map(row).collect()
    }

    /// Runs `sql`, which may hold several statements and takes no parameters.
    pub async fn query_batch(&self, settings: &Settings, sql: &str) -> Result<(), QueryError> {
        let client = self
            .client(settings)
            .await
            .map_err(QueryError::Unexpected)?;
        client.batch_execute(sql).await.map_err(|e| refused(&e))
    }

    /// Runs `sql` with `params` and returns how many rows it changed.
    pub async fn execute(
        &self,
        settings: &Settings,
        sql: &str,
        params: &[PgValue],
    ) -> Result<u64, QueryError> {
        let (client, statement, params) = self.statement(settings, sql, params).await?;
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        client
            .execute(&statement, &refs)
            .await
            .map_err(|e| refused(&e))
    }

    /// A connection, `sql` prepared on it, and `params` bound to the statement's parameters.
    async fn statement(
        &self,
        settings: &Settings,
        sql: &str,
        params: &[PgValue],
    ) -> Result<
        (
            deadpool_postgres::Client,
            tokio_postgres::Statement,
            Vec<params::TextParam>,
        ),
        QueryError,
    > {
        let client = self
            .client(settings)
            .await
            .map_err(QueryError::Unexpected)?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| QueryError::InvalidQuery(message(&e)))?;
        let params = bind(statement.params().len(), params)?;
        Ok((client, statement, params))
    }

    async fn client(&self, settings: &Settings) -> Result<deadpool_postgres::Client, String> {
        let database = settings.describe();
        if let Some(why) = self.unreachable.recent(settings) {
            return Err(format!(
                "connecting to {database}: {why} (not tried again for {} s)",
                RECONNECT_AFTER.as_secs()
            ));
        }
        let pool = self.pools.pool(settings)?;
        match pool.get().await {
            Ok(client) => {
                self.unreachable.succeeded(settings);
                Ok(client)
            }
            Err(e) => {
                // A busy pool (waiting for a free connection) says nothing of the server.
                let server_failed = !matches!(
                    e,
                    deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait)
                );
                let why = match e {
                    deadpool_postgres::PoolError::Backend(e) => message(&e),
                    other => other.to_string(),
                };
                if server_failed {
                    self.unreachable.failed(settings.clone(), why.clone());
                }
                Err(format!("connecting to {database}: {why}"))
            }
        }
    }

    /// Checks `sql` on the database and keeps it for `owner` under a new token.
    async fn prepare(
        &self,
        owner: (String, String),
        settings: &Settings,
        sql: String,
    ) -> Result<String, String> {
        let client = self.client(settings).await?;
        client.prepare_cached(&sql).await.map_err(|e| message(&e))?;
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let mut prepared = self.prepared.lock().expect("prepared lock");
        let mine = prepared.entry(owner).or_default();
        while mine.len() >= MAX_PREPARED_PER_COMPONENT {
            mine.pop_first();
        }
        let settings = settings.clone();
        mine.insert(token, PreparedStatement { sql, settings });
        Ok(format!("{PREPARED_TOKEN_PREFIX}{token}"))
    }

    fn prepared(&self, owner: &(String, String), token: &str) -> Option<PreparedStatement> {
        let n: u64 = token.strip_prefix(PREPARED_TOKEN_PREFIX)?.parse().ok()?;
        self.prepared
            .lock()
            .expect("prepared lock")
            .get(owner)?
            .get(&n)
            .cloned()
    }
}

/// How prepared-statement tokens start.
const PREPARED_TOKEN_PREFIX: &str = "pg-prepared-";

/// `params` for a statement that takes `expected` of them.
fn bind(expected: usize, params: &[PgValue]) -> Result<Vec<params::TextParam>, QueryError> {
    if expected != params.len() {
        return Err(QueryError::InvalidParams(format!(
            "the statement takes {expected} parameter(s), {} given",
            params.len()
        )));
    }
    Ok(params.iter().map(params::param).collect())
}

fn row(row: &tokio_postgres::Row) -> Result<ResultRow, QueryError> {
    row.columns()
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let raw: columns::Raw = row
                .try_get(i)
                .map_err(|e| QueryError::Unexpected(e.to_string()))?;
            let value = columns::value(column.type_(), raw.0).map_err(|why| {
                QueryError::Unexpected(format!("column \"{}\": {why}", column.name()))
            })?;
            Ok(ResultRowEntry {
                column_name: column.name().to_string(),
                value,
            })
        })
        .collect()
}

/// PostgreSQL's message and SQLSTATE, or the client's error.
fn message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// A statement PostgreSQL refused to run, by its SQLSTATE class: 22 (data exception: a value
/// that does not fit) is the parameters' fault, 42 (syntax or access) the query's.
fn refused(e: &tokio_postgres::Error) -> QueryError {
    let why = message(e);
    match e.as_db_error().map(|db| &db.code().code()[..2]) {
        Some("22") => QueryError::InvalidParams(why),
        Some("42") => QueryError::InvalidQuery(why),
        _ => QueryError::Unexpected(why),
    }
}

impl GuestState {
    /// The settings of the component's current link for `interface`.
    fn postgres(&mut self, interface: &str) -> Result<(Arc<LinkGrant>, Settings), String> {
        let link = self.link_for(interface)?;
        if link.provider != Provider::SqldbPostgres {
            return Err(format!(
                "link '{}' for {interface} leads to '{}', which is not a Postgres capability",
                link.name, link.target
            ));
        }
        match Settings::from_link(|key| self.link_setting(&link, key)) {
            Ok(settings) => Ok((link, settings)),
            Err(why) => {
                self.link_failed(&link, LOG_CONTEXT, &why);
                Err(why)
            }
        }
    }

    /// Records how a call on `link` went: only the server's failures make the link unhealthy.
    fn postgres_outcome<T>(&self, link: &LinkGrant, outcome: &Result<T, QueryError>) {
        match outcome {
            Err(QueryError::Unexpected(why)) => self.link_failed(link, LOG_CONTEXT, why),
            _ => self.link_succeeded(link),
        }
    }

    fn owner(&self) -> (String, String) {
        let origin = self.sink.origin();
        (origin.app.clone(), origin.component.clone())
    }
}

impl pg::Host for GuestState {}

impl query::Host for GuestState {
    async fn query(
        &mut self,
        sql: String,
        params: Vec<PgValue>,
    ) -> wasmtime::Result<Result<Vec<ResultRow>, QueryError>> {
        let (link, settings) = match self.postgres(QUERY) {
            Ok(pair) => pair,
            Err(why) => return Ok(Err(QueryError::Unexpected(why))),
        };
        let outcome = self
            .backends
            .databases
            .query(&settings, &sql, &params)
            .await;
        self.postgres_outcome(&link, &outcome);
        Ok(outcome)
    }

    async fn query_batch(&mut self, sql: String) -> wasmtime::Result<Result<(), QueryError>> {
        let (link, settings) = match self.postgres(QUERY) {
            Ok(pair) => pair,
            Err(why) => return Ok(Err(QueryError::Unexpected(why))),
        };
        let outcome = self.backends.databases.query_batch(&settings, &sql).await;
        self.postgres_outcome(&link, &outcome);
        Ok(outcome)
    }
}

impl prepared::Host for GuestState {
    async fn prepare(
        &mut self,
        statement: String,
    ) -> wasmtime::Result<Result<String, pg::StatementPrepareError>> {
        let (link, settings) = match self.postgres(PREPARED) {
            Ok(pair) => pair,
            Err(why) => return Ok(Err(pg::StatementPrepareError::Unexpected(why))),
        };
        let owner = self.owner();
        let prepared = self
            .backends
            .databases
            .prepare(owner, &settings, statement)
            .await;
        match &prepared {
            Ok(_) => self.link_succeeded(&link),
            Err(why) => self.link_failed(&link, LOG_CONTEXT, why),
        }
        Ok(prepared.map_err(pg::StatementPrepareError::Unexpected))
    }

    async fn exec(
        &mut self,
        token: String,
        params: Vec<PgValue>,
    ) -> wasmtime::Result<Result<u64, PreparedStatementExecError>> {
        let Some(statement) = self.backends.databases.prepared(&self.owner(), &token) else {
            return Ok(Err(PreparedStatementExecError::UnknownPreparedQuery));
        };
        let link = match self.link_for(PREPARED) {
            Ok(link) => link,
            Err(why) => return Ok(Err(PreparedStatementExecError::Unexpected(why))),
        };
        let outcome = self
            .backends
            .databases
            .execute(&statement.settings, &statement.sql, &params)
            .await;
        self.postgres_outcome(&link, &outcome);
        Ok(outcome.map_err(PreparedStatementExecError::QueryError))
    }
}
