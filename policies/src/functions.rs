//! The functions a query may call, and a bound on the size of every value
//! a query computes.
//!
//! Functions are allow-listed by name (scalar, aggregate and window
//! functions alike): what is not listed here is refused, so a function a
//! later DataFusion adds (or one that reads the provider's file name, like
//! `input_file_name`) is never reachable by accident. Left out on purpose:
//! functions whose output size an argument sets (`repeat`, `lpad`, `rpad`),
//! `regexp_replace` (its back-references repeat a match any number of
//! times), casts to a type named at run time (`arrow_cast`), metadata and
//! file functions, `uuid` and `version`.
//!
//! DataFusion allocates the values functions compute outside its memory
//! pool, and folds constant expressions while it optimizes, before any
//! limit applies: `replace(replace(…))` or `concat` over a chain of CTEs
//! could build gigabytes from a short query. So every value a query
//! computes is bounded before it runs, as `per_input · M + constant` bytes,
//! where `M` is the largest value the query reads (a column's value; the
//! value a collecting aggregate such as `string_agg` builds counts as one).
//! A computed value may be at most [`MAX_GROWTH`] `M` plus
//! [`MAX_CONSTANT`] bytes, and the computed values of one plan node
//! together at most [`MAX_NODE_GROWTH`] `M` plus [`MAX_NODE_CONSTANT`]
//! bytes. The bound follows values through subqueries, CTEs, joins and
//! unions, so a chain of CTEs that doubles a value at each step is refused
//! at the step that crosses it.

use crate::query::QueryRefusal;
use arrow::datatypes::DataType;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::expr::{AggregateFunction, WindowFunction};
use datafusion::logical_expr::{BinaryExpr, Distinct, Expr, ExprSchemable, JoinType, LogicalPlan, Operator};

/// How big a function's value can be, given its arguments'.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Growth {
    /// A fixed-width value, or a few bytes whatever the input.
    Fixed,
    /// At most the largest argument.
    Largest,
    /// At most the arguments together.
    Sum,
    /// At most `n` times argument `arg` (case mapping can lengthen UTF-8,
    /// hex doubles, a date format's specifiers expand).
    Times { arg: usize, n: u64 },
    /// `concat_ws(sep, …)`: the arguments and a separator between each two.
    Separated,
    /// `replace(s, from, to)`: with `from` and `to` literals, `s` times
    /// how much longer `to` is than `from`; anything else is refused.
    Replace,
    /// A collecting aggregate (`string_agg`, `array_agg`): its value holds
    /// a whole group's values; it counts as one input value of its own.
    Collects,
}

/// Scalar functions a query may call, with how big their values can be.
pub const SCALAR_FUNCTIONS: &[(&str, Growth)] = &[
    ("abs", Growth::Fixed),
    ("acos", Growth::Fixed),
    ("acosh", Growth::Fixed),
    ("arrow_typeof", Growth::Fixed),
    ("ascii", Growth::Fixed),
    ("asin", Growth::Fixed),
    ("asinh", Growth::Fixed),
    ("atan", Growth::Fixed),
    ("atan2", Growth::Fixed),
    ("atanh", Growth::Fixed),
    ("bit_length", Growth::Fixed),
    ("btrim", Growth::Times { arg: 0, n: 1 }),
    ("cbrt", Growth::Fixed),
    ("ceil", Growth::Fixed),
    ("char_length", Growth::Fixed),
    ("character_length", Growth::Fixed),
    ("chr", Growth::Fixed),
    ("coalesce", Growth::Largest),
    ("concat", Growth::Sum),
    ("concat_ws", Growth::Separated),
    ("contains", Growth::Fixed),
    ("cos", Growth::Fixed),
    ("cosh", Growth::Fixed),
    ("cot", Growth::Fixed),
    ("current_date", Growth::Fixed),
    ("current_time", Growth::Fixed),
    ("current_timestamp", Growth::Fixed),
    ("date_bin", Growth::Fixed),
    ("date_format", Growth::Times { arg: 1, n: 8 }),
    ("date_part", Growth::Fixed),
    ("date_trunc", Growth::Fixed),
    ("datepart", Growth::Fixed),
    ("datetrunc", Growth::Fixed),
    ("decode", Growth::Times { arg: 0, n: 1 }),
    ("degrees", Growth::Fixed),
    ("encode", Growth::Times { arg: 0, n: 2 }),
    ("ends_with", Growth::Fixed),
    ("exp", Growth::Fixed),
    ("factorial", Growth::Fixed),
    ("find_in_set", Growth::Fixed),
    ("floor", Growth::Fixed),
    ("from_unixtime", Growth::Fixed),
    ("gcd", Growth::Fixed),
    ("get_field", Growth::Times { arg: 0, n: 1 }),
    ("greatest", Growth::Largest),
    ("ifnull", Growth::Largest),
    ("initcap", Growth::Times { arg: 0, n: 3 }),
    ("instr", Growth::Fixed),
    ("isnan", Growth::Fixed),
    ("iszero", Growth::Fixed),
    ("lcm", Growth::Fixed),
    ("least", Growth::Largest),
    ("left", Growth::Times { arg: 0, n: 1 }),
    ("length", Growth::Fixed),
    ("levenshtein", Growth::Fixed),
    ("ln", Growth::Fixed),
    ("log", Growth::Fixed),
    ("log10", Growth::Fixed),
    ("log2", Growth::Fixed),
    ("lower", Growth::Times { arg: 0, n: 3 }),
    ("ltrim", Growth::Times { arg: 0, n: 1 }),
    ("make_date", Growth::Fixed),
    ("make_time", Growth::Fixed),
    ("named_struct", Growth::Sum),
    ("nanvl", Growth::Fixed),
    ("now", Growth::Fixed),
    ("nullif", Growth::Largest),
    ("nvl", Growth::Largest),
    ("nvl2", Growth::Largest),
    ("octet_length", Growth::Fixed),
    ("overlay", Growth::Sum),
    ("pi", Growth::Fixed),
    ("position", Growth::Fixed),
    ("pow", Growth::Fixed),
    ("power", Growth::Fixed),
    ("radians", Growth::Fixed),
    ("random", Growth::Fixed),
    ("regexp_count", Growth::Fixed),
    ("regexp_instr", Growth::Fixed),
    ("regexp_like", Growth::Fixed),
    ("regexp_match", Growth::Times { arg: 0, n: 2 }),
    ("replace", Growth::Replace),
    ("reverse", Growth::Times { arg: 0, n: 1 }),
    ("right", Growth::Times { arg: 0, n: 1 }),
    ("round", Growth::Fixed),
    ("row", Growth::Sum),
    ("rtrim", Growth::Times { arg: 0, n: 1 }),
    ("signum", Growth::Fixed),
    ("sin", Growth::Fixed),
    ("sinh", Growth::Fixed),
    ("split_part", Growth::Times { arg: 0, n: 1 }),
    ("sqrt", Growth::Fixed),
    ("starts_with", Growth::Fixed),
    ("strpos", Growth::Fixed),
    ("struct", Growth::Sum),
    ("substr", Growth::Times { arg: 0, n: 1 }),
    ("substr_index", Growth::Times { arg: 0, n: 1 }),
    ("substring", Growth::Times { arg: 0, n: 1 }),
    ("substring_index", Growth::Times { arg: 0, n: 1 }),
    ("tan", Growth::Fixed),
    ("tanh", Growth::Fixed),
    ("to_char", Growth::Times { arg: 1, n: 8 }),
    ("to_date", Growth::Fixed),
    ("to_hex", Growth::Fixed),
    ("to_local_time", Growth::Fixed),
    ("to_time", Growth::Fixed),
    ("to_timestamp", Growth::Fixed),
    ("to_timestamp_micros", Growth::Fixed),
    ("to_timestamp_millis", Growth::Fixed),
    ("to_timestamp_nanos", Growth::Fixed),
    ("to_timestamp_seconds", Growth::Fixed),
    ("to_unixtime", Growth::Fixed),
    ("today", Growth::Fixed),
    ("translate", Growth::Times { arg: 0, n: 4 }),
    ("trim", Growth::Times { arg: 0, n: 1 }),
    ("trunc", Growth::Fixed),
    ("upper", Growth::Times { arg: 0, n: 3 }),
];

/// Aggregate functions a query may call. Under an aggregate-only grant
/// only [`crate::query::AGGREGATE_ONLY_FUNCTIONS`] are allowed, and under
/// a row cap no [`COLLECTING_AGGREGATES`].
pub const AGGREGATE_FUNCTIONS: &[(&str, Growth)] = &[
    ("any_value", Growth::Largest),
    ("approx_distinct", Growth::Fixed),
    ("approx_median", Growth::Fixed),
    ("approx_percentile_cont", Growth::Fixed),
    ("approx_percentile_cont_with_weight", Growth::Fixed),
    ("array_agg", Growth::Collects),
    ("avg", Growth::Fixed),
    ("bit_and", Growth::Fixed),
    ("bit_or", Growth::Fixed),
    ("bit_xor", Growth::Fixed),
    ("bool_and", Growth::Fixed),
    ("bool_or", Growth::Fixed),
    ("corr", Growth::Fixed),
    ("count", Growth::Fixed),
    ("covar", Growth::Fixed),
    ("covar_pop", Growth::Fixed),
    ("covar_samp", Growth::Fixed),
    ("first_value", Growth::Largest),
    ("grouping", Growth::Fixed),
    ("last_value", Growth::Largest),
    ("max", Growth::Largest),
    ("mean", Growth::Fixed),
    ("median", Growth::Largest),
    ("min", Growth::Largest),
    ("nth_value", Growth::Largest),
    ("percentile_cont", Growth::Fixed),
    ("quantile_cont", Growth::Fixed),
    ("regr_avgx", Growth::Fixed),
    ("regr_avgy", Growth::Fixed),
    ("regr_count", Growth::Fixed),
    ("regr_intercept", Growth::Fixed),
    ("regr_r2", Growth::Fixed),
    ("regr_slope", Growth::Fixed),
    ("regr_sxx", Growth::Fixed),
    ("regr_sxy", Growth::Fixed),
    ("regr_syy", Growth::Fixed),
    ("stddev", Growth::Fixed),
    ("stddev_pop", Growth::Fixed),
    ("stddev_samp", Growth::Fixed),
    ("string_agg", Growth::Collects),
    ("sum", Growth::Fixed),
    ("var", Growth::Fixed),
    ("var_pop", Growth::Fixed),
    ("var_population", Growth::Fixed),
    ("var_samp", Growth::Fixed),
    ("var_sample", Growth::Fixed),
];

/// Aggregates whose one value holds many rows' values: under a row cap
/// they would return the whole view in one row.
pub const COLLECTING_AGGREGATES: [&str; 2] = ["array_agg", "string_agg"];

/// Window functions a query may call (aggregates may also run as windows).
pub const WINDOW_FUNCTIONS: &[(&str, Growth)] = &[
    ("cume_dist", Growth::Fixed),
    ("dense_rank", Growth::Fixed),
    ("first_value", Growth::Largest),
    ("lag", Growth::Largest),
    ("last_value", Growth::Largest),
    ("lead", Growth::Largest),
    ("nth_value", Growth::Largest),
    ("ntile", Growth::Fixed),
    ("percent_rank", Growth::Fixed),
    ("rank", Growth::Fixed),
    ("row_number", Growth::Fixed),
];

/// Most a computed value may be, in multiples of the largest value read.
pub const MAX_GROWTH: u64 = 16;
/// Most bytes a computed value may add beyond its multiple of the inputs
/// (what literals alone can make, constant folding included).
pub const MAX_CONSTANT: u64 = 1 << 20;
/// Most the computed values of one plan node may be together, in
/// multiples of the largest value read.
pub const MAX_NODE_GROWTH: u64 = 256;
/// Most bytes the computed values of one plan node may add together.
pub const MAX_NODE_CONSTANT: u64 = 16 << 20;

fn lookup(table: &[(&str, Growth)], name: &str) -> Option<Growth> {
    let name = name.to_ascii_lowercase();
    table.iter().find(|(n, _)| *n == name).map(|(_, g)| *g)
}

/// The function an expression node calls, if it calls one that is not
/// allowed: its kind and name.
pub(crate) fn disallowed(e: &Expr) -> Option<(&'static str, String)> {
    match e {
        Expr::ScalarFunction(f) if lookup(SCALAR_FUNCTIONS, f.func.name()).is_none() => {
            Some(("function", f.func.name().to_string()))
        }
        Expr::AggregateFunction(f) if lookup(AGGREGATE_FUNCTIONS, f.func.name()).is_none() => {
            Some(("aggregate function", f.func.name().to_string()))
        }
        Expr::WindowFunction(w) if window_growth(w).is_none() => Some(("window function", w.fun.name().to_string())),
        _ => None,
    }
}

fn window_growth(w: &WindowFunction) -> Option<Growth> {
    let name = w.fun.name();
    lookup(WINDOW_FUNCTIONS, name).or_else(|| lookup(AGGREGATE_FUNCTIONS, name))
}

/// An upper bound on a value's size: `per_input · M + constant` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Size {
    per_input: u64,
    constant: u64,
}

impl Size {
    const ZERO: Size = Size {
        per_input: 0,
        constant: 0,
    };
    const FIXED: Size = Size {
        per_input: 0,
        constant: 64,
    };
    /// A value the query reads.
    const INPUT: Size = Size {
        per_input: 1,
        constant: 0,
    };
    /// A value whose size is not tracked here (an outer query's column):
    /// as large as a value may be, so nothing may grow it further.
    const LARGEST: Size = Size {
        per_input: MAX_GROWTH,
        constant: MAX_CONSTANT,
    };

    fn plus(self, other: Size) -> Size {
        Size {
            per_input: self.per_input.saturating_add(other.per_input),
            constant: self.constant.saturating_add(other.constant),
        }
    }

    fn max(self, other: Size) -> Size {
        Size {
            per_input: self.per_input.max(other.per_input),
            constant: self.constant.max(other.constant),
        }
    }

    fn times(self, n: u64) -> Size {
        Size {
            per_input: self.per_input.saturating_mul(n),
            constant: self.constant.saturating_mul(n).saturating_add(64),
        }
    }

    fn of_type(ty: &DataType) -> Option<Size> {
        fixed_width(ty).then_some(Size::FIXED)
    }
}

fn fixed_width(ty: &DataType) -> bool {
    matches!(ty, DataType::Null | DataType::Boolean) || ty.primitive_width().is_some()
}

fn too_large(message: String) -> QueryRefusal {
    QueryRefusal {
        code: "query.value_too_large",
        message,
    }
}

/// Checks that no value `plan` computes can outgrow the bounds (see the
/// module docs). Runs on the planner's thread: it recurses once per plan
/// level and subquery, which the query limits bound.
pub(crate) fn check_sizes(plan: &LogicalPlan) -> Result<(), QueryRefusal> {
    node_sizes(plan).map(|_| ())
}

/// The size bound of each output column of `plan`, after checking its
/// expressions and its inputs'.
fn node_sizes(plan: &LogicalPlan) -> Result<Vec<Size>, QueryRefusal> {
    let inputs: Vec<Vec<Size>> = plan.inputs().into_iter().map(node_sizes).collect::<Result<_, _>>()?;
    let first = |i: usize| -> Vec<Size> { inputs.get(i).cloned().unwrap_or_default() };
    let mut budget = NodeBudget::default();
    let empty = DFSchema::empty();
    let input_schema = plan.inputs().first().map(|p| p.schema().clone());
    let input_schema: &DFSchema = input_schema.as_deref().unwrap_or(&empty);
    let out = match plan {
        LogicalPlan::TableScan(s) => s
            .projected_schema
            .fields()
            .iter()
            .map(|f| Size::of_type(f.data_type()).unwrap_or(Size::INPUT))
            .collect(),
        LogicalPlan::Projection(p) => {
            let sizes = first(0);
            let mut sizer = Sizer::new(&sizes, input_schema, &mut budget);
            p.expr.iter().map(|e| sizer.size(e)).collect::<Result<_, _>>()?
        }
        LogicalPlan::Aggregate(a) => {
            let sizes = first(0);
            let mut sizer = Sizer::new(&sizes, input_schema, &mut budget);
            let mut out = Vec::new();
            let groups = datafusion::logical_expr::utils::grouping_set_to_exprlist(&a.group_expr)
                .map_err(|e| internal(&e.to_string()))?;
            for g in groups {
                out.push(sizer.size(g)?);
            }
            // A grouping set adds its id column.
            while out.len() + a.aggr_expr.len() < a.schema.fields().len() {
                out.push(Size::FIXED);
            }
            for e in &a.aggr_expr {
                out.push(sizer.size(e)?);
            }
            out
        }
        LogicalPlan::Window(w) => {
            let sizes = first(0);
            let mut out = sizes.clone();
            let mut sizer = Sizer::new(&sizes, input_schema, &mut budget);
            for e in &w.window_expr {
                out.push(sizer.size(e)?);
            }
            out
        }
        LogicalPlan::Join(j) => {
            let (left, right) = (first(0), first(1));
            let joined: Vec<Size> = left.iter().chain(right.iter()).copied().collect();
            let schema = j
                .left
                .schema()
                .join(j.right.schema())
                .map_err(|e| internal(&e.to_string()))?;
            let mut sizer = Sizer::new(&joined, &schema, &mut budget);
            for (l, r) in &j.on {
                sizer.size(l)?;
                sizer.size(r)?;
            }
            if let Some(f) = &j.filter {
                sizer.size(f)?;
            }
            match j.join_type {
                JoinType::LeftSemi | JoinType::LeftAnti => left,
                JoinType::RightSemi | JoinType::RightAnti => right,
                JoinType::LeftMark => left.into_iter().chain([Size::FIXED]).collect(),
                JoinType::RightMark => right.into_iter().chain([Size::FIXED]).collect(),
                _ => joined,
            }
        }
        LogicalPlan::Union(_) => {
            let width = inputs.first().map_or(0, Vec::len);
            (0..width)
                .map(|i| {
                    inputs
                        .iter()
                        .filter_map(|s| s.get(i).copied())
                        .fold(Size::ZERO, Size::max)
                })
                .collect()
        }
        LogicalPlan::Values(v) => {
            let mut out = vec![Size::ZERO; v.schema.fields().len()];
            let mut sizer = Sizer::new(&[], &empty, &mut budget);
            for row in &v.values {
                for (i, e) in row.iter().enumerate() {
                    let size = sizer.size(e)?;
                    if let Some(slot) = out.get_mut(i) {
                        *slot = slot.max(size);
                    }
                }
            }
            out
        }
        LogicalPlan::Filter(f) => {
            let sizes = first(0);
            Sizer::new(&sizes, input_schema, &mut budget).size(&f.predicate)?;
            sizes
        }
        LogicalPlan::Sort(s) => {
            let sizes = first(0);
            let mut sizer = Sizer::new(&sizes, input_schema, &mut budget);
            for e in &s.expr {
                sizer.size(&e.expr)?;
            }
            sizes
        }
        LogicalPlan::Distinct(Distinct::On(d)) => {
            let sizes = first(0);
            let mut sizer = Sizer::new(&sizes, input_schema, &mut budget);
            for e in d.on_expr.iter().chain(d.sort_expr.iter().flatten().map(|s| &s.expr)) {
                sizer.size(e)?;
            }
            d.select_expr.iter().map(|e| sizer.size(e)).collect::<Result<_, _>>()?
        }
        LogicalPlan::EmptyRelation(e) => vec![Size::FIXED; e.schema.fields().len()],
        LogicalPlan::Unnest(u) => {
            // An unnested column's values are parts of the list's value.
            let sizes = first(0);
            let largest = sizes.iter().copied().fold(Size::FIXED, Size::max);
            u.schema
                .fields()
                .iter()
                .map(|f| {
                    u.input
                        .schema()
                        .index_of_column_by_name(None, f.name())
                        .and_then(|i| sizes.get(i).copied())
                        .unwrap_or(largest)
                })
                .collect()
        }
        // Nodes that pass their input's columns on unchanged (limits,
        // aliases, repartitions, DISTINCT, the policy boundary).
        _ => {
            let width = plan.schema().fields().len();
            let passed = first(0);
            if passed.len() == width {
                passed
            } else {
                let largest = inputs.iter().flatten().copied().fold(Size::FIXED, Size::max);
                vec![largest; width]
            }
        }
    };
    Ok(out)
}

/// What one plan node's computed values add up to.
#[derive(Default)]
struct NodeBudget {
    total: Option<Size>,
}

impl NodeBudget {
    /// Counts a value one node computes (every one is materialized, also
    /// inside a larger expression), refusing it past the bounds.
    fn add(&mut self, size: Size) -> Result<(), QueryRefusal> {
        if size.per_input > MAX_GROWTH || size.constant > MAX_CONSTANT {
            return Err(too_large(format!(
                "the query computes a value that can be {} times its largest input value and {} bytes more; a computed value may be at most {MAX_GROWTH} times and {MAX_CONSTANT} bytes more",
                size.per_input, size.constant
            )));
        }
        let total = self.total.map_or(size, |t| t.plus(size));
        if total.per_input > MAX_NODE_GROWTH || total.constant > MAX_NODE_CONSTANT {
            return Err(too_large(format!(
                "one step of the query computes values that together can be {} times its largest input value and {} bytes more; the limit is {MAX_NODE_GROWTH} times and {MAX_NODE_CONSTANT} bytes",
                total.per_input, total.constant
            )));
        }
        self.total = Some(total);
        Ok(())
    }
}

fn internal(message: &str) -> QueryRefusal {
    QueryRefusal {
        code: "query.internal",
        message: message.lines().next().unwrap_or_default().to_string(),
    }
}

fn literal_size(v: &ScalarValue) -> Size {
    let bytes = match v {
        ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => {
            s.as_ref().map_or(0, String::len) as u64
        }
        ScalarValue::Binary(b) | ScalarValue::LargeBinary(b) | ScalarValue::BinaryView(b) => {
            b.as_ref().map_or(0, Vec::len) as u64
        }
        other => other.size() as u64,
    };
    Size {
        per_input: 0,
        constant: bytes,
    }
}

fn string_literal(e: Option<&Expr>) -> Option<u64> {
    match e {
        Some(Expr::Literal(
            ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)),
            _,
        )) => Some(s.len() as u64),
        _ => None,
    }
}

/// Sizes the expressions of one plan node over its input's columns.
struct Sizer<'a> {
    sizes: &'a [Size],
    schema: &'a DFSchema,
    budget: &'a mut NodeBudget,
}

impl<'a> Sizer<'a> {
    fn new(sizes: &'a [Size], schema: &'a DFSchema, budget: &'a mut NodeBudget) -> Sizer<'a> {
        Sizer { sizes, schema, budget }
    }

    /// The size bound of `e`'s value; every value it computes on the way
    /// is counted against the node's budget.
    fn size(&mut self, e: &Expr) -> Result<Size, QueryRefusal> {
        let size = self.size_of(e)?;
        if !passes_on(e) && size != Size::FIXED {
            self.budget.add(size)?;
        }
        Ok(size)
    }

    fn fixed(&self, e: &Expr) -> Option<Size> {
        e.get_type(self.schema).ok().and_then(|t| Size::of_type(&t))
    }

    fn largest(&mut self, args: &[Expr]) -> Result<Size, QueryRefusal> {
        let mut out = Size::ZERO;
        for a in args {
            out = out.max(self.size(a)?);
        }
        Ok(out)
    }

    fn sum(&mut self, args: &[Expr]) -> Result<Size, QueryRefusal> {
        let mut out = Size::ZERO;
        for a in args {
            out = out.plus(self.size(a)?);
        }
        Ok(out)
    }

    fn size_of(&mut self, e: &Expr) -> Result<Size, QueryRefusal> {
        let size = match e {
            Expr::Alias(a) => self.size_of(&a.expr)?,
            Expr::Column(c) => match self.schema.maybe_index_of_column(c) {
                Some(i) => self.sizes.get(i).copied().unwrap_or(Size::LARGEST),
                None => Size::LARGEST,
            },
            Expr::OuterReferenceColumn(..) => Size::LARGEST,
            Expr::Literal(v, _) => literal_size(v),
            Expr::ScalarSubquery(s) => node_sizes(&s.subquery)?.first().copied().unwrap_or(Size::FIXED),
            Expr::Exists(x) => {
                node_sizes(&x.subquery.subquery)?;
                Size::FIXED
            }
            Expr::InSubquery(x) => {
                self.size(&x.expr)?;
                node_sizes(&x.subquery.subquery)?;
                Size::FIXED
            }
            Expr::ScalarFunction(f) => {
                let growth = lookup(SCALAR_FUNCTIONS, f.func.name()).unwrap_or(Growth::Sum);
                let sized = self.apply(growth, &f.args, f.func.name())?;
                self.fixed(e).unwrap_or(sized)
            }
            Expr::AggregateFunction(AggregateFunction { func, params }) => {
                if let Some(filter) = &params.filter {
                    self.size(filter)?;
                }
                for o in &params.order_by {
                    self.size(&o.expr)?;
                }
                let growth = lookup(AGGREGATE_FUNCTIONS, func.name()).unwrap_or(Growth::Sum);
                let sized = self.apply(growth, &params.args, func.name())?;
                self.fixed(e).unwrap_or(sized)
            }
            Expr::WindowFunction(w) => {
                for p in &w.params.partition_by {
                    self.size(p)?;
                }
                for o in &w.params.order_by {
                    self.size(&o.expr)?;
                }
                let growth = window_growth(w).unwrap_or(Growth::Sum);
                let sized = self.apply(growth, &w.params.args, w.fun.name())?;
                self.fixed(e).unwrap_or(sized)
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let both = self.size(left)?.plus(self.size(right)?);
                match op {
                    Operator::StringConcat => both,
                    _ => self.fixed(e).unwrap_or(both),
                }
            }
            Expr::Case(c) => {
                if let Some(x) = &c.expr {
                    self.size(x)?;
                }
                let mut out = Size::ZERO;
                for (when, then) in &c.when_then_expr {
                    self.size(when)?;
                    out = out.max(self.size(then)?);
                }
                if let Some(x) = &c.else_expr {
                    out = out.max(self.size(x)?);
                }
                out
            }
            Expr::Cast(c) => {
                let inner = self.size(&c.expr)?;
                cast_size(inner, &c.expr, c.field.data_type(), self.schema)
            }
            Expr::TryCast(c) => {
                let inner = self.size(&c.expr)?;
                cast_size(inner, &c.expr, c.field.data_type(), self.schema)
            }
            other => {
                // Predicates and arithmetic: their operands are sized (and
                // counted) for what they build; the value itself is small.
                let mut children = Size::ZERO;
                for child in other_children(other) {
                    children = children.max(self.size(child)?);
                }
                self.fixed(e).unwrap_or(children)
            }
        };
        Ok(size)
    }

    fn apply(&mut self, growth: Growth, args: &[Expr], name: &str) -> Result<Size, QueryRefusal> {
        Ok(match growth {
            Growth::Fixed => {
                self.sum(args)?;
                Size::FIXED
            }
            Growth::Largest => self.largest(args)?,
            Growth::Sum => self.sum(args)?,
            Growth::Times { arg, n } => {
                let mut sized = Size::FIXED;
                for (i, a) in args.iter().enumerate() {
                    let s = self.size(a)?;
                    if i == arg {
                        sized = s;
                    }
                }
                sized.times(n)
            }
            Growth::Separated => {
                let all = self.sum(args)?;
                let separator = match args.first() {
                    Some(a) => self.size_of(a)?,
                    None => Size::FIXED,
                };
                all.plus(separator.times(args.len() as u64))
            }
            Growth::Replace => {
                let (Some(from), Some(to)) = (string_literal(args.get(1)), string_literal(args.get(2))) else {
                    return Err(too_large(format!(
                        "{name}() takes its search and replacement strings as literals (a computed replacement could repeat a value any number of times)"
                    )));
                };
                // An empty search string inserts the replacement between every two characters.
                let factor = if from == 0 { to + 1 } else { to.div_ceil(from).max(1) };
                let subject = match args.first() {
                    Some(a) => self.size(a)?,
                    None => Size::FIXED,
                };
                subject.times(factor)
            }
            Growth::Collects => {
                self.sum(args)?;
                Size::INPUT
            }
        })
    }
}

/// A column passed on as it is computes nothing new.
fn passes_on(e: &Expr) -> bool {
    match e {
        Expr::Alias(a) => passes_on(&a.expr),
        Expr::Column(_) | Expr::OuterReferenceColumn(..) | Expr::Literal(..) => true,
        _ => false,
    }
}

fn other_children(e: &Expr) -> Vec<&Expr> {
    use datafusion::common::tree_node::TreeNode;
    let mut out = Vec::new();
    let _ = e.apply_children(|c| {
        out.push(c);
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    out
}

fn cast_size(inner: Size, expr: &Expr, to: &DataType, schema: &DFSchema) -> Size {
    if fixed_width(to) {
        return Size::FIXED;
    }
    match expr.get_type(schema) {
        // A number or date as text.
        Ok(from) if fixed_width(&from) => Size::FIXED,
        // Text to text keeps its bytes; a list or struct as text quotes
        // and separates its parts.
        Ok(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => inner,
        _ => inner.times(3),
    }
}
