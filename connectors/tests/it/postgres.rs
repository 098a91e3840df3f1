//! `PgSource` against a real PostgreSQL server started by `PgServer`: the
//! type mapping, canonical snapshots, queries with pushdown, and every
//! refusal with its code.

use crate::query;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Date32Type, Decimal128Type, Int64Type, TimeUnit, TimestampMicrosecondType};
use arrow::ipc::reader::StreamReader;
use datafusion::physical_plan::streaming::StreamingTableExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{col, lit, SessionContext};
use liutong_connectors::testing::PgServer;
use liutong_connectors::{Connector, PgSource, PgTable};
use std::path::Path;
use std::sync::Arc;

/// A server, or the test fails saying why there is none.
fn server() -> PgServer {
    PgServer::start().unwrap_or_else(|e| panic!("starting PostgreSQL for the tests: {e}"))
}

async fn execute(pg: &PgServer, sql: &str) {
    pg.execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn source(pg: &PgServer, table: &str) -> PgSource {
    PgSource::new(&pg.url(), table).unwrap_or_else(|e| panic!("PgSource for {table}: {e}"))
}

const EVERY_TYPE: &str = r#"
CREATE TABLE every_type (
    id int4 PRIMARY KEY,
    flag bool, small int2, big int8 NOT NULL, f4 float4, f8 float8,
    t text, v varchar(20), c char(4), n name,
    d date, ts timestamp, tz timestamptz,
    amount numeric(12,2), free numeric, u uuid, j json
);
INSERT INTO every_type VALUES
    (1, true, 1, 10, 1.5, 2.25, 'alpha', 'x', 'ab', 'nm', '2024-01-02', '2024-01-02 03:04:05.123456',
     '2024-01-02 03:04:05.5+02', 1234567890.12, 0.1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": [1, 2]}'),
    (2, false, -2, 20, -0.5, 1e300, 'O''Brien', 'y', 'abcd', 'n2', '1969-12-31', '1900-01-01 00:00:00',
     '1970-01-01 00:00:00+00', -0.05, 12345.678, NULL, '[]'),
    (3, NULL, NULL, 30, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE VIEW every_view AS SELECT id, t, amount FROM every_type WHERE id > 1;
CREATE TABLE "Mixed" ("Id" int4);
INSERT INTO "Mixed" VALUES (7);
"#;

fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The pushed SQL of the one PostgreSQL scan in `plan` (its `Debug` shows it).
fn pushed_sql(plan: &Arc<dyn ExecutionPlan>) -> Option<String> {
    if let Some(exec) = plan.downcast_ref::<StreamingTableExec>() {
        return Some(format!("{:?}", exec.partitions()[0]));
    }
    plan.children().into_iter().find_map(pushed_sql)
}

#[tokio::test]
async fn postgres_source_end_to_end() {
    let pg = server();
    execute(&pg, EVERY_TYPE).await;

    // Shape: the type mapping and nullability, read back through the catalog's text form.
    let every = source(&pg, "every_type");
    let shape = every.shape().await.expect("the table's shape");
    assert_eq!(shape.rows, 3);
    let schema = shape.to_arrow().expect("the shape is a valid schema");
    let got: Vec<(&str, DataType, bool)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone(), f.is_nullable()))
        .collect();
    use DataType as T;
    let expected = vec![
        ("id", T::Int32, false),
        ("flag", T::Boolean, true),
        ("small", T::Int16, true),
        ("big", T::Int64, false),
        ("f4", T::Float32, true),
        ("f8", T::Float64, true),
        ("t", T::Utf8, true),
        ("v", T::Utf8, true),
        ("c", T::Utf8, true),
        ("n", T::Utf8, true),
        ("d", T::Date32, true),
        ("ts", T::Timestamp(TimeUnit::Microsecond, None), true),
        ("tz", utc_micros(), true),
        ("amount", T::Decimal128(12, 2), true),
        ("free", T::Float64, true),
        ("u", T::Utf8, true),
        ("j", T::Utf8, true),
    ];
    assert_eq!(got, expected);
    let view = source(&pg, "public.every_view")
        .shape()
        .await
        .expect("the view's shape");
    assert_eq!(view.rows, 2);
    assert!(
        view.columns.iter().all(|c| c.nullable),
        "a view's columns are nullable: {view:?}"
    );
    let mixed = source(&pg, "Mixed").shape().await.expect("a quoted, mixed-case name");
    assert_eq!((mixed.columns[0].name.as_str(), mixed.rows), ("Id", 1));

    // DataFusion over the live table: projection, filters and limit go to the server.
    let table = Connector::table(&every, Arc::new(schema.clone()))
        .await
        .expect("a live table");
    let ctx = SessionContext::new();
    ctx.register_table("pg", table.clone()).expect("register");
    let sql = "SELECT id, t, amount, d, tz, u, j FROM pg WHERE big >= 20 AND t <> 'zzz' ORDER BY id";
    assert_eq!(
        query(&ctx, sql).await,
        "+----+---------+--------+------------+----------------------+---+----+\n\
         | id | t       | amount | d          | tz                   | u | j  |\n\
         +----+---------+--------+------------+----------------------+---+----+\n\
         | 2  | O'Brien | -0.05  | 1969-12-31 | 1970-01-01T00:00:00Z |   | [] |\n\
         +----+---------+--------+------------+----------------------+---+----+"
    );
    let plan = ctx
        .sql(sql)
        .await
        .expect("plan")
        .create_physical_plan()
        .await
        .expect("physical plan");
    let pushed = pushed_sql(&plan).expect("a PostgreSQL scan in the plan");
    // The filters are Inexact, so DataFusion re-applies them and the scan
    // also reads their columns (big); nothing else is selected.
    assert_eq!(
        pushed,
        r#"PgScan { table: "every_type", sql: "SELECT \"id\", \"big\", \"t\", \"d\", \"tz\", \"amount\"::text, \"u\"::text, \"j\"::text FROM \"every_type\" WHERE (\"big\" >= (20)) AND (\"t\" COLLATE \"C\" <> 'zzz')", .. }"#
    );
    assert_eq!(
        query(
            &ctx,
            "SELECT count(*) AS n, sum(amount) AS total, max(f8) AS f8, min(ts) AS ts FROM pg"
        )
        .await,
        "+---+---------------+-------+---------------------+\n\
         | n | total         | f8    | ts                  |\n\
         +---+---------------+-------+---------------------+\n\
         | 3 | 1234567890.07 | 1e300 | 1900-01-01T00:00:00 |\n\
         +---+---------------+-------+---------------------+"
    );
    assert_eq!(
        query(
            &ctx,
            "SELECT id, c, n, f4, free FROM pg WHERE id IN (1, 3) OR flag ORDER BY id LIMIT 5"
        )
        .await,
        "+----+------+----+-----+------+\n\
         | id | c    | n  | f4  | free |\n\
         +----+------+----+-----+------+\n\
         | 1  | ab   | nm | 1.5 | 0.1  |\n\
         | 3  |      |    |     |      |\n\
         +----+------+----+-----+------+"
    );
    // The same pure builder, called directly: a filter it cannot translate stays out.
    let pg_table = table.downcast_ref::<PgTable>().expect("the table is a PgTable");
    assert_eq!(
        pg_table.scan_sql(
            Some(&[0, 6]),
            &[col("f8").gt(lit(1.0)), col("small").lt(lit(0i16))],
            Some(3)
        ),
        r#"SELECT "id", "t" FROM "every_type" WHERE ("small" < (0)) LIMIT 3"#
    );

    // A registered schema the server no longer fits.
    let mut renamed = schema.fields().to_vec();
    renamed[1] = Arc::new(arrow::datatypes::Field::new("gone", T::Boolean, true));
    let e = Connector::table(&every, Arc::new(arrow::datatypes::Schema::new(renamed)))
        .await
        .expect_err("a column the server lacks");
    assert_eq!(e.code(), "source.unavailable", "{e}");
    assert!(e.to_string().contains("gone"), "{e}");
    let mut retyped = schema.fields().to_vec();
    retyped[0] = Arc::new(arrow::datatypes::Field::new("id", T::Utf8, false));
    let e = Connector::table(&every, Arc::new(arrow::datatypes::Schema::new(retyped)))
        .await
        .expect_err("a column of another type");
    assert_eq!(e.code(), "source.unavailable", "{e}");

    // Snapshots: exact values, then canonical bytes for 20000 rows.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = dir.path().join("every.arrows");
    let snap_shape = every.snapshot(&out).await.expect("a snapshot");
    assert_eq!(snap_shape, shape);
    let batches = read_stream(&out);
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    let amount = b.column(13).as_primitive::<Decimal128Type>();
    assert_eq!(
        (amount.value(0), amount.value(1), amount.is_null(2)),
        (123_456_789_012, -5, true)
    );
    let tz = b.column(12).as_primitive::<TimestampMicrosecondType>();
    assert_eq!(tz.value(0), 1_704_157_445_500_000); // 2024-01-02 01:04:05.5 UTC
    assert_eq!(b.column(10).as_primitive::<Date32Type>().value(1), -1);

    execute(
        &pg,
        "CREATE TABLE big_a (id int8 NOT NULL, k text, x float8, amount numeric(10,2), c char(3));
         INSERT INTO big_a
            SELECT g % 19000, CASE WHEN g % 11 = 0 THEN NULL ELSE (g % 7)::text END,
                   CASE WHEN g % 13 = 0 THEN '-0'::float8 WHEN g % 17 = 0 THEN 0 ELSE g * 0.5 END,
                   g / 100.0, CASE WHEN g % 2 = 0 THEN 'a' ELSE 'a  ' END
            FROM generate_series(1, 20000) g ORDER BY random();
         CREATE TABLE big_b (LIKE big_a);
         INSERT INTO big_b SELECT * FROM big_a ORDER BY random();",
    )
    .await;
    let a = source(&pg, "big_a");
    let (first, second, other) = (
        dir.path().join("a1.arrows"),
        dir.path().join("a2.arrows"),
        dir.path().join("b.arrows"),
    );
    let shape_a = a.snapshot(&first).await.expect("snapshot of big_a");
    assert_eq!(shape_a.rows, 20_000);
    assert_eq!(shape_a, a.shape().await.expect("big_a's shape"));
    a.snapshot(&second).await.expect("big_a again");
    source(&pg, "big_b").snapshot(&other).await.expect("snapshot of big_b");
    let bytes = |p: &Path| std::fs::read(p).expect("read the snapshot");
    assert!(bytes(&first) == bytes(&second), "two snapshots of one table differ");
    assert!(
        bytes(&first) == bytes(&other),
        "the same rows in another physical order give other bytes"
    );
    let batches = read_stream(&first);
    let sizes: Vec<usize> = batches.iter().map(|b| b.num_rows()).collect();
    assert_eq!(sizes, [8192, 8192, 3616]);
    let ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] <= w[1]),
        "rows come ordered by the first column"
    );
    // Live scans of many rows: three batches, and exactly one full batch.
    let big = Connector::table(&a, Arc::new(shape_a.to_arrow().expect("big_a's schema")))
        .await
        .expect("a live big_a");
    ctx.register_table("big", big).expect("register big_a");
    assert_eq!(
        query(&ctx, "SELECT count(*) AS n, sum(id) AS ids, count(k) AS k FROM big").await,
        "+-------+-----------+-------+\n\
         | n     | ids       | k     |\n\
         +-------+-----------+-------+\n\
         | 20000 | 180991000 | 18182 |\n\
         +-------+-----------+-------+"
    );
    assert_eq!(
        query(&ctx, "SELECT count(*) AS n FROM big WHERE id BETWEEN 1001 AND 9192").await,
        "+------+\n\
         | n    |\n\
         +------+\n\
         | 8192 |\n\
         +------+"
    );

    // Refusals that need a server; a failed snapshot leaves the old file and no temporary one.
    let old = dir.path().join("old.arrows");
    std::fs::write(&old, b"old").expect("write a placeholder");
    let missing = source(&pg, "no_such_table");
    for e in [
        missing.shape().await.expect_err("no table"),
        Connector::table(&missing, Arc::new(schema.clone()))
            .await
            .expect_err("no table"),
        missing.snapshot(&old).await.expect_err("no table"),
        source(&pg, "no_schema.t").shape().await.expect_err("no schema"),
    ] {
        assert_eq!(e.code(), "source.unavailable", "{e}");
        assert!(e.to_string().contains("no table or view"), "{e}");
    }
    execute(
        &pg,
        "CREATE TABLE bad_dates (d date); INSERT INTO bad_dates VALUES ('2024-01-01'), ('infinity');",
    )
    .await;
    let e = source(&pg, "bad_dates")
        .snapshot(&old)
        .await
        .expect_err("infinity has no Date32 value");
    assert_eq!(e.code(), "source.read", "{e}");
    assert_eq!(std::fs::read(&old).expect("the old file"), b"old");
    // The same value in a live scan fails the query with the reason.
    let bad_dates = source(&pg, "bad_dates");
    let shape = bad_dates.shape().await.expect("bad_dates' shape");
    let table = Connector::table(&bad_dates, Arc::new(shape.to_arrow().expect("a schema")))
        .await
        .expect("a live bad_dates");
    ctx.register_table("bad_dates", table).expect("register bad_dates");
    let e = ctx
        .sql("SELECT * FROM bad_dates")
        .await
        .expect("plan")
        .collect()
        .await
        .expect_err("infinity has no Date32 value");
    assert!(e.to_string().contains("infinite date"), "{e}");
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list the directory")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["a1.arrows", "a2.arrows", "b.arrows", "every.arrows", "old.arrows"]
    );
}

fn read_stream(path: &Path) -> Vec<arrow::record_batch::RecordBatch> {
    let file = std::fs::File::open(path).expect("open the snapshot");
    StreamReader::try_new(std::io::BufReader::new(file), None)
        .expect("an Arrow IPC stream")
        .collect::<Result<Vec<_>, _>>()
        .expect("readable batches")
}

#[tokio::test]
async fn postgres_refusals_without_a_server() {
    let e = PgSource::new("postgres://u:s3cret@localhost:port/db", "t").expect_err("a bad URL");
    assert_eq!(e.code(), "source.bad_source", "{e}");
    assert!(!e.to_string().contains("s3cret"), "{e}");
    let e = PgSource::new("postgres://u@localhost/db", "x; drop table y").expect_err("a bad table name");
    assert_eq!(e.code(), "source.bad_source", "{e}");

    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let closed = PgSource::new(&format!("postgres://u@127.0.0.1:{port}/db"), "t").expect("a valid source");
    let e = closed.shape().await.expect_err("nobody listens");
    assert_eq!(e.code(), "source.postgres", "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}
