//! Queries under a grant's terms: the consumer's SQL is parsed and planned
//! by DataFusion in a session that holds one table, then the logical plan
//! (never the SQL text) is checked and rewritten so that what runs can only
//! return what the terms allow.
//!
//! Every scan of the table becomes
//!
//! ```text
//! SubqueryAlias: <table>                 the name the consumer's SQL uses
//!   PolicyBoundary                       nothing above is pushed below
//!     Projection: <allowed, masked>      masks applied at the scan
//!       Filter: <row filter>             directly above the scan
//!         TableScan: <table>
//! ```
//!
//! The consumer plans against a table that has only the allowed columns,
//! with the masked ones at their masked types, so `SELECT *` expands to the
//! allowed columns and a forbidden one is refused by name wherever it
//! appears (alias, subquery, CTE, UNION, CASE, cast). The boundary keeps the
//! optimizer from pushing the consumer's predicates below the row filter or
//! the masks, logically and physically, so no expression of the consumer's
//! is ever evaluated on a filtered row or an unmasked value (not even one
//! that would only raise an error).
//!
//! Aggregate-only terms admit one scan of the table, no join, union, unnest,
//! window or DISTINCT, and an aggregation on the way from the scan to the
//! output using only allow-listed aggregate functions; that aggregation gets
//! a hidden `count(*)` and every group with fewer than `k` rows is dropped
//! directly above it. A row cap becomes a limit over the whole query.
//!
//! A query is parsed and planned on a thread with a large stack, and refused
//! past fixed limits of size and depth ([`MAX_SQL`], [`MAX_NESTING`],
//! [`MAX_EXPR_DEPTH`], [`MAX_SUBQUERY_DEPTH`], [`MAX_RELATIONS`]), so that no
//! input overflows a stack, there or later in the optimizer and executor on
//! the caller's thread.

use crate::terms::{allowed_fields, visible_schema};
use crate::QueryTerms;
use arrow::array::{Array, ArrayRef, StringBuilder};
use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchemaRef, DataFusionError, ScalarValue, SchemaError, TableReference};
use datafusion::datasource::empty::EmptyTable;
use datafusion::datasource::provider_as_source;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{
    cast, lit, ColumnarValue, Expr, Extension, LogicalPlan, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, UserDefinedLogicalNode, UserDefinedLogicalNodeCore, Volatility,
};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PhysicalExpr, PlanProperties};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParserBuilder, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{self as sql_ast, SetExpr, Statement, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use sha2::{Digest as _, Sha256};
use std::ops::ControlFlow;
use std::sync::Arc;

/// Longest SQL text a query may have, in bytes.
pub const MAX_SQL: usize = 64 * 1024;
/// How deep the SQL parser may nest before it refuses.
pub const MAX_NESTING: usize = 64;
/// How deep expressions and subqueries may nest, counting one level per
/// operator of a chain (`a + a + …` nests as deep as it is long, and the
/// parser, which reads such a chain in a loop, does not see it). DataFusion
/// clones and types expressions by plain recursion, so a deeper expression
/// could overflow the stack of the thread that plans or runs it.
pub const MAX_EXPR_DEPTH: usize = 128;
/// Most tables, subqueries (in FROM) and set operations (UNION, INTERSECT,
/// EXCEPT) one query may hold: each join or union is a level of the plan,
/// which parts of the optimizer walk by plain recursion (101 joined tables
/// overflow a 2 MiB stack in a debug build).
pub const MAX_RELATIONS: usize = 64;
/// How deep subqueries may nest (in FROM, in expressions, in CTEs).
/// DataFusion's optimizer takes time exponential in this depth for nested
/// scalar subqueries (about 1.7 times per level), and plans each level by
/// recursion.
pub const MAX_SUBQUERY_DEPTH: usize = 8;
/// Stack of the thread a query is parsed and planned on (reserved, touched
/// only as deep as a query goes); see [`PolicySession::plan`].
const PLANNER_STACK: usize = 32 << 20;
/// The hidden per-group row count of aggregate-only queries.
const GROUP_ROWS: &str = "__liutong_group_rows";

/// Aggregate functions an aggregate-only grant allows: each summarizes a
/// group. Collecting ones (`array_agg`, `string_agg`) and ones that pick a
/// row (`first_value`, `last_value`, `nth_value`) are not among them.
pub const AGGREGATE_ONLY_FUNCTIONS: [&str; 20] = [
    "count",
    "sum",
    "avg",
    "mean",
    "min",
    "max",
    "median",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "var",
    "var_pop",
    "var_samp",
    "var_population",
    "var_sample",
    "corr",
    "covar_pop",
    "covar_samp",
    "approx_distinct",
    "approx_median",
];

/// Why a query is refused; `code` is stable, `message` names the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryRefusal {
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> QueryRefusal {
    QueryRefusal {
        code,
        message: message.into(),
    }
}

/// Resource limits of one query's session.
#[derive(Clone, Copy, Debug)]
pub struct QueryLimits {
    /// Memory DataFusion's operators may reserve (sorts, joins, aggregations).
    pub memory_bytes: usize,
    /// Parallel partitions.
    pub partitions: usize,
}

impl Default for QueryLimits {
    fn default() -> QueryLimits {
        QueryLimits {
            memory_bytes: 512 * 1024 * 1024,
            partitions: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// What the rewrite enforced, one line per term, for the access log.
pub type Enforced = Vec<String>;

/// A query ready to run: the rewritten logical plan and what it enforces.
#[derive(Debug)]
pub struct PolicyPlan {
    pub plan: LogicalPlan,
    pub enforced: Enforced,
}

/// One dataset in a fresh session under a grant's terms.
pub struct PolicySession {
    ctx: SessionContext,
    name: String,
    table: Arc<dyn TableProvider>,
    terms: QueryTerms,
    salt: [u8; 32],
}

impl PolicySession {
    /// A session holding only `table` under `name` (its catalog name), as the
    /// consumer may see it under `terms`. `salt` is the grant's secret salt
    /// for hash masks (the same within a grant, unknown outside it). No
    /// table functions, no information_schema, no file or URL tables.
    pub fn new(
        name: &str,
        table: Arc<dyn TableProvider>,
        terms: &QueryTerms,
        salt: [u8; 32],
        limits: QueryLimits,
    ) -> Result<PolicySession, QueryRefusal> {
        let internal = |e: DataFusionError| refuse("query.internal", first_line(&e.to_string()));
        let ctx = read_only_context(limits, Some(Arc::new(PolicyPlanner)))?;
        // The consumer's view: allowed columns only, masked ones at their masked type.
        let visible = visible_schema(&table.schema(), terms.columns.as_deref(), &terms.masks);
        if visible.fields().is_empty() {
            return Err(refuse("query.bad_terms", "the grant allows no column of this table"));
        }
        let view = Arc::new(EmptyTable::new(Arc::new(visible)));
        ctx.register_table(TableReference::bare(name), view).map_err(internal)?;
        Ok(PolicySession {
            ctx,
            name: name.to_string(),
            table,
            terms: terms.clone(),
            salt,
        })
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Parses, checks and rewrites `sql`; nothing runs.
    ///
    /// The work runs on a thread of its own with [`PLANNER_STACK`] bytes of
    /// stack (the caller waits for it): sqlparser and DataFusion's SQL
    /// planner recurse once per nesting level with large frames (in a debug
    /// build a FROM subquery level takes about 180 KiB to parse and 110 KiB
    /// to plan, so a dozen levels overflow a 2 MiB thread long before the
    /// parser's own limit), and sqlparser drops a refused syntax tree by
    /// recursion, one level per operator of an `a + a + …` chain. What
    /// leaves the thread is within [`MAX_NESTING`], [`MAX_EXPR_DEPTH`],
    /// [`MAX_SUBQUERY_DEPTH`] and [`MAX_RELATIONS`], which keeps the
    /// optimizer's and executor's recursion on the caller's thread bounded.
    pub async fn plan(&self, sql: &str) -> Result<PolicyPlan, QueryRefusal> {
        on_planner_thread(sql, || futures::executor::block_on(self.plan_here(sql)))
    }

    /// [`PolicySession::plan`] on the planner's thread.
    async fn plan_here(&self, sql: &str) -> Result<PolicyPlan, QueryRefusal> {
        let statement = parse_one_select(sql)?;
        let plan = self
            .ctx
            .state()
            .statement_to_plan(statement)
            .await
            .map_err(|e| self.planning_refusal(e))?;
        let name = TableReference::bare(self.name.as_str());
        check_nodes(&plan, &|t| *t == name, &self.name)?;
        crate::functions::check_sizes(&plan)?;
        let mut enforced = Enforced::new();
        let plan = match self.terms.min_group_size {
            Some(k) => {
                enforced.push(format!("aggregate-only: every group has at least {k} rows"));
                aggregate_only(plan, &self.name, k)?
            }
            None => plan,
        };
        let (plan, scan_terms) = self.replace_scans(plan)?;
        enforced.splice(0..0, scan_terms);
        let plan = match self.terms.row_cap {
            Some(cap) => {
                let limit = row_cap_limit(&plan, &name, cap)?;
                enforced.push(if limit == cap {
                    format!("row cap: at most {cap} rows")
                } else {
                    format!("row cap: at most {cap} rows of the table, {limit} result rows (each result row can carry one row of each of the query's reads of the table)")
                });
                LogicalPlanBuilder::from(plan)
                    .limit(0, Some(usize::try_from(limit).unwrap_or(usize::MAX)))
                    .and_then(LogicalPlanBuilder::build)
                    .map_err(|e| refuse("query.internal", first_line(&e.to_string())))?
            }
            None => plan,
        };
        Ok(PolicyPlan { plan, enforced })
    }

    /// Every scan of the table becomes the policy scan (see the module docs).
    fn replace_scans(&self, plan: LogicalPlan) -> Result<(LogicalPlan, Enforced), QueryRefusal> {
        let (scan, enforced) = self.policy_scan()?;
        let name = TableReference::bare(self.name.as_str());
        let plan = plan
            .transform_up_with_subqueries(|node| match &node {
                LogicalPlan::TableScan(s) if s.table_name == name => {
                    let mut replaced = scan.clone();
                    if let Some(projection) = &s.projection {
                        let columns: Vec<Expr> = projection
                            .iter()
                            .map(|i| Expr::Column(Column::from(replaced.schema().qualified_field(*i))))
                            .collect();
                        replaced = LogicalPlanBuilder::from(replaced).project(columns)?.build()?;
                    }
                    Ok(Transformed::yes(replaced))
                }
                LogicalPlan::TableScan(s) => Err(DataFusionError::Plan(format!("unexpected table {}", s.table_name))),
                _ => Ok(Transformed::no(node)),
            })
            .map_err(|e| refuse("query.internal", first_line(&e.to_string())))?;
        Ok((plan.data, enforced))
    }

    /// The scan of the table under the terms, and what it enforces.
    fn policy_scan(&self) -> Result<(LogicalPlan, Enforced), QueryRefusal> {
        let internal = |e: DataFusionError| refuse("query.internal", first_line(&e.to_string()));
        let terms = &self.terms;
        let mut enforced = Enforced::new();
        let name = TableReference::bare(self.name.as_str());
        let mut b =
            LogicalPlanBuilder::scan(name.clone(), provider_as_source(self.table.clone()), None).map_err(internal)?;
        // The provider's filters, on the raw columns, each planned on its
        // own and joined as expressions.
        if let Some(filter) = self.filters(&terms.filters.provider, b.schema())? {
            b = b.filter(filter).map_err(internal)?;
            for f in &terms.filters.provider {
                enforced.push(format!("row filter: {f}"));
            }
        }
        let full = self.table.schema();
        let allowed = allowed_fields(&full, terms.columns.as_deref());
        let restricts = allowed.len() < full.fields().len();
        if restricts {
            let names: Vec<&str> = allowed.iter().map(|f| f.name().as_str()).collect();
            enforced.push(format!("columns: {}", names.join(", ")));
        }
        if restricts || !terms.masks.is_empty() {
            let mut exprs = Vec::with_capacity(allowed.len());
            for f in &allowed {
                let column = Expr::Column(Column::new(Some(name.clone()), f.name()));
                let expr = match terms.masks.iter().find(|m| &m.column == f.name()) {
                    Some(m) => {
                        enforced.push(format!("mask {}: {}", f.name(), describe_mask(&m.mask)));
                        mask_expr(column, &m.mask, f.data_type(), self.salt)?
                    }
                    None => column,
                };
                exprs.push(expr.alias(f.name()));
            }
            b = b.project(exprs).map_err(internal)?;
        }
        let mut plan = b.build().map_err(internal)?;
        if !terms.filters.provider.is_empty() || !terms.masks.is_empty() {
            plan = LogicalPlan::Extension(Extension {
                node: Arc::new(PolicyBoundary::new(plan)),
            });
        }
        // The consumer's own filters, above the boundary: on the values it
        // sees, like any predicate of its query.
        let mut b = LogicalPlanBuilder::from(plan);
        if let Some(filter) = self.filters(&terms.filters.consumer, b.schema())? {
            b = b.filter(filter).map_err(internal)?;
            for f in &terms.filters.consumer {
                enforced.push(format!("row filter (the consumer's): {f}"));
            }
        }
        let plan = b.alias(name).and_then(LogicalPlanBuilder::build).map_err(internal)?;
        Ok((plan, enforced))
    }

    /// `filters` planned over `schema` and joined with AND (`None` for none).
    fn filters(&self, filters: &[String], schema: &DFSchemaRef) -> Result<Option<Expr>, QueryRefusal> {
        let mut planned = Vec::with_capacity(filters.len());
        for f in filters {
            planned.push(self.ctx.parse_sql_expr(f, schema).map_err(|e| {
                refuse(
                    "query.bad_terms",
                    format!("the grant's row filter: {}", first_line(&e.to_string())),
                )
            })?);
        }
        Ok(datafusion::logical_expr::utils::conjunction(planned))
    }

    /// A planning error as the consumer should read it: a forbidden column
    /// is named as such; other errors keep DataFusion's first line.
    fn planning_refusal(&self, e: DataFusionError) -> QueryRefusal {
        if let DataFusionError::SchemaError(schema_error, _) = e.find_root() {
            let SchemaError::FieldNotFound { field, .. } = schema_error.as_ref() else {
                return refuse("query.invalid", first_line(&e.to_string()));
            };
            let wanted = field.name.as_str();
            let full = self.table.schema();
            let hidden = full
                .fields()
                .iter()
                .find(|f| f.name() == wanted || f.name().eq_ignore_ascii_case(wanted))
                .filter(|f| {
                    !allowed_fields(&full, self.terms.columns.as_deref())
                        .iter()
                        .any(|a| a.name() == f.name())
                });
            return match hidden {
                Some(f) => refuse(
                    "query.forbidden_column",
                    format!(
                        "column {:?} is outside the grant's columns (allowed: {})",
                        f.name(),
                        allowed_fields(&full, self.terms.columns.as_deref())
                            .iter()
                            .map(|f| f.name().as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                None => refuse("query.unknown_column", format!("no column {wanted:?} in {}", self.name)),
            };
        }
        let message = first_line(&e.to_string());
        // Before tables: "table function 'read_csv' not found" names a function.
        if message.contains("function") && (message.contains("not found") || message.contains("Invalid function")) {
            return refuse("query.unknown_function", message);
        }
        if message.contains("table") && message.contains("not found") {
            return refuse(
                "query.unknown_table",
                format!("{message}: this query may read only the table {}", self.name),
            );
        }
        refuse("query.invalid", message)
    }
}

/// A session with no table functions, no information_schema and no file or
/// URL tables, under `limits`; `planner` for sessions that plan extension
/// nodes.
fn read_only_context(
    limits: QueryLimits,
    planner: Option<Arc<dyn QueryPlanner + Send + Sync>>,
) -> Result<SessionContext, QueryRefusal> {
    let internal = |e: DataFusionError| refuse("query.internal", first_line(&e.to_string()));
    let config = SessionConfig::new()
        .with_information_schema(false)
        .with_target_partitions(limits.partitions.max(1))
        .with_default_catalog_and_schema("liutong", "public");
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(limits.memory_bytes, 1.0)
        .build_arc()
        .map_err(internal)?;
    let mut state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_table_functions(Default::default());
    if let Some(p) = planner {
        state = state.with_query_planner(p);
    }
    Ok(SessionContext::new_with_state(state.build()))
}

/// Runs `plan` on a thread of its own with [`PLANNER_STACK`] bytes of stack
/// (see [`PolicySession::plan`] for why), after the length check.
fn on_planner_thread<T: Send>(
    sql: &str,
    plan: impl FnOnce() -> Result<T, QueryRefusal> + Send,
) -> Result<T, QueryRefusal> {
    if sql.len() > MAX_SQL {
        return Err(refuse(
            "query.too_long",
            format!("the query is {} bytes; the limit is {MAX_SQL}", sql.len()),
        ));
    }
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("liutong-query-planner".into())
            .stack_size(PLANNER_STACK)
            .spawn_scoped(scope, plan)
            .map_err(|e| refuse("query.internal", format!("no thread to plan the query on: {e}")))?
            .join()
            .unwrap_or_else(|_| Err(refuse("query.internal", "planning the query failed")))
    })
}

/// A read-only SQL session over a fixed set of tables (the audit service's
/// ledger tables): the same refusals as a query under a grant (one SELECT,
/// nothing that writes, no table functions, files or URLs, the same size
/// and depth limits), without a grant's rewrite. What a caller may see is
/// decided by the tables it is given.
pub struct ReadOnlySession {
    ctx: SessionContext,
    names: Vec<String>,
}

impl ReadOnlySession {
    pub fn new(tables: Vec<(String, Arc<dyn TableProvider>)>, limits: QueryLimits) -> Result<Self, QueryRefusal> {
        let ctx = read_only_context(limits, None)?;
        let mut names = Vec::new();
        for (name, table) in tables {
            ctx.register_table(TableReference::bare(name.as_str()), table)
                .map_err(|e| refuse("query.internal", first_line(&e.to_string())))?;
            names.push(name);
        }
        Ok(ReadOnlySession { ctx, names })
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Parses, plans and checks `sql`; nothing runs.
    pub async fn plan(&self, sql: &str) -> Result<LogicalPlan, QueryRefusal> {
        on_planner_thread(sql, || futures::executor::block_on(self.plan_here(sql)))
    }

    async fn plan_here(&self, sql: &str) -> Result<LogicalPlan, QueryRefusal> {
        let statement = parse_one_select(sql)?;
        let listed = format!("the tables {}", self.names.join(", "));
        let plan = self.ctx.state().statement_to_plan(statement).await.map_err(|e| {
            let message = first_line(&e.to_string());
            if let DataFusionError::SchemaError(schema_error, _) = e.find_root() {
                if let SchemaError::FieldNotFound { field, .. } = schema_error.as_ref() {
                    return refuse("query.unknown_column", format!("no column {:?}", field.name));
                }
            }
            if message.contains("function") && (message.contains("not found") || message.contains("Invalid function")) {
                refuse("query.unknown_function", message)
            } else if message.contains("table") && message.contains("not found") {
                refuse(
                    "query.unknown_table",
                    format!("{message}: this query may read only {listed}"),
                )
            } else {
                refuse("query.invalid", message)
            }
        })?;
        let readable = |t: &TableReference| {
            t.schema().is_none_or(|s| s == "public")
                && t.catalog().is_none_or(|c| c == "liutong")
                && self.names.iter().any(|n| n == t.table())
        };
        check_nodes(&plan, &readable, &listed)?;
        crate::functions::check_sizes(&plan)?;
        Ok(plan)
    }
}

/// One read-only SELECT (or VALUES/WITH … SELECT), nothing else, within
/// [`MAX_NESTING`], [`MAX_EXPR_DEPTH`], [`MAX_SUBQUERY_DEPTH`] and
/// [`MAX_RELATIONS`].
fn parse_one_select(sql: &str) -> Result<DFStatement, QueryRefusal> {
    if sql.len() > MAX_SQL {
        return Err(refuse(
            "query.too_long",
            format!("the query is {} bytes; the limit is {MAX_SQL}", sql.len()),
        ));
    }
    if sql.trim().is_empty() {
        return Err(refuse("query.empty", "the query is empty"));
    }
    let too_deep = || {
        refuse(
            "query.too_deep",
            format!("the query nests deeper than {MAX_NESTING} levels"),
        )
    };
    let mut statements = match parse_statements(sql, MAX_NESTING) {
        Ok(statements) => statements,
        Err(e) if is_recursion_limit(&e) => return Err(too_deep()),
        Err(e) => {
            // sqlparser backtracks over some constructs (a NOT or CASE
            // chain) and reports the recursion limit it met inside them as
            // a syntax error further on; a parse with more room that ends
            // otherwise shows that depth, not syntax, stopped the first.
            let message = first_line(&e.to_string());
            return Err(match parse_statements(sql, 2 * MAX_NESTING) {
                Err(again) if first_line(&again.to_string()) == message => refuse("query.syntax", message),
                _ => too_deep(),
            });
        }
    };
    if statements.is_empty() {
        return Err(refuse("query.empty", "the query has no statement"));
    }
    if statements.len() > 1 {
        return Err(refuse(
            "query.multiple_statements",
            format!("one SELECT statement per query, not {}", statements.len()),
        ));
    }
    let statement = statements
        .pop_front()
        .ok_or_else(|| refuse("query.empty", "the query is empty"))?;
    match &statement {
        DFStatement::Statement(s) if matches!(**s, Statement::Query(_)) => {
            if let ControlFlow::Break(r) = s.visit(&mut Shape::default()) {
                return Err(r);
            }
            Ok(statement)
        }
        DFStatement::Statement(_) => Err(refuse(
            "query.not_select",
            format!("only a SELECT may run, not {}", statement_kind(sql)),
        )),
        DFStatement::CopyTo(_) => Err(refuse("query.not_select", "only a SELECT may run, not COPY")),
        DFStatement::CreateExternalTable(_) => Err(refuse(
            "query.not_select",
            "only a SELECT may run, not CREATE EXTERNAL TABLE",
        )),
        DFStatement::Explain(_) => Err(refuse("query.not_select", "only a SELECT may run, not EXPLAIN")),
        _ => Err(refuse("query.not_select", "only a SELECT may run")),
    }
}

fn parse_statements(
    sql: &str,
    recursion_limit: usize,
) -> Result<std::collections::VecDeque<DFStatement>, DataFusionError> {
    DFParserBuilder::new(sql)
        .with_recursion_limit(recursion_limit)
        .build()
        .and_then(|mut p| p.parse_statements())
}

fn is_recursion_limit(e: &DataFusionError) -> bool {
    matches!(e.find_root(), DataFusionError::SQL(p, _) if matches!(**p, ParserError::RecursionLimitExceeded))
}

/// The statement's first two keywords, from its text (displaying the parsed
/// statement would recurse as deep as its expressions nest).
fn statement_kind(sql: &str) -> String {
    let tokens = Tokenizer::new(&GenericDialect {}, sql).tokenize().unwrap_or_default();
    let words: Vec<String> = tokens
        .into_iter()
        .filter_map(|t| match t {
            Token::Word(w) => Some(w.value.to_uppercase()),
            _ => None,
        })
        .take(2)
        .collect();
    words.join(" ")
}

/// Checks a parsed query against [`MAX_EXPR_DEPTH`], [`MAX_SUBQUERY_DEPTH`]
/// and [`MAX_RELATIONS`] before DataFusion plans it. It stops at the first
/// level too many, so its own recursion stays within the limits.
#[derive(Default)]
struct Shape {
    depth: usize,
    queries: usize,
    relations: usize,
}

impl Shape {
    fn deeper(&mut self) -> ControlFlow<QueryRefusal> {
        self.depth += 1;
        if self.depth > MAX_EXPR_DEPTH {
            return ControlFlow::Break(refuse(
                "query.too_deep",
                format!("the query's expressions nest deeper than {MAX_EXPR_DEPTH} levels (an operator chain counts one level per operator)"),
            ));
        }
        ControlFlow::Continue(())
    }

    fn more_relations(&mut self, n: usize) -> ControlFlow<QueryRefusal> {
        self.relations += n;
        if self.relations > MAX_RELATIONS {
            return ControlFlow::Break(refuse(
                "query.too_deep",
                format!("the query holds more than {MAX_RELATIONS} tables, subqueries and set operations"),
            ));
        }
        ControlFlow::Continue(())
    }
}

impl Visitor for Shape {
    type Break = QueryRefusal;

    fn pre_visit_query(&mut self, query: &sql_ast::Query) -> ControlFlow<QueryRefusal> {
        self.deeper()?;
        self.queries += 1;
        // The statement itself is the first query.
        if self.queries > MAX_SUBQUERY_DEPTH + 1 {
            return ControlFlow::Break(refuse(
                "query.too_deep",
                format!("the query nests subqueries deeper than {MAX_SUBQUERY_DEPTH} levels"),
            ));
        }
        // A chain of UNIONs is as deep as it is long: count it here, without
        // recursion, before the visit descends into it.
        let mut operations = 0;
        let mut pending = vec![query.body.as_ref()];
        while let Some(body) = pending.pop() {
            if let SetExpr::SetOperation { left, right, .. } = body {
                operations += 1;
                if operations > MAX_RELATIONS {
                    break;
                }
                pending.push(left);
                pending.push(right);
            }
        }
        self.more_relations(operations)
    }

    fn post_visit_query(&mut self, _: &sql_ast::Query) -> ControlFlow<QueryRefusal> {
        self.depth -= 1;
        self.queries -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, _: &sql_ast::TableFactor) -> ControlFlow<QueryRefusal> {
        self.more_relations(1)
    }

    fn pre_visit_expr(&mut self, _: &sql_ast::Expr) -> ControlFlow<QueryRefusal> {
        self.deeper()
    }

    fn post_visit_expr(&mut self, _: &sql_ast::Expr) -> ControlFlow<QueryRefusal> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

/// Only relational operators of a read-only query over the tables
/// `readable` admits (`names` lists them for the refusal); a `SELECT … INTO`
/// (a table creation), a recursive CTE or anything else is refused.
fn check_nodes(
    plan: &LogicalPlan,
    readable: &dyn Fn(&TableReference) -> bool,
    names: &str,
) -> Result<(), QueryRefusal> {
    let mut refusal = None;
    plan.apply_with_subqueries(|node| {
        let bad = match node {
            LogicalPlan::Projection(_)
            | LogicalPlan::Filter(_)
            | LogicalPlan::Window(_)
            | LogicalPlan::Aggregate(_)
            | LogicalPlan::Sort(_)
            | LogicalPlan::Join(_)
            | LogicalPlan::Repartition(_)
            | LogicalPlan::Union(_)
            | LogicalPlan::EmptyRelation(_)
            | LogicalPlan::Subquery(_)
            | LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::Values(_)
            | LogicalPlan::Distinct(_)
            | LogicalPlan::Unnest(_) => None,
            LogicalPlan::TableScan(s) if readable(&s.table_name) => None,
            LogicalPlan::TableScan(s) => Some(refuse(
                "query.unknown_table",
                format!("this query may read only {names}, not {}", s.table_name),
            )),
            LogicalPlan::RecursiveQuery(_) => Some(refuse("query.not_allowed", "recursive queries are not allowed")),
            LogicalPlan::Ddl(_) | LogicalPlan::Dml(_) | LogicalPlan::Copy(_) => Some(refuse(
                "query.not_select",
                "the query would write (SELECT … INTO, DDL or DML); only reads are allowed",
            )),
            other => Some(refuse(
                "query.not_allowed",
                format!("{} is not allowed in a query", other.display()),
            )),
        };
        if let Some(r) = bad {
            refusal = Some(r);
            return Ok(TreeNodeRecursion::Stop);
        }
        for e in node.expressions() {
            e.apply(|e| {
                if let Expr::Placeholder(p) = e {
                    refusal = Some(refuse("query.not_allowed", format!("parameter {} has no value", p.id)));
                    return Ok(TreeNodeRecursion::Stop);
                }
                if let Some((kind, name)) = crate::functions::disallowed(e) {
                    refusal = Some(refuse(
                        "query.unknown_function",
                        format!(
                            "{kind} {name} is not one a query may call (see the README's list of functions; no functions that build values of any size from a small input, read files or name the node)"
                        ),
                    ));
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        Ok(if refusal.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })
    .map_err(|e| refuse("query.internal", first_line(&e.to_string())))?;
    refusal.map_or(Ok(()), Err)
}

/// The row limit a row cap of `cap` puts on `plan`: the cap divided by
/// how many times the query reads the table (a self-join's row carries a
/// row of each side, a correlated subquery's value another row), after
/// refusing aggregates that pack many rows into one value.
fn row_cap_limit(plan: &LogicalPlan, table: &TableReference, cap: u64) -> Result<u64, QueryRefusal> {
    let mut scans = 0u64;
    let mut collecting = None;
    plan.apply_with_subqueries(|node| {
        if matches!(node, LogicalPlan::TableScan(s) if &s.table_name == table) {
            scans += 1;
        }
        for e in node.expressions() {
            e.apply(|e| {
                let name = match e {
                    Expr::AggregateFunction(f) => f.func.name().to_ascii_lowercase(),
                    Expr::WindowFunction(w) => w.fun.name().to_ascii_lowercase(),
                    _ => return Ok(TreeNodeRecursion::Continue),
                };
                if crate::functions::COLLECTING_AGGREGATES.contains(&name.as_str()) {
                    collecting = Some(name);
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        Ok(if collecting.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })
    .map_err(|e| refuse("query.internal", first_line(&e.to_string())))?;
    if let Some(name) = collecting {
        return Err(refuse(
            "query.aggregate_not_allowed",
            format!("{name} packs many rows into one value, which a row cap of {cap} cannot count; it is not allowed under a row cap"),
        ));
    }
    let limit = cap / scans.max(1);
    if limit == 0 {
        return Err(refuse(
            "query.row_cap",
            format!("the query reads the table {scans} times; under a row cap of {cap} each result row counts once per read, so no row could be returned"),
        ));
    }
    Ok(limit)
}

/// Checks an aggregate-only query and adds the group-size suppression.
fn aggregate_only(plan: LogicalPlan, name: &str, k: u32) -> Result<LogicalPlan, QueryRefusal> {
    let table = TableReference::bare(name);
    let mut scans = 0;
    let mut refusal = None;
    plan.apply_with_subqueries(|node| {
        let bad = match node {
            LogicalPlan::TableScan(s) if s.table_name == table => {
                scans += 1;
                None
            }
            LogicalPlan::Join(_) => Some("a join"),
            LogicalPlan::Union(_) => Some("a UNION"),
            LogicalPlan::Unnest(_) => Some("UNNEST"),
            LogicalPlan::Window(_) => Some("a window function"),
            LogicalPlan::Distinct(_) => Some("DISTINCT (use GROUP BY)"),
            _ => None,
        };
        if let Some(what) = bad {
            refusal = Some(refuse(
                if what == "a window function" {
                    "query.window_not_allowed"
                } else {
                    "query.not_aggregated"
                },
                format!("the grant allows only aggregated output, so {what} is not allowed"),
            ));
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(|e| refuse("query.internal", first_line(&e.to_string())))?;
    if let Some(r) = refusal {
        return Err(r);
    }
    if scans > 1 {
        return Err(refuse(
            "query.not_aggregated",
            format!("the grant allows only aggregated output: the query reads {name} {scans} times, once is allowed"),
        ));
    }
    // The nearest aggregation above the scan gets the suppression; a scan
    // with none above it means row-level output.
    let mut found = false;
    let rewritten = plan
        .transform_up(|node| {
            let LogicalPlan::Aggregate(agg) = &node else {
                return Ok(Transformed::no(node));
            };
            if found || !reads(&agg.input, &table) {
                return Ok(Transformed::no(node));
            }
            found = true;
            // What an aggregate reads must be the table's own values: a
            // computed argument, a FILTER clause or a computed column below
            // the aggregation could single out one row of a group
            // (`max(CASE WHEN id = 7 THEN salary END)`).
            if let Some(why) = singling_out(&agg.group_expr, &agg.input) {
                return Err(DataFusionError::External(Box::new(refuse(
                    "query.aggregate_not_allowed",
                    format!("under an aggregate-only grant, groups are formed by columns as they are over all the rows the query selects: {why}"),
                ))));
            }
            if let Some(why) = computed_input(&agg.aggr_expr, &agg.input) {
                return Err(DataFusionError::External(Box::new(refuse(
                    "query.aggregate_not_allowed",
                    format!("under an aggregate-only grant, aggregates take columns as they are: {why}"),
                ))));
            }
            for e in &agg.aggr_expr {
                let mut bad = None;
                e.apply(|e| {
                    if let Expr::AggregateFunction(f) = e {
                        let n = f.func.name().to_ascii_lowercase();
                        if !AGGREGATE_ONLY_FUNCTIONS.contains(&n.as_str()) {
                            bad = Some(n);
                            return Ok(TreeNodeRecursion::Stop);
                        }
                    }
                    Ok(TreeNodeRecursion::Continue)
                })?;
                if let Some(n) = bad {
                    return Err(DataFusionError::External(Box::new(refuse(
                        "query.aggregate_not_allowed",
                        format!(
                            "{n} returns row values; an aggregate-only grant allows {}",
                            AGGREGATE_ONLY_FUNCTIONS.join(", ")
                        ),
                    ))));
                }
            }
            let outputs: Vec<Expr> = agg
                .schema
                .iter()
                .map(|(q, f)| Expr::Column(Column::new(q.cloned(), f.name())))
                .collect();
            // A name none of the aggregation's outputs has (the consumer may
            // call a group column __liutong_group_rows too).
            let mut hidden = GROUP_ROWS.to_string();
            while agg.schema.fields().iter().any(|f| f.name() == &hidden) {
                hidden.push('_');
            }
            let mut aggr = agg.aggr_expr.clone();
            aggr.push(
                datafusion::functions_aggregate::count::count_all()
                    .unalias()
                    .alias(&hidden),
            );
            let suppressed = LogicalPlanBuilder::from(agg.input.as_ref().clone())
                .aggregate(agg.group_expr.clone(), aggr)?
                .filter(Expr::Column(Column::new_unqualified(&hidden)).gt_eq(lit(i64::from(k))))?
                .project(outputs)?
                .build()?;
            Ok(Transformed::new(suppressed, true, TreeNodeRecursion::Jump))
        })
        .map_err(|e| match e.find_root() {
            DataFusionError::External(inner) => match inner.downcast_ref::<QueryRefusal>() {
                Some(r) => r.clone(),
                None => refuse("query.internal", first_line(&e.to_string())),
            },
            other => refuse("query.internal", first_line(&other.to_string())),
        })?;
    if scans == 1 && !found {
        return Err(refuse(
            "query.not_aggregated",
            format!("the grant allows only aggregated output: aggregate {name} (GROUP BY, count, sum, avg …)"),
        ));
    }
    Ok(rewritten.data)
}

/// Why an aggregate-only aggregation's groups could single rows out, if
/// they could: a computed grouping key (`GROUP BY id = 7` puts one row in
/// a group of its own and the rest in another, whose total differs from
/// the whole by that row), several groupings at once (ROLLUP, CUBE,
/// GROUPING SETS: one grouping's groups minus another's), or a sort,
/// limit or offset below the aggregation (two windows of the rows that
/// differ by one row show it).
fn singling_out(group: &[Expr], input: &LogicalPlan) -> Option<String> {
    for g in group {
        match g.clone().unalias() {
            Expr::Column(_) => {}
            Expr::GroupingSet(_) => return Some("ROLLUP, CUBE and GROUPING SETS are not allowed".into()),
            other => {
                return Some(format!(
                    "{other} is a computed grouping key (group by a column; ask the provider for a coarser mask to group more coarsely)"
                ))
            }
        }
    }
    let mut why = None;
    let _ = input.apply(|n| {
        why = match n {
            LogicalPlan::Sort(_) => Some("ORDER BY below the aggregation is not allowed".to_string()),
            LogicalPlan::Limit(_) => Some("LIMIT or OFFSET below the aggregation is not allowed".to_string()),
            _ => None,
        };
        Ok(if why.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    why
}

/// Why an aggregate-only aggregation computes on rows before it
/// aggregates, if it does: an aggregate whose argument is not a column or a
/// literal, one with a FILTER clause, or a projection between the scan and
/// the aggregation that computes a column instead of passing it on.
fn computed_input(aggr: &[Expr], input: &LogicalPlan) -> Option<String> {
    let plain = |e: &Expr| matches!(e.clone().unalias(), Expr::Column(_) | Expr::Literal(..));
    for e in aggr {
        let mut why = None;
        let _ = e.apply(|e| {
            if let Expr::AggregateFunction(f) = e {
                if f.params.filter.is_some() {
                    why = Some(format!("{} has a FILTER clause", f.func.name()));
                } else if let Some(a) = f.params.args.iter().find(|a| !plain(a)) {
                    why = Some(format!("{}({a}) computes its argument", f.func.name()));
                }
                return Ok(TreeNodeRecursion::Jump);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        if why.is_some() {
            return why;
        }
    }
    let mut why = None;
    let _ = input.apply(|n| {
        if let LogicalPlan::Projection(p) = n {
            if let Some(e) = p.expr.iter().find(|e| !plain(e)) {
                why = Some(format!("the subquery computes {e}"));
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    why
}

/// Does this plan (not its expressions' subqueries) read the table?
fn reads(plan: &LogicalPlan, table: &TableReference) -> bool {
    let mut hit = false;
    let _ = plan.apply(|n| {
        if matches!(n, LogicalPlan::TableScan(s) if &s.table_name == table) {
            hit = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    hit
}

fn describe_mask(mask: &crate::Mask) -> String {
    match mask {
        crate::Mask::Redact => "redacted".into(),
        crate::Mask::Hash => "salted SHA-256".into(),
        crate::Mask::Truncate { keep } => format!("first {keep} characters"),
        crate::Mask::TruncateDate { unit } => format!("truncated to the {unit:?}").to_lowercase(),
        crate::Mask::Generalize { width } => format!("buckets of {width}"),
    }
}

/// The masked value of `column` (of type `ty`), at its masked type.
fn mask_expr(column: Expr, mask: &crate::Mask, ty: &DataType, salt: [u8; 32]) -> Result<Expr, QueryRefusal> {
    use crate::{DateUnit, Mask};
    let expr = match mask {
        Mask::Redact => {
            let null = ScalarValue::try_from(ty).map_err(|e| refuse("query.bad_terms", e.to_string()))?;
            lit(null)
        }
        Mask::Hash => ScalarUDF::new_from_impl(MaskHash::new(salt)).call(vec![column]),
        Mask::Truncate { keep } => cast(
            datafusion::functions::unicode::expr_fn::left(column, lit(i64::from(*keep))),
            ty.clone(),
        ),
        Mask::TruncateDate { unit } => {
            let unit = match unit {
                DateUnit::Day => "day",
                DateUnit::Month => "month",
                DateUnit::Year => "year",
            };
            cast(
                datafusion::functions::datetime::expr_fn::date_trunc(lit(unit), column),
                ty.clone(),
            )
        }
        Mask::Generalize { width } => {
            if ty.is_integer() {
                // The lower bound of the bucket, for negative values too.
                let w = lit(i64::try_from(*width).unwrap_or(i64::MAX));
                let c = cast(column, DataType::Int64);
                cast(c.clone() - ((c % w.clone() + w.clone()) % w), ty.clone())
            } else {
                let w = lit(*width as f64);
                let c = cast(column, DataType::Float64);
                cast(
                    datafusion::functions::math::expr_fn::floor(c / w.clone()) * w,
                    ty.clone(),
                )
            }
        }
    };
    Ok(expr)
}

/// `liutong_mask_hash(value)`: hex(SHA-256(salt ‖ value as text)), null
/// stays null. The salt lives in the function, never in the plan's text
/// nor in its debug form (DataFusion's error messages may quote that).
#[derive(PartialEq, Eq, Hash)]
struct MaskHash {
    salt: [u8; 32],
    signature: Signature,
}

impl std::fmt::Debug for MaskHash {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("MaskHash").finish_non_exhaustive()
    }
}

impl MaskHash {
    fn new(salt: [u8; 32]) -> MaskHash {
        MaskHash {
            salt,
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for MaskHash {
    fn name(&self) -> &str {
        "liutong_mask_hash"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::common::Result<ColumnarValue> {
        let rows = args.number_rows;
        let input = args
            .args
            .into_iter()
            .next()
            .ok_or_else(|| DataFusionError::Internal("liutong_mask_hash takes one argument".into()))?
            .into_array(rows)?;
        let text = arrow::compute::cast(&input, &DataType::Utf8)?;
        let text = text
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .ok_or_else(|| DataFusionError::Internal("a cast to Utf8 gave no strings".into()))?;
        let mut out = StringBuilder::with_capacity(text.len(), text.len() * 64);
        let mut hasher = Sha256::new();
        hasher.update(self.salt);
        for v in text.iter() {
            match v {
                None => out.append_null(),
                Some(s) => {
                    let mut h = hasher.clone();
                    h.update(s.as_bytes());
                    out.append_value(hex::encode(h.finalize()));
                }
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}

/// Keeps everything above it above it: no predicate, projection or limit of
/// the consumer's passes into the policy scan below.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
struct PolicyBoundary {
    input: LogicalPlan,
}

impl PolicyBoundary {
    fn new(input: LogicalPlan) -> PolicyBoundary {
        PolicyBoundary { input }
    }
}

impl UserDefinedLogicalNodeCore for PolicyBoundary {
    fn name(&self) -> &str {
        "PolicyBoundary"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "PolicyBoundary")
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> datafusion::common::Result<Self> {
        let input = inputs
            .pop()
            .ok_or_else(|| DataFusionError::Internal("PolicyBoundary has one input".into()))?;
        Ok(PolicyBoundary { input })
    }

    /// Unused columns may be dropped below it (a projection of columns is
    /// not an evaluation of the consumer's expressions).
    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        Some(vec![output_columns.to_vec()])
    }
}

#[derive(Debug)]
struct PolicyPlanner;

#[async_trait]
impl QueryPlanner for PolicyPlanner {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        session: &dyn datafusion::catalog::Session,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(BoundaryPlanner)])
            .create_physical_plan(plan, session)
            .await
    }
}

struct BoundaryPlanner;

#[async_trait]
impl ExtensionPlanner for BoundaryPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn datafusion::catalog::Session,
        _ctx: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> datafusion::common::Result<Option<Arc<dyn ExecutionPlan>>> {
        if node.as_any().downcast_ref::<PolicyBoundary>().is_none() {
            return Ok(None);
        }
        let input = physical_inputs
            .first()
            .ok_or_else(|| DataFusionError::Internal("PolicyBoundary has one input".into()))?;
        Ok(Some(Arc::new(BoundaryExec::new(input.clone()))))
    }
}

/// The physical boundary: passes batches through unchanged, and takes no
/// filter from above (the default of `gather_filters_for_pushdown`), no
/// projection swap and no limit.
#[derive(Debug)]
struct BoundaryExec {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl BoundaryExec {
    fn new(input: Arc<dyn ExecutionPlan>) -> BoundaryExec {
        let properties = input.properties().clone();
        BoundaryExec { input, properties }
    }
}

impl DisplayAs for BoundaryExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "PolicyBoundaryExec")
    }
}

impl ExecutionPlan for BoundaryExec {
    fn name(&self) -> &str {
        "PolicyBoundaryExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> datafusion::common::Result<TreeNodeRecursion>,
    ) -> datafusion::common::Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let input = children
            .pop()
            .ok_or_else(|| DataFusionError::Internal("PolicyBoundaryExec has one child".into()))?;
        Ok(Arc::new(BoundaryExec::new(input)))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> datafusion::common::Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}

/// An error while a planned query ran, as the consumer may see it: a
/// stable code and the kind of failure, never a value. DataFusion's and
/// Arrow's messages quote the values they fail on (a cast of a hidden
/// value, a masked value in clear, a `string_agg` of the whole view);
/// the caller logs the error itself on the provider's side.
pub fn run_failure(e: &DataFusionError) -> QueryRefusal {
    use arrow::error::ArrowError;
    let root = e.find_root();
    if matches!(root, DataFusionError::ResourcesExhausted(_)) {
        return refuse(
            "query.memory_limit",
            "the query needs more memory than this node allows a query",
        );
    }
    let what = match root {
        DataFusionError::ArrowError(a, _) => match a.as_ref() {
            ArrowError::CastError(_) | ArrowError::ParseError(_) => "a value could not be cast to the type asked for",
            ArrowError::DivideByZero => "a division by zero",
            ArrowError::ArithmeticOverflow(_) => "an arithmetic overflow",
            ArrowError::MemoryError(_) => {
                return refuse(
                    "query.memory_limit",
                    "the query needs more memory than this node allows a query",
                )
            }
            _ => "a function could not compute a value",
        },
        other => {
            // Execution errors carry their kind only in their text: look
            // for it, and show none of the text.
            let text = other.to_string().to_ascii_lowercase();
            if text.contains("cast") || text.contains("parse") {
                "a value could not be cast to the type asked for"
            } else if text.contains("divide by zero") || text.contains("division by zero") {
                "a division by zero"
            } else if text.contains("overflow") {
                "an arithmetic overflow"
            } else {
                "a function could not compute a value"
            }
        }
    };
    refuse(
        "query.failed",
        format!("the query failed while it ran: {what} (the provider's node logged the detail)"),
    )
}

/// Schema of a plan's output as Arrow.
pub fn output_schema(plan: &LogicalPlan) -> SchemaRef {
    Arc::new(plan.schema().as_arrow().clone())
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_string()
}
