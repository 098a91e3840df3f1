//! Usage terms: what an offer allows at most and what a grant allows, their
//! checks, and the evaluation of one use.

use crate::filter::check_row_filter;
use crate::{Error, Result};
use arrow::datatypes::{DataType, Field, Schema};
use borsh::{BorshDeserialize, BorshSerialize};
use liutong_core::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The purposes a consortium starts with (its genesis may list others).
pub const DEFAULT_PURPOSES: [&str; 8] = [
    "credit-assessment",
    "trade-finance",
    "risk-control",
    "logistics-planning",
    "customs-clearance",
    "audit",
    "regulatory-reporting",
    "research",
];

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[borsh(use_discriminant = true)]
pub enum Action {
    /// Receive the file, encrypted, from the provider's node.
    Download = 0,
    /// Run SQL on the provider's node and receive only the permitted result.
    Query = 1,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Download => "download",
            Action::Query => "query",
        }
    }
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[borsh(use_discriminant = true)]
pub enum DateUnit {
    Day = 0,
    Month = 1,
    Year = 2,
}

/// How a column's values are disguised before any other operator sees them.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Mask {
    /// Every value becomes null.
    Redact,
    /// Every value becomes hex(SHA-256(per-grant salt ‖ value)): joinable within a grant, not across.
    Hash,
    /// Strings keep their first `keep` characters.
    Truncate { keep: u32 },
    /// Dates and timestamps are cut to the start of their day, month or year.
    TruncateDate { unit: DateUnit },
    /// Numbers become the lower bound of their `width`-wide bucket.
    Generalize { width: u64 },
}

impl Mask {
    /// How much a mask hides, for "never wider" comparisons: redact hides
    /// all, a hash hides values but keeps equality, the others keep some.
    fn strength(&self) -> (u8, u64) {
        match self {
            Mask::Redact => (3, 0),
            Mask::Hash => (2, 0),
            // Coarser is stronger: fewer characters kept, longer date units, wider buckets.
            Mask::Truncate { keep } => (1, u64::from(u32::MAX - keep)),
            Mask::TruncateDate { unit } => (1, *unit as u64),
            Mask::Generalize { width } => (1, *width),
        }
    }

    /// True when `self` hides at least what `other` hides, also when a
    /// holder sees the column under both: buckets of a multiple of the
    /// other's width (a coarser width that is not a multiple would cut the
    /// other's buckets, and the two together would show finer ones), fewer
    /// characters kept (prefixes nest), a longer date unit (units nest).
    fn at_least(&self, other: &Mask) -> bool {
        match (self, other) {
            (Mask::Generalize { width: a }, Mask::Generalize { width: b }) => *b > 0 && a % b == 0,
            _ => {
                let (a, b) = (self.strength(), other.strength());
                match (a.0, b.0) {
                    (1, 1) => std::mem::discriminant(self) == std::mem::discriminant(other) && a.1 >= b.1,
                    _ => a.0 >= b.0,
                }
            }
        }
    }

    /// True when what one holder may see under `self` and under `other`
    /// (two offers on one dataset) together is no finer than under the
    /// finer of the two: their buckets nest. Only generalization can fail
    /// this (widths 10 and 15 together show buckets of 5); prefixes and
    /// date units always nest, and other mask pairs hide at least as much
    /// as the weaker one alone.
    fn nests_with(&self, other: &Mask) -> bool {
        match (self, other) {
            (Mask::Generalize { width: a }, Mask::Generalize { width: b }) => a % b == 0 || b % a == 0,
            _ => true,
        }
    }

    /// The type of a column's values once masked.
    pub(crate) fn masked_type(&self, ty: &DataType) -> DataType {
        match self {
            Mask::Hash => DataType::Utf8,
            _ => ty.clone(),
        }
    }

    fn check_type(&self, column: &str, ty: &DataType) -> Result<()> {
        let fits = match self {
            Mask::Redact | Mask::Hash => true,
            Mask::Truncate { keep } => {
                *keep > 0 && matches!(ty, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
            }
            Mask::TruncateDate { .. } => matches!(ty, DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)),
            Mask::Generalize { width } => *width > 0 && ty.is_numeric(),
        };
        if fits {
            Ok(())
        } else {
            Err(Error::BadMask(format!(
                "{self:?} does not apply to column {column:?} of type {ty}"
            )))
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnMask {
    pub column: String,
    pub mask: Mask,
}

/// The terms of an offer (the widest a provider will grant) or of a grant.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    /// An offer lists the purposes it accepts; a grant names exactly one.
    pub purposes: Vec<String>,
    /// Start of validity (ms since the epoch).
    pub not_before: Timestamp,
    /// End of validity; `None`: open-ended (offers only).
    pub not_after: Option<Timestamp>,
    /// Uses allowed in all; `None`: unlimited (offers only).
    pub max_uses: Option<u64>,
    pub actions: Vec<Action>,
    /// Columns a query may see; `None`: all of them.
    pub columns: Option<Vec<String>>,
    /// Rows a query may see: a SQL boolean expression over the columns.
    pub row_filter: Option<String>,
    pub masks: Vec<ColumnMask>,
    /// Only aggregated output, every group of at least this many rows.
    pub min_group_size: Option<u32>,
    /// Most rows one query may return.
    pub row_cap: Option<u64>,
    /// May the holder transfer the grant to another approved party?
    pub transferable: bool,
}

impl Terms {
    /// Checks the terms on their own and against the dataset: `schema` is
    /// the table's (None for files and documents, which allow only downloads).
    pub fn validate(&self, schema: Option<&Schema>, purposes: &[String]) -> Result<()> {
        if self.purposes.is_empty() {
            return Err(Error::BadTerms("at least one purpose is required".into()));
        }
        for p in &self.purposes {
            if !purposes.contains(p) {
                return Err(Error::UnknownPurpose(p.clone()));
            }
        }
        if sorted_unique(&self.purposes).is_none() {
            return Err(Error::BadTerms("purposes must be sorted and unique".into()));
        }
        if self.actions.is_empty() || sorted_unique(&self.actions).is_none() {
            return Err(Error::BadTerms(
                "actions must be one or both of download, query, sorted".into(),
            ));
        }
        if let Some(end) = self.not_after {
            if end <= self.not_before {
                return Err(Error::BadTerms(format!(
                    "the validity window ends ({end}) before it starts ({})",
                    self.not_before
                )));
            }
        }
        if self.max_uses == Some(0) {
            return Err(Error::BadTerms("max uses must be at least 1".into()));
        }
        if self.row_cap == Some(0) {
            return Err(Error::BadTerms("a row cap must be at least 1".into()));
        }
        if matches!(self.min_group_size, Some(k) if k < 2) {
            return Err(Error::BadTerms("a minimum group size must be at least 2".into()));
        }
        let query_only = self.columns.is_some()
            || self.row_filter.is_some()
            || !self.masks.is_empty()
            || self.min_group_size.is_some()
            || self.row_cap.is_some();
        let Some(schema) = schema else {
            if self.actions.contains(&Action::Query) || query_only {
                return Err(Error::BadTerms(
                    "only tables can be queried: a file or document allows download only, without column, row or masking terms".into(),
                ));
            }
            return Ok(());
        };
        if query_only && self.actions.contains(&Action::Download) {
            return Err(Error::BadTerms(
                "column, row, masking, aggregation and row-cap terms apply to queries: a download hands over the whole file"
                    .into(),
            ));
        }
        let column_type = |c: &str| {
            schema
                .field_with_name(c)
                .map(|f| f.data_type().clone())
                .map_err(|_| Error::UnknownColumn(c.to_string()))
        };
        if let Some(cols) = &self.columns {
            if cols.is_empty() || sorted_unique(cols).is_none() {
                return Err(Error::BadTerms(
                    "allowed columns must be a non-empty, sorted, unique list".into(),
                ));
            }
            for c in cols {
                column_type(c)?;
            }
        }
        let mut masked = BTreeSet::new();
        for m in &self.masks {
            let ty = column_type(&m.column)?;
            m.mask.check_type(&m.column, &ty)?;
            if !masked.insert(m.column.as_str()) {
                return Err(Error::BadMask(format!("column {:?} has two masks", m.column)));
            }
            if let Some(cols) = &self.columns {
                if !cols.contains(&m.column) {
                    return Err(Error::BadMask(format!(
                        "column {:?} is masked but not among the allowed columns",
                        m.column
                    )));
                }
            }
        }
        if let Some(f) = &self.row_filter {
            check_row_filter(f, schema)?;
        }
        Ok(())
    }

    /// Checks that these (a grant's) terms are equal to or narrower than
    /// `offer`'s in every respect; the error names the first term that is not.
    pub fn within(&self, offer: &Terms) -> Result<()> {
        let wider = |what: String| Err(Error::WiderThanOffer(what));
        if self.purposes.len() != 1 {
            return Err(Error::BadTerms("a grant names exactly one purpose".into()));
        }
        if !offer.purposes.contains(&self.purposes[0]) {
            return wider(format!("the offer does not accept purpose {:?}", self.purposes[0]));
        }
        if self.not_before < offer.not_before {
            return wider("the grant starts before the offer".into());
        }
        match (self.not_after, offer.not_after) {
            (None, _) => return Err(Error::BadTerms("a grant must end".into())),
            (Some(g), Some(o)) if g > o => return wider("the grant ends after the offer".into()),
            _ => {}
        }
        match (self.max_uses, offer.max_uses) {
            (None, _) => return Err(Error::BadTerms("a grant must limit its uses".into())),
            (Some(g), Some(o)) if g > o => return wider(format!("{g} uses where the offer allows {o}")),
            _ => {}
        }
        if let Some(a) = self.actions.iter().find(|a| !offer.actions.contains(a)) {
            return wider(format!("the offer does not allow {}", a.as_str()));
        }
        if let Some(offered) = &offer.columns {
            match &self.columns {
                None => return wider("the grant allows every column".into()),
                Some(cols) => {
                    if let Some(c) = cols.iter().find(|c| !offered.contains(c)) {
                        return wider(format!("column {c:?} is outside the offer"));
                    }
                }
            }
        }
        // No row filter rule: the offer's filter always applies (a grant's
        // filters are the offer's and its own, joined as expressions, see
        // `RowFilters::of_grant`), so a grant's own filter can only narrow.
        for om in &offer.masks {
            match self.masks.iter().find(|m| m.column == om.column) {
                Some(m) if m.mask.at_least(&om.mask) => {}
                _ => {
                    return wider(match om.mask {
                        Mask::Generalize { width } => format!(
                            "column {:?} must be masked at least as {:?} (buckets of a multiple of {width})",
                            om.column, om.mask
                        ),
                        _ => format!("column {:?} must be masked at least as {:?}", om.column, om.mask),
                    })
                }
            }
        }
        if let Some(k) = offer.min_group_size {
            if self.min_group_size.is_none_or(|g| g < k) {
                return wider(format!("the offer requires groups of at least {k}"));
            }
        }
        if let Some(cap) = offer.row_cap {
            if self.row_cap.is_none_or(|g| g > cap) {
                return wider(format!("the offer caps results at {cap} rows"));
            }
        }
        if self.transferable && !offer.transferable {
            return wider("the offer does not allow transfers".into());
        }
        Ok(())
    }
}

impl Terms {
    /// Checks that this offer's masks nest with `other`'s, another offer
    /// on the same dataset: a consumer may hold grants under both, and the
    /// two views together must show no finer buckets than one of them
    /// allows. The error names the column.
    pub fn nests_with(&self, other: &Terms) -> Result<()> {
        for m in &self.masks {
            if let Some(o) = other.masks.iter().find(|o| o.column == m.column) {
                if !m.mask.nests_with(&o.mask) {
                    return Err(Error::BadMask(format!(
                        "column {:?}: {:?} does not nest with {:?} in another offer on this dataset (one width must be a multiple of the other, or the two views together show finer buckets)",
                        m.column, m.mask, o.mask
                    )));
                }
            }
        }
        Ok(())
    }
}

/// What a query runs under: the query-time part of a grant's terms (or an
/// offer's), with its row filters by author. A private use's commitment
/// binds these (their digest), since the provider cannot look the grant up.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryTerms {
    /// Columns a query may see; `None`: all of them.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    #[serde(default)]
    pub filters: crate::RowFilters,
    #[serde(default)]
    pub masks: Vec<ColumnMask>,
    #[serde(default)]
    pub min_group_size: Option<u32>,
    #[serde(default)]
    pub row_cap: Option<u64>,
}

impl QueryTerms {
    /// `terms`' query terms with `filters` (the grant's, by author).
    pub fn of(terms: &Terms, filters: crate::RowFilters) -> QueryTerms {
        QueryTerms {
            columns: terms.columns.clone(),
            filters,
            masks: terms.masks.clone(),
            min_group_size: terms.min_group_size,
            row_cap: terms.row_cap,
        }
    }
}

/// The columns `columns` (`None`: all) lets a query see, in table order.
pub(crate) fn allowed_fields(schema: &Schema, columns: Option<&[String]>) -> Vec<std::sync::Arc<Field>> {
    schema
        .fields()
        .iter()
        .filter(|f| columns.is_none_or(|c| c.contains(f.name())))
        .cloned()
        .collect()
}

/// The table as a consumer sees it: the allowed columns, in table order,
/// masked ones at their masked type (nullable: a redacted value is null).
pub(crate) fn visible_schema(schema: &Schema, columns: Option<&[String]>, masks: &[ColumnMask]) -> Schema {
    Schema::new(
        allowed_fields(schema, columns)
            .iter()
            .map(|f| match masks.iter().find(|m| &m.column == f.name()) {
                Some(m) => Field::new(f.name(), m.mask.masked_type(f.data_type()), true),
                None => f.as_ref().clone(),
            })
            .collect::<Vec<Field>>(),
    )
}

fn sorted_unique<T: Ord>(items: &[T]) -> Option<()> {
    items.windows(2).all(|w| w[0] < w[1]).then_some(())
}

/// One use a consumer asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Use {
    pub action: Action,
}

/// Why a use is refused, with a stable code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Denial {
    pub code: &'static str,
    pub message: String,
}

/// Whether `terms` permit `request` at `now` after `uses_so_far` uses. The
/// grant's standing (revoked, holder) is the ledger's to check; this is
/// about the terms alone.
pub fn evaluate(terms: &Terms, request: &Use, now: Timestamp, uses_so_far: u64) -> std::result::Result<(), Denial> {
    let deny = |code, message: String| Err(Denial { code, message });
    if !terms.actions.contains(&request.action) {
        return deny(
            "use.action_not_allowed",
            format!("the grant does not allow {}", request.action.as_str()),
        );
    }
    if now < terms.not_before {
        return deny(
            "use.not_yet_valid",
            format!("the grant is valid from {}", terms.not_before),
        );
    }
    if let Some(end) = terms.not_after {
        if now >= end {
            return deny("use.expired", format!("the grant expired at {end}"));
        }
    }
    if let Some(max) = terms.max_uses {
        if uses_so_far >= max {
            return deny("use.exhausted", format!("all {max} uses of the grant are spent"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;

    /// One change to a test's terms.
    type Change = Box<dyn Fn(&mut Terms)>;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("port", DataType::Utf8, false),
            Field::new("teu", DataType::Int64, true),
            Field::new("departed", DataType::Date32, true),
            Field::new("shipper", DataType::Utf8, true),
        ])
    }

    fn vocab() -> Vec<String> {
        DEFAULT_PURPOSES.iter().map(|p| p.to_string()).collect()
    }

    fn offer() -> Terms {
        Terms {
            purposes: vec!["logistics-planning".into(), "trade-finance".into()],
            not_before: 1_000,
            not_after: Some(100_000),
            max_uses: Some(100),
            actions: vec![Action::Query],
            columns: Some(vec!["departed".into(), "port".into(), "shipper".into(), "teu".into()]),
            row_filter: Some("teu > 0".into()),
            masks: vec![ColumnMask {
                column: "shipper".into(),
                mask: Mask::Hash,
            }],
            min_group_size: None,
            row_cap: Some(10_000),
            transferable: false,
        }
    }

    fn grant() -> Terms {
        Terms {
            purposes: vec!["trade-finance".into()],
            not_before: 2_000,
            not_after: Some(50_000),
            max_uses: Some(10),
            columns: Some(vec!["port".into(), "shipper".into(), "teu".into()]),
            row_filter: Some("(teu > 0) AND port = 'Yangshan'".into()),
            masks: vec![ColumnMask {
                column: "shipper".into(),
                mask: Mask::Redact,
            }],
            row_cap: Some(500),
            ..offer()
        }
    }

    #[test]
    fn a_narrower_grant_is_within_its_offer() {
        assert_eq!(offer().validate(Some(&schema()), &vocab()), Ok(()));
        assert_eq!(grant().validate(Some(&schema()), &vocab()), Ok(()));
        assert_eq!(grant().within(&offer()), Ok(()));
        assert_eq!(
            offer().within(&offer()).map_err(|e| e.code()),
            Err("policy.bad_terms"),
            "two purposes"
        );
    }

    #[test]
    fn every_wider_term_is_named() {
        let cases: Vec<(&str, Change)> = vec![
            ("purpose", Box::new(|t| t.purposes = vec!["research".into()])),
            ("starts before", Box::new(|t| t.not_before = 10)),
            ("ends after", Box::new(|t| t.not_after = Some(200_000))),
            ("uses", Box::new(|t| t.max_uses = Some(1000))),
            (
                "download",
                Box::new(|t| t.actions = vec![Action::Download, Action::Query]),
            ),
            ("every column", Box::new(|t| t.columns = None)),
            ("masked", Box::new(|t| t.masks = vec![])),
            ("masked", Box::new(|t| t.masks[0].mask = Mask::Truncate { keep: 3 })),
            ("caps", Box::new(|t| t.row_cap = None)),
            ("transfers", Box::new(|t| t.transferable = true)),
        ];
        for (word, change) in cases {
            let mut g = grant();
            change(&mut g);
            let e = g.within(&offer()).expect_err(word);
            assert_eq!(e.code(), "policy.wider_than_offer", "{word}");
            assert!(e.to_string().contains(word), "{word}: {e}");
        }
    }

    /// A grant's own row filter is no longer compared with the offer's as
    /// text: the offer's always applies, so any filter of the grant's
    /// narrows (`RowFilters::of_grant` decides what it may name).
    #[test]
    fn a_grant_filter_never_widens_the_offer() {
        for f in ["port = 'Yangshan'", "(teu > 0) AND false OR true", "true"] {
            let g = Terms {
                row_filter: Some(f.into()),
                ..grant()
            };
            assert_eq!(g.within(&offer()), Ok(()), "{f}");
        }
    }

    fn generalized(width: u64) -> Vec<ColumnMask> {
        vec![ColumnMask {
            column: "teu".into(),
            mask: Mask::Generalize { width },
        }]
    }

    /// Generalization widths nest: a grant's is a multiple of its offer's,
    /// and two offers' on one dataset divide one another, so whatever
    /// grants one consumer holds, no bucket is finer than an offer allows.
    #[test]
    fn generalization_widths_nest() {
        let offer = Terms {
            masks: generalized(10),
            ..offer()
        };
        for (width, ok) in [(10, true), (20, true), (30, true), (15, false), (5, false), (25, false)] {
            let g = Terms {
                masks: generalized(width),
                ..grant()
            };
            let got = g.within(&offer).map_err(|e| e.code());
            assert_eq!(got.is_ok(), ok, "width {width}: {got:?}");
            if !ok {
                assert_eq!(got, Err("policy.wider_than_offer"));
            }
        }
        let other = |w| Terms {
            masks: generalized(w),
            ..offer.clone()
        };
        assert_eq!(offer.nests_with(&other(10)), Ok(()));
        assert_eq!(offer.nests_with(&other(40)), Ok(()));
        assert_eq!(offer.nests_with(&other(5)), Ok(()));
        assert_eq!(
            offer.nests_with(&other(15)).map_err(|e| e.code()),
            Err("policy.bad_mask")
        );
        assert_eq!(
            other(15).nests_with(&offer).map_err(|e| e.code()),
            Err("policy.bad_mask")
        );
        let unmasked = Terms {
            masks: vec![],
            ..offer.clone()
        };
        assert_eq!(offer.nests_with(&unmasked), Ok(()));
    }

    #[test]
    fn bad_terms_are_refused_with_their_codes() {
        let cases: Vec<(&str, Change)> = vec![
            ("policy.bad_terms", Box::new(|t| t.not_after = Some(t.not_before))),
            ("policy.bad_terms", Box::new(|t| t.max_uses = Some(0))),
            ("policy.bad_terms", Box::new(|t| t.row_cap = Some(0))),
            ("policy.bad_terms", Box::new(|t| t.min_group_size = Some(1))),
            ("policy.bad_terms", Box::new(|t| t.actions = vec![])),
            (
                "policy.bad_terms",
                Box::new(|t| t.actions = vec![Action::Download, Action::Query]),
            ),
            (
                "policy.unknown_purpose",
                Box::new(|t| t.purposes = vec!["marketing".into()]),
            ),
            (
                "policy.unknown_column",
                Box::new(|t| t.columns = Some(vec!["nope".into()])),
            ),
            ("policy.unknown_column", Box::new(|t| t.masks[0].column = "nope".into())),
            (
                "policy.bad_mask",
                Box::new(|t| {
                    t.masks[0] = ColumnMask {
                        column: "teu".into(),
                        mask: Mask::Truncate { keep: 2 },
                    }
                }),
            ),
            (
                "policy.bad_mask",
                Box::new(|t| {
                    t.masks[0] = ColumnMask {
                        column: "port".into(),
                        mask: Mask::Generalize { width: 10 },
                    }
                }),
            ),
            (
                "policy.bad_mask",
                Box::new(|t| {
                    t.masks[0] = ColumnMask {
                        column: "departed".into(),
                        mask: Mask::Redact,
                    }
                }),
            ),
            (
                "policy.bad_filter",
                Box::new(|t| t.row_filter = Some("nope > 1".into())),
            ),
            (
                "policy.bad_filter",
                Box::new(|t| t.row_filter = Some("teu IN (SELECT 1)".into())),
            ),
        ];
        for (code, change) in cases {
            let mut g = grant();
            change(&mut g);
            assert_eq!(
                g.validate(Some(&schema()), &vocab()).map_err(|e| e.code()),
                Err(code),
                "{g:?}"
            );
        }
        // A file allows downloads only, with no query terms.
        let file = Terms {
            actions: vec![Action::Download],
            columns: None,
            row_filter: None,
            masks: vec![],
            row_cap: None,
            ..grant()
        };
        assert_eq!(file.validate(None, &vocab()), Ok(()));
        let queried = Terms {
            actions: vec![Action::Query],
            ..file.clone()
        };
        assert_eq!(
            queried.validate(None, &vocab()).map_err(|e| e.code()),
            Err("policy.bad_terms")
        );
    }

    #[test]
    fn evaluation_checks_action_window_and_uses() {
        let g = grant();
        let q = Use { action: Action::Query };
        assert_eq!(evaluate(&g, &q, 3_000, 0), Ok(()));
        let code = |r: std::result::Result<(), Denial>| r.map_err(|d| d.code);
        assert_eq!(
            code(evaluate(
                &g,
                &Use {
                    action: Action::Download
                },
                3_000,
                0
            )),
            Err("use.action_not_allowed")
        );
        assert_eq!(code(evaluate(&g, &q, 1_999, 0)), Err("use.not_yet_valid"));
        assert_eq!(code(evaluate(&g, &q, 50_000, 0)), Err("use.expired"));
        assert_eq!(code(evaluate(&g, &q, 3_000, 10)), Err("use.exhausted"));
        assert_eq!(evaluate(&g, &q, 49_999, 9), Ok(()));
    }
}
