//! Row filters: one SQL boolean expression over the dataset's columns,
//! planned with DataFusion against its schema. Only column references,
//! literals, operators, casts, CASE and an allow-list of pure scalar
//! functions may appear: no subqueries, aggregates, windows, placeholders or
//! other functions.

use crate::{Error, Result};
use arrow::datatypes::{DataType, Schema};
use borsh::{BorshDeserialize, BorshSerialize};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::DFSchema;
use datafusion::logical_expr::Expr;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParserBuilder;
use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr as SqlExpr, ExprWithAlias};
use serde::{Deserialize, Serialize};

/// Longest row filter accepted, in bytes.
pub const MAX_FILTER: usize = 2000;

/// How deep a filter's expression may nest while it is parsed.
const FILTER_NESTING: usize = 64;

/// Scalar functions a filter may call: pure, deterministic, no I/O.
pub const ALLOWED_FUNCTIONS: [&str; 14] = [
    "lower",
    "upper",
    "trim",
    "btrim",
    "ltrim",
    "rtrim",
    "length",
    "character_length",
    "substr",
    "starts_with",
    "abs",
    "date_trunc",
    "date_part",
    "coalesce",
];

/// Who wrote a grant's own row filter, which decides what it may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Author {
    /// The provider (its offer, or the terms it issued a grant with): the
    /// filter sees the raw columns, hidden ones included.
    Provider,
    /// The consumer (the terms it requested): the filter sees only what the
    /// grant shows it, masked columns at their masked values.
    Consumer,
}

/// The row filters a query under a grant runs under, by author. Each is
/// one SQL boolean expression; a row is visible when every one holds. They
/// are planned one by one and joined with `AND` as expressions, never as
/// text, so no filter can reach into another (`… AND false OR true`).
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowFilters {
    /// The provider's (its offer's filter, and any it issued the grant
    /// with): evaluated on the raw columns directly above the scan, before
    /// the masks and behind the policy boundary.
    #[serde(default)]
    pub provider: Vec<String>,
    /// The consumer's own additions (its request's filter, less the parts
    /// that repeat the offer's): only visible columns, evaluated above the
    /// masks on the values the consumer sees, like a predicate of its query.
    #[serde(default)]
    pub consumer: Vec<String>,
}

impl RowFilters {
    pub fn is_empty(&self) -> bool {
        self.provider.is_empty() && self.consumer.is_empty()
    }

    /// An offer's filters (or an offer's terms used as they are): its row
    /// filter, the provider's.
    pub fn of_offer(offer: &crate::Terms) -> RowFilters {
        RowFilters {
            provider: offer.row_filter.iter().cloned().collect(),
            consumer: Vec::new(),
        }
    }

    /// A grant's filters: the offer's, always, then the grant's own filter
    /// as its `author` may write it. A provider's (issued terms) sees raw
    /// columns. A consumer's (requested terms) is split into its top-level
    /// `AND` terms; those that are one of the offer's own (compared as
    /// planned expressions, not as text) are dropped, since the offer's
    /// filter applies anyway; every other one may name only the columns the
    /// grant shows, and is checked against their masked types.
    pub fn of_grant(offer: &crate::Terms, grant: &crate::Terms, author: Author, schema: &Schema) -> Result<RowFilters> {
        let mut filters = RowFilters::of_offer(offer);
        let Some(own) = &grant.row_filter else {
            return Ok(filters);
        };
        check_row_filter(own, schema)?;
        if author == Author::Provider {
            filters.provider.push(own.clone());
            return Ok(filters);
        }
        let ctx = SessionContext::new();
        let raw = df_schema(schema)?;
        let mut offered = Vec::new();
        if let Some(f) = &offer.row_filter {
            for c in conjuncts(parse_filter(f)?) {
                offered.push(plan_filter(&ctx, c, &raw)?);
            }
        }
        let visible = crate::terms::visible_schema(schema, grant.columns.as_deref(), &grant.masks);
        let shown = df_schema(&visible)?;
        for c in conjuncts(parse_filter(own)?) {
            let planned = plan_filter(&ctx, c.clone(), &raw)?;
            if offered.contains(&planned) {
                continue;
            }
            for column in planned.column_refs() {
                if visible.field_with_name(&column.name).is_err() {
                    return Err(Error::HiddenColumn(format!(
                        "the requested row filter names column {:?}, which the grant does not show (it may name only {}); the offer's own filter ({}) applies without being repeated",
                        column.name,
                        visible.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", "),
                        offer.row_filter.as_deref().unwrap_or("none"),
                    )));
                }
            }
            // Typed as the consumer sees the columns (a hashed one is text).
            plan_filter(&ctx, c.clone(), &shown)?;
            filters.consumer.push(c.to_string());
        }
        Ok(filters)
    }
}

/// Parses `sql` as exactly one expression (no alias, nothing after it),
/// within the length and nesting limits.
pub(crate) fn parse_filter(sql: &str) -> Result<SqlExpr> {
    if sql.trim().is_empty() || sql.len() > MAX_FILTER {
        return Err(Error::BadFilter(format!("a filter is 1 to {MAX_FILTER} bytes")));
    }
    let parsed = DFParserBuilder::new(sql)
        .with_recursion_limit(FILTER_NESTING)
        .build()
        .and_then(|mut p| p.parse_into_expr())
        .map_err(|e| Error::BadFilter(plain(e.to_string())))?;
    if let Some(alias) = parsed.alias {
        return Err(Error::BadFilter(format!("a filter has no alias (AS {alias})")));
    }
    Ok(parsed.expr)
}

/// The top-level `AND` terms of an expression, through parentheses.
pub(crate) fn conjuncts(expr: SqlExpr) -> Vec<SqlExpr> {
    let mut out = Vec::new();
    let mut pending = vec![expr];
    while let Some(e) = pending.pop() {
        match e {
            SqlExpr::Nested(inner) => pending.push(*inner),
            SqlExpr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => {
                pending.push(*right);
                pending.push(*left);
            }
            other => out.push(other),
        }
    }
    out
}

fn df_schema(schema: &Schema) -> Result<DFSchema> {
    DFSchema::try_from(schema.clone()).map_err(|e| Error::BadFilter(e.to_string()))
}

/// Plans one parsed filter over `schema`: every node from the allow-list,
/// every column in the schema, boolean after DataFusion's type coercion.
pub(crate) fn plan_filter(ctx: &SessionContext, sql: SqlExpr, schema: &DFSchema) -> Result<Expr> {
    let state = ctx.state();
    let expr = state
        .create_logical_expr_from_sql_expr(ExprWithAlias { expr: sql, alias: None }, schema)
        .map_err(|e| Error::BadFilter(plain(e.to_string())))?;
    check_nodes(&expr, schema)?;
    // Planning applies DataFusion's type coercion: operands that cannot be
    // brought to a common type are refused here, not when a query runs.
    let ty = ctx
        .create_physical_expr(expr.clone(), schema)
        .and_then(|p| p.data_type(schema.as_arrow()))
        .map_err(|e| Error::BadFilter(plain(e.to_string())))?;
    if ty != DataType::Boolean {
        return Err(Error::BadFilter(format!("the filter is of type {ty}, not a boolean")));
    }
    Ok(expr)
}

fn check_nodes(expr: &Expr, schema: &DFSchema) -> Result<()> {
    let mut refused: Option<String> = None;
    expr.apply(|e| {
        let ok = match e {
            Expr::Column(c) => {
                if !schema.has_column_with_unqualified_name(&c.name) {
                    refused = Some(format!("column {:?} is not in the dataset's schema", c.name));
                }
                true
            }
            Expr::ScalarFunction(f) => {
                let name = f.name();
                if !ALLOWED_FUNCTIONS.contains(&name) {
                    refused = Some(format!(
                        "function {name} is not allowed in a row filter (allowed: {})",
                        ALLOWED_FUNCTIONS.join(", ")
                    ));
                }
                true
            }
            Expr::Literal(..)
            | Expr::BinaryExpr(_)
            | Expr::Like(_)
            | Expr::Not(_)
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::IsTrue(_)
            | Expr::IsFalse(_)
            | Expr::IsUnknown(_)
            | Expr::IsNotTrue(_)
            | Expr::IsNotFalse(_)
            | Expr::IsNotUnknown(_)
            | Expr::Negative(_)
            | Expr::Between(_)
            | Expr::Case(_)
            | Expr::Cast(_)
            | Expr::TryCast(_)
            | Expr::InList(_) => true,
            other => {
                refused = Some(format!("{} is not allowed in a row filter", other.variant_name()));
                false
            }
        };
        Ok(if ok && refused.is_none() {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    })
    .map_err(|e| Error::BadFilter(e.to_string()))?;
    match refused {
        Some(why) => Err(Error::BadFilter(why)),
        None => Ok(()),
    }
}

/// Parses `sql` as one expression over `schema`, checks every node against
/// the allow-list and that the result is boolean. Returns the expression as
/// DataFusion normalized it (for display); the stored text stays the
/// provider's.
pub fn check_row_filter(sql: &str, schema: &Schema) -> Result<String> {
    let parsed = parse_filter(sql)?;
    let expr = plan_filter(&SessionContext::new(), parsed, &df_schema(schema)?)?;
    Ok(expr.to_string())
}

/// DataFusion's messages carry a backtrace hint and a context prefix; keep the reason.
fn plain(message: String) -> String {
    message.lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("port", DataType::Utf8, false),
            Field::new("teu", DataType::Int64, true),
            Field::new("departed", DataType::Date32, true),
        ])
    }

    #[test]
    fn good_filters_pass() {
        for f in [
            "port = 'Yangshan'",
            "teu > 1 AND port IN ('Yangshan', 'Ningbo')",
            "lower(port) LIKE 'yang%' OR teu IS NULL",
            "departed >= DATE '2026-07-01' AND NOT (teu BETWEEN 3 AND 5)",
            "CASE WHEN teu > 1 THEN true ELSE false END",
        ] {
            assert!(
                check_row_filter(f, &schema()).is_ok(),
                "{f}: {:?}",
                check_row_filter(f, &schema())
            );
        }
    }

    #[test]
    fn bad_filters_are_refused_with_the_reason() {
        for (f, why) in [
            ("nope = 1", "nope"),
            ("teu + 1", "not a boolean"),
            ("teu AND port", ""),
            ("teu IN (SELECT teu FROM other)", ""),
            ("random() > 0.5", "random"),
            ("sum(teu) > 3", ""),
            ("teu = $1", ""),
            ("port = 'a'; DROP TABLE x", ""),
            ("", "1 to"),
        ] {
            let e = check_row_filter(f, &schema()).expect_err(f);
            assert_eq!(e.code(), "policy.bad_filter", "{f}");
            assert!(e.to_string().contains(why), "{f}: {e}");
        }
    }

    fn terms(columns: &[&str], filter: Option<&str>, masks: Vec<crate::ColumnMask>) -> crate::Terms {
        crate::Terms {
            purposes: vec!["research".into()],
            not_before: 0,
            not_after: Some(10),
            max_uses: Some(1),
            actions: vec![crate::Action::Query],
            columns: Some(columns.iter().map(|c| c.to_string()).collect()),
            row_filter: filter.map(str::to_string),
            masks,
            min_group_size: None,
            row_cap: None,
            transferable: false,
        }
    }

    /// The consumer's filter may name only what the grant shows; the
    /// provider's may name anything; the offer's always comes first, and
    /// a consumer's repetition of it (as an expression, however written)
    /// is dropped instead of refused.
    #[test]
    fn grant_filters_by_author() {
        let hash = vec![crate::ColumnMask {
            column: "port".into(),
            mask: crate::Mask::Hash,
        }];
        let offer = terms(&["departed", "port"], Some("teu > 0"), hash.clone());
        let grant = |f: &str| terms(&["departed", "port"], Some(f), hash.clone());
        let of = |f: &str, author| RowFilters::of_grant(&offer, &grant(f), author, &schema());
        // The consumer cannot see teu: a filter on it is refused by name,
        // the `OR true` trick included.
        for f in ["teu >= 100000", "(teu > 0) AND false OR true", "port = 'x' OR teu = 5"] {
            let e = of(f, Author::Consumer).expect_err(f);
            assert_eq!(e.code(), "policy.hidden_column", "{f}: {e}");
            assert!(e.to_string().contains("\"teu\""), "{f}: {e}");
        }
        // Repeating the offer's filter is harmless, in any spelling.
        for f in [
            "(teu > 0) AND departed IS NOT NULL",
            "departed IS NOT NULL AND (TEU > 0)",
        ] {
            assert_eq!(
                of(f, Author::Consumer).expect(f),
                RowFilters {
                    provider: vec!["teu > 0".into()],
                    consumer: vec!["departed IS NOT NULL".into()],
                },
                "{f}"
            );
        }
        assert_eq!(
            of("teu > 0", Author::Consumer).expect("the offer's"),
            RowFilters {
                provider: vec!["teu > 0".into()],
                consumer: vec![],
            }
        );
        // A hashed column is visible (it runs on the hash, above the mask).
        assert_eq!(
            of("port = 'x'", Author::Consumer).expect("hashed").consumer,
            vec!["port = 'x'"]
        );
        // The provider sees the raw columns.
        assert_eq!(
            of("teu >= 100000 AND port = 'Ningbo'", Author::Provider).expect("provider"),
            RowFilters {
                provider: vec!["teu > 0".into(), "teu >= 100000 AND port = 'Ningbo'".into()],
                consumer: vec![],
            }
        );
        assert_eq!(
            of("teu AS x", Author::Provider)
                .map_err(|e| e.code())
                .expect_err("alias"),
            "policy.bad_filter"
        );
    }
}
