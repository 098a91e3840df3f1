//! The query rules as a table: `tests/queries/*.case` list terms and SQL
//! with either the refusal code or the rewritten plan and the rows the
//! query returns from the fixture table below. Run with `LIUTONG_BLESS=1`
//! to rewrite the `plan:` blocks from what the code does now (rows and
//! refusals are never rewritten: they are the specification).
//!
//! A case:
//!
//! ```text
//! == a title
//! terms: {"columns": ["port", "teu"], "row_filter": "teu > 20"}
//! sql: SELECT * FROM shipments
//! plan:
//!   <the rewritten logical plan, indented two spaces>
//! rows:
//!   <the result, one row per line, values separated by " | ", sorted>
//! ```
//!
//! or `refused: <code>` instead of `plan:`/`rows:`, optionally followed by
//! `message: <text>`, a part the refusal's message must contain (for
//! instance that an execution error names only a masked value). A refusal
//! of `query.failed` is an error while the rewritten plan ran. `terms:`
//! holds only the query terms (columns, row_filter, masks, min_group_size,
//! row_cap); the rest are those of a valid query grant.
//!
//! Inputs too large or too deep for one line (a 1 MB query, 10,000 nested
//! parentheses) are built in code by `generated_limits` below.

use arrow::array::{ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use liutong_policies::query::{PolicySession, QueryLimits};
use liutong_policies::{Action, Author, ColumnMask, RowFilters, Terms};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SALT: [u8; 32] = [7; 32];

/// id, port, consignee, teu, value, arrived, secret.
type FixtureRow = (
    i64,
    &'static str,
    &'static str,
    i64,
    Option<f64>,
    &'static str,
    Option<&'static str>,
);

fn fixture() -> (Arc<Schema>, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("port", DataType::Utf8, false),
        Field::new("consignee", DataType::Utf8, false),
        Field::new("teu", DataType::Int64, false),
        Field::new("value", DataType::Float64, true),
        Field::new("arrived", DataType::Date32, false),
        Field::new("secret", DataType::Utf8, true),
    ]));
    let rows: [FixtureRow; 12] = [
        (1, "Ningbo", "Acme", 10, Some(1000.5), "2026-01-05", Some("s1")),
        (2, "Ningbo", "Acme", 20, Some(2000.0), "2026-01-20", Some("s2")),
        (3, "Ningbo", "Bolt", 30, Some(1500.0), "2026-02-03", Some("s3")),
        (4, "Shanghai", "Bolt", 40, Some(4000.0), "2026-02-14", Some("s4")),
        (5, "Shanghai", "Cargo", 50, Some(5200.0), "2026-03-01", Some("s5")),
        (6, "Shanghai", "Cargo", 60, Some(6100.0), "2026-03-15", None),
        (7, "Shanghai", "Delta", 70, None, "2026-03-30", Some("s7")),
        (8, "Qingdao", "Delta", 80, Some(8000.0), "2026-04-02", Some("s8")),
        (9, "Qingdao", "Echo", 90, Some(9000.0), "2026-04-18", Some("s9")),
        (10, "Tianjin", "Echo", 100, Some(10000.0), "2026-05-01", Some("s10")),
        (11, "Tianjin", "Fox", 110, Some(-50.0), "2026-05-09", Some("s11")),
        (12, "Xiamen", "Fox", 120, Some(12000.0), "2026-06-30", Some("s12")),
    ];
    let day = |s: &str| {
        let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("fixture date");
        (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.3))),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.4))),
        Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| day(r.5)))),
        Arc::new(StringArray::from_iter(rows.iter().map(|r| r.6))),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).expect("fixture batch");
    (schema, batch)
}

/// A case's terms: the query terms of a grant whose offer has the same
/// columns, masks, group size and row cap; `row_filter` is the provider's
/// (the offer's), `consumer_filter` the consumer's own addition.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct CaseTerms {
    columns: Option<Vec<String>>,
    row_filter: Option<String>,
    consumer_filter: Option<String>,
    #[serde(default)]
    masks: Vec<ColumnMask>,
    min_group_size: Option<u32>,
    row_cap: Option<u64>,
}

impl CaseTerms {
    fn terms(&self, row_filter: Option<String>) -> Terms {
        Terms {
            purposes: vec!["research".into()],
            not_before: 0,
            not_after: Some(i64::MAX as u64),
            max_uses: Some(10),
            actions: vec![Action::Query],
            columns: self.columns.clone(),
            row_filter,
            masks: self.masks.clone(),
            min_group_size: self.min_group_size,
            row_cap: self.row_cap,
            transferable: false,
        }
    }

    /// The grant's query terms, or the refusal of its consumer filter.
    fn query_terms(&self, schema: &Schema) -> Result<liutong_policies::QueryTerms, (String, String)> {
        let offer = self.terms(self.row_filter.clone());
        let grant = self.terms(self.consumer_filter.clone());
        offer
            .validate(Some(schema), &["research".to_string()])
            .map_err(|e| (e.code().to_string(), e.to_string()))?;
        let filters = RowFilters::of_grant(&offer, &grant, Author::Consumer, schema)
            .map_err(|e| (e.code().to_string(), e.to_string()))?;
        Ok(liutong_policies::QueryTerms::of(&grant, filters))
    }
}

#[derive(Debug, Default)]
struct Case {
    title: String,
    line: usize,
    terms: String,
    sql: String,
    refused: Option<String>,
    message: Option<String>,
    plan: Option<Vec<String>>,
    rows: Option<Vec<String>>,
}

fn parse(path: &Path, text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    let mut block: Option<&'static str> = None;
    for (n, line) in text.lines().enumerate() {
        let where_ = || format!("{}:{}", path.display(), n + 1);
        if let Some(title) = line.strip_prefix("== ") {
            cases.push(Case {
                title: title.trim().to_string(),
                line: n + 1,
                ..Case::default()
            });
            block = None;
            continue;
        }
        if line.trim_start().starts_with('#') || (line.trim().is_empty() && block.is_none()) {
            continue;
        }
        let case = cases
            .last_mut()
            .unwrap_or_else(|| panic!("{}: text before the first case", where_()));
        if let Some(indented) = line.strip_prefix("  ") {
            match block {
                Some("plan") => case.plan.get_or_insert_with(Vec::new).push(indented.to_string()),
                Some("rows") => case.rows.get_or_insert_with(Vec::new).push(indented.to_string()),
                Some("sql") => {
                    case.sql.push('\n');
                    case.sql.push_str(indented);
                }
                _ => panic!("{}: indented line outside plan:, rows: or sql:", where_()),
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("{}: expected `key: value`", where_()));
        let value = value.trim().to_string();
        block = None;
        match key {
            "terms" => case.terms = value,
            "sql" => {
                case.sql = value;
                block = Some("sql");
            }
            "refused" => case.refused = Some(value),
            "message" => case.message = Some(value),
            "plan" => {
                case.plan = Some(Vec::new());
                block = Some("plan");
            }
            "rows" => {
                case.rows = Some(Vec::new());
                block = Some("rows");
            }
            other => panic!("{}: unknown key {other:?}", where_()),
        }
    }
    cases
}

/// The result as lines "a | b | c", sorted.
fn render(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut lines = Vec::new();
    for b in batches {
        let formatters: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
            .collect();
        for row in 0..b.num_rows() {
            let values: Vec<String> = formatters.iter().map(|f| f.value(row).to_string()).collect();
            lines.push(values.join(" | "));
        }
    }
    lines.sort();
    lines
}

struct Outcome {
    refused: Option<(String, String)>,
    plan: Vec<String>,
    rows: Vec<String>,
}

/// The fixture table as `shipments` under `terms` (JSON case terms, or
/// empty for none); a consumer filter the terms refuse is an error.
fn session(terms: &str, title: &str) -> Result<PolicySession, (String, String)> {
    session_over(terms, title, fixture())
}

fn session_over(
    terms: &str,
    title: &str,
    (schema, batch): (Arc<Schema>, RecordBatch),
) -> Result<PolicySession, (String, String)> {
    let terms: CaseTerms = if terms.is_empty() {
        CaseTerms::default()
    } else {
        serde_json::from_str(terms).unwrap_or_else(|e| panic!("case {title:?}: terms: {e}"))
    };
    let terms = terms.query_terms(&schema)?;
    let table = Arc::new(MemTable::try_new(schema, vec![vec![batch]]).expect("memtable"));
    Ok(PolicySession::new("shipments", table, &terms, SALT, QueryLimits::default()).expect("session"))
}

/// The fixture's text values (and any 32 hex digits in a row, a hash):
/// no message of a failed run may carry one.
fn data_in(message: &str) -> Option<String> {
    let (_, batch) = fixture();
    for column in batch.columns() {
        if let Some(strings) = column.as_any().downcast_ref::<StringArray>() {
            for v in strings.iter().flatten() {
                if v.len() >= 3 && message.contains(v) {
                    return Some(v.to_string());
                }
            }
        }
    }
    let mut run = 0;
    for c in message.chars() {
        run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
        if run >= 32 {
            return Some("a hex digest".into());
        }
    }
    None
}

async fn run(case: &Case) -> Outcome {
    let session = match session(&case.terms, &case.title) {
        Ok(s) => s,
        Err((code, message)) => {
            return Outcome {
                refused: Some((code, message)),
                plan: vec![],
                rows: vec![],
            }
        }
    };
    let planned = match session.plan(&case.sql).await {
        Ok(p) => p,
        Err(r) => {
            return Outcome {
                refused: Some((r.code.to_string(), r.message)),
                plan: vec![],
                rows: vec![],
            }
        }
    };
    let plan: Vec<String> = planned
        .plan
        .display_indent()
        .to_string()
        .lines()
        .map(str::to_string)
        .collect();
    let df = session
        .context()
        .execute_logical_plan(planned.plan)
        .await
        .unwrap_or_else(|e| panic!("case {:?}: execution: {e}", case.title));
    match df.collect().await {
        Ok(batches) => Outcome {
            refused: None,
            plan,
            rows: render(&batches),
        },
        Err(e) => {
            let r = liutong_policies::query::run_failure(&e);
            Outcome {
                refused: Some((r.code.to_string(), r.message)),
                plan,
                rows: vec![],
            }
        }
    }
}

fn case_files() -> Vec<PathBuf> {
    // The crate's directory when the test runs (cargo sets it), not where it
    // was compiled: a build reused from a clone elsewhere still finds its cases.
    let root =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let dir = root.join("tests/queries");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/queries")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_rules_as_a_table() {
    let bless = std::env::var_os("LIUTONG_BLESS").is_some();
    let mut failures = Vec::new();
    let mut count = 0;
    for path in case_files() {
        let text = std::fs::read_to_string(&path).expect("case file");
        let cases = parse(&path, &text);
        let mut blessed = Vec::new();
        for case in &cases {
            count += 1;
            let at = format!("{}:{} {:?}", path.display(), case.line, case.title);
            let got = run(case).await;
            if let Some((code, message)) = &got.refused {
                if let Some(value) = data_in(message).filter(|_| code == "query.failed" || code == "query.memory_limit")
                {
                    failures.push(format!("{at}: the {code} message carries {value}: {message}"));
                }
            }
            match (&case.refused, &got.refused) {
                (Some(want), Some((code, message))) if want == code => {
                    if let Some(part) = &case.message {
                        if !message.contains(part.as_str()) {
                            failures.push(format!(
                                "{at}: refused with {code} ({message}), expected a message with {part:?}"
                            ))
                        }
                    }
                }
                (Some(want), Some((code, message))) => {
                    failures.push(format!("{at}: refused with {code} ({message}), expected {want}"))
                }
                (Some(want), None) => failures.push(format!(
                    "{at}: answered, expected refusal {want}; rows:\n    {}",
                    got.rows.join("\n    ")
                )),
                (None, Some((code, message))) => failures.push(format!("{at}: refused with {code}: {message}")),
                (None, None) => {
                    let want_rows = case.rows.clone().map(|mut r| {
                        r.sort();
                        r
                    });
                    if want_rows.as_ref() != Some(&got.rows) {
                        failures.push(format!(
                            "{at}: rows differ\n  expected:\n    {}\n  got:\n    {}",
                            case.rows.clone().unwrap_or_default().join("\n    "),
                            got.rows.join("\n    ")
                        ));
                    }
                    if case.plan.as_ref() != Some(&got.plan) {
                        if bless {
                            blessed.push((case.line, got.plan.clone()));
                        } else {
                            failures.push(format!(
                                "{at}: plan differs (LIUTONG_BLESS=1 rewrites it)\n  expected:\n    {}\n  got:\n    {}",
                                case.plan.clone().unwrap_or_default().join("\n    "),
                                got.plan.join("\n    ")
                            ));
                        }
                    }
                }
            }
        }
        if !blessed.is_empty() {
            std::fs::write(&path, rewrite_plans(&text, &blessed)).expect("bless");
        }
    }
    assert!(count > 0, "no cases found");
    assert!(
        failures.is_empty(),
        "{} of {count} cases fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Replaces (or inserts, before `rows:`) the plan block of the cases at the given lines.
fn rewrite_plans(text: &str, blessed: &[(usize, Vec<String>)]) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        out.push(line.to_string());
        i += 1;
        let Some((_, plan)) = blessed.iter().find(|(l, _)| *l == i) else {
            continue;
        };
        // Copy the case up to its end, dropping its old plan block and
        // writing the new one just before `rows:` (or at the end).
        let mut written = false;
        while i < lines.len() && !lines[i].starts_with("== ") {
            let l = lines[i];
            if l.starts_with("plan:") {
                i += 1;
                while i < lines.len() && lines[i].starts_with("  ") {
                    i += 1;
                }
                continue;
            }
            if l.starts_with("rows:") && !written {
                out.push("plan:".into());
                out.extend(plan.iter().map(|p| format!("  {p}")));
                written = true;
            }
            out.push(l.to_string());
            i += 1;
        }
        if !written {
            while out.last().is_some_and(|l| l.trim().is_empty()) {
                out.pop();
            }
            out.push("plan:".into());
            out.extend(plan.iter().map(|p| format!("  {p}")));
            out.push(String::new());
        }
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

/// The outcome of `sql` under `terms`: the number of rows, or the
/// refusal's code and message.
async fn outcome(terms: &str, sql: &str) -> Result<usize, (String, String)> {
    let session = session(terms, "generated")?;
    let planned = session.plan(sql).await.map_err(|r| (r.code.to_string(), r.message))?;
    let failed = |e: datafusion::error::DataFusionError| {
        let r = liutong_policies::query::run_failure(&e);
        (r.code.to_string(), r.message)
    };
    let df = session
        .context()
        .execute_logical_plan(planned.plan)
        .await
        .map_err(failed)?;
    let batches = df.collect().await.map_err(failed)?;
    Ok(batches.iter().map(|b| b.num_rows()).sum())
}

/// Inputs built in code, too long or too deep for a `.case` line: each is
/// refused with its code or answered, and none crashes the process (a
/// stack overflow aborts the whole test binary, so it cannot pass
/// quietly). The test runs on a runtime thread's ordinary 2 MiB stack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_limits() {
    let rep = |s: &str, n: usize| s.repeat(n);
    let chain = |term: &str, op: &str, n: usize| vec![term; n].join(op);
    let from_nest = |n: usize| {
        (0..n).fold("SELECT id FROM shipments".to_string(), |q, i| {
            format!("SELECT * FROM ({q}) t{i}")
        })
    };
    let joins = |n: usize| {
        let more: String = (1..n)
            .map(|i| format!(" JOIN shipments t{i} ON t{i}.id = t0.id"))
            .collect();
        format!("SELECT count(*) FROM shipments t0{more}")
    };
    let max_sql = liutong_policies::query::MAX_SQL;
    // Every term at once, so the deep inputs also pass the rewrite.
    let strict = r#"{"row_filter": "teu > 10", "masks": [{"column": "teu", "mask": {"kind": "generalize", "width": 10}}, {"column": "port", "mask": {"kind": "truncate", "keep": 2}}], "row_cap": 100}"#;
    let cases: Vec<(&str, &str, String, Result<usize, &str>)> = vec![
        (
            "1 MB",
            "",
            format!("SELECT 1 {}", rep(" ", 1 << 20)),
            Err("query.too_long"),
        ),
        (
            "one byte over the limit",
            "",
            format!("SELECT 1{}", rep(" ", max_sql - 7)),
            Err("query.too_long"),
        ),
        (
            "exactly at the limit",
            "",
            format!("SELECT 1{}", rep(" ", max_sql - 8)),
            Ok(1),
        ),
        (
            "10,000 nested parentheses",
            "",
            format!("SELECT {}1{}", rep("(", 10_000), rep(")", 10_000)),
            Err("query.too_deep"),
        ),
        (
            "200 nested parentheses",
            "",
            format!("SELECT {}1{}", rep("(", 200), rep(")", 200)),
            Err("query.too_deep"),
        ),
        (
            "200 nested function calls",
            "",
            format!("SELECT {}1{}", rep("abs(", 200), rep(")", 200)),
            Err("query.too_deep"),
        ),
        (
            "200 nested CASEs",
            "",
            format!("SELECT {}1{}", rep("CASE WHEN true THEN ", 200), rep(" END", 200)),
            Err("query.too_deep"),
        ),
        (
            "200 nested arrays",
            "",
            format!("SELECT {}1{}", rep("[", 200), rep("]", 200)),
            Err("query.too_deep"),
        ),
        (
            "1000 NOTs",
            "",
            format!("SELECT {}true", rep("NOT ", 1000)),
            Err("query.too_deep"),
        ),
        (
            "1000 unary minuses",
            "",
            format!("SELECT {}1", rep("- ", 1000)),
            Err("query.too_deep"),
        ),
        (
            "3000-term a + a + …",
            "",
            format!("SELECT {} FROM shipments", chain("teu", " + ", 3000)),
            Err("query.too_deep"),
        ),
        (
            "3000-term AND",
            "",
            format!("SELECT id FROM shipments WHERE {}", chain("teu > 0", " AND ", 3000)),
            Err("query.too_deep"),
        ),
        (
            "3000 casts",
            "",
            format!("SELECT teu{} FROM shipments", rep("::bigint", 3000)),
            Err("query.too_deep"),
        ),
        (
            "30,000-term 1+1+… (the deepest 64 KiB allows)",
            "",
            format!("SELECT {}", chain("1", "+", 30_000)),
            Err("query.too_deep"),
        ),
        (
            "an INSERT of a 30,000-term chain",
            "",
            format!("INSERT INTO shipments SELECT {}", chain("1", "+", 30_000)),
            Err("query.not_select"),
        ),
        (
            "a 120-term chain",
            strict,
            format!("SELECT {} FROM shipments", chain("teu", " + ", 120)),
            Ok(11),
        ),
        (
            "a 120-term OR",
            strict,
            format!("SELECT id FROM shipments WHERE {}", chain("teu = 5", " OR ", 120)),
            Ok(0),
        ),
        ("8 nested FROM subqueries", strict, from_nest(8), Ok(11)),
        ("9 nested FROM subqueries", strict, from_nest(9), Err("query.too_deep")),
        (
            "40 nested FROM subqueries",
            strict,
            from_nest(40),
            Err("query.too_deep"),
        ),
        (
            "8 nested EXISTS",
            strict,
            format!(
                "SELECT id FROM shipments WHERE {}true{}",
                rep("EXISTS (SELECT 1 FROM shipments WHERE ", 8),
                rep(")", 8)
            ),
            Ok(11),
        ),
        (
            "8 nested EXISTS around a 110-term chain",
            strict,
            format!(
                "SELECT id FROM shipments WHERE {}{} > 0{}",
                rep("EXISTS (SELECT 1 FROM shipments WHERE ", 8),
                chain("teu", " + ", 110),
                rep(")", 8)
            ),
            Ok(11),
        ),
        (
            "20 nested scalar subqueries",
            strict,
            format!("SELECT {}1{}", rep("(SELECT ", 20), rep(")", 20)),
            Err("query.too_deep"),
        ),
        (
            "a 60-CTE chain",
            strict,
            format!(
                "WITH c0 AS (SELECT * FROM shipments){} SELECT * FROM c59",
                (1..60)
                    .map(|i| format!(", c{i} AS (SELECT * FROM c{})", i - 1))
                    .collect::<String>()
            ),
            Ok(11),
        ),
        ("64 joined tables", strict, joins(64), Ok(1)),
        ("65 joined tables", strict, joins(65), Err("query.too_deep")),
        (
            "a 2000-SELECT UNION",
            "",
            format!("{} SELECT 1", rep("SELECT 1 UNION ALL ", 1999)),
            Err("query.too_deep"),
        ),
        (
            "a 10,000-value IN list",
            strict,
            format!(
                "SELECT id FROM shipments WHERE id IN ({})",
                (0..10_000).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
            ),
            Ok(11),
        ),
    ];
    let mut failures = Vec::new();
    for (name, terms, sql, want) in &cases {
        let got = outcome(terms, sql).await;
        let matches = match (&got, want) {
            (Ok(rows), Ok(n)) => rows == n,
            (Err((code, _)), Err(c)) => code == c,
            _ => false,
        };
        if !matches {
            failures.push(format!("{name} ({} bytes): expected {want:?}, got {got:?}", sql.len()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The hash mask's salt is in no form of the plan: not its display (the
/// `plan:` blocks), not its debug form, which DataFusion's error messages
/// may quote to the consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_salt_stays_out_of_the_plan() {
    let session = session(
        r#"{"masks": [{"column": "consignee", "mask": {"kind": "hash"}}]}"#,
        "salt",
    )
    .expect("session");
    let planned = session.plan("SELECT consignee FROM shipments").await.expect("planned");
    let salt_debug = format!("{:?}", SALT.to_vec());
    let salt_hex = hex::encode(SALT);
    let forms = [
        ("liutong_mask_hash", format!("{}", planned.plan.display_indent())),
        ("MaskHash", format!("{:?}", planned.plan)),
    ];
    for (mask, text) in forms {
        assert!(text.contains(mask), "the mask is in the plan: {text}");
        assert!(
            !text.contains(&salt_debug) && !text.contains(&salt_hex),
            "the salt is in the plan: {text}"
        );
    }
}
