//! Row filters: one SQL boolean expression over the dataset's columns,
//! planned with DataFusion against its schema. Only column references,
//! literals, operators, casts, CASE and an allow-list of pure scalar
//! functions may appear: no subqueries, aggregates, windows, placeholders or
//! other functions.

use crate::{Error, Result};
use arrow::datatypes::{DataType, Schema};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::DFSchema;
use datafusion::logical_expr::Expr;
use datafusion::prelude::SessionContext;

/// Longest row filter accepted, in bytes.
pub const MAX_FILTER: usize = 2000;

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

/// Parses `sql` as one expression over `schema`, checks every node against
/// the allow-list and that the result is boolean. Returns the expression as
/// DataFusion normalized it (for display); the stored text stays the
/// provider's.
pub fn check_row_filter(sql: &str, schema: &Schema) -> Result<String> {
    if sql.trim().is_empty() || sql.len() > MAX_FILTER {
        return Err(Error::BadFilter(format!("a filter is 1 to {MAX_FILTER} bytes")));
    }
    let df_schema = DFSchema::try_from(schema.clone()).map_err(|e| Error::BadFilter(e.to_string()))?;
    let ctx = SessionContext::new();
    let expr = ctx
        .parse_sql_expr(sql, &df_schema)
        .map_err(|e| Error::BadFilter(plain(e.to_string())))?;
    let mut refused: Option<String> = None;
    expr.apply(|e| {
        let ok = match e {
            Expr::Column(c) => {
                if schema.field_with_name(&c.name).is_err() {
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
    if let Some(why) = refused {
        return Err(Error::BadFilter(why));
    }
    // Planning applies DataFusion's type coercion: operands that cannot be
    // brought to a common type are refused here, not when a query runs.
    let shown = expr.to_string();
    let ty = ctx
        .create_physical_expr(expr, &df_schema)
        .and_then(|p| p.data_type(schema))
        .map_err(|e| Error::BadFilter(plain(e.to_string())))?;
    if ty != DataType::Boolean {
        return Err(Error::BadFilter(format!("the filter is of type {ty}, not a boolean")));
    }
    Ok(shown)
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
}
