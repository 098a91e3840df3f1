//! Dataset descriptors: what a provider says about a dataset on the ledger.
//! The data itself never leaves the provider's node.

use crate::commitment::Commitment;
use crate::schema::TableShape;
use crate::{Error, Result};
use borsh::{BorshDeserialize, BorshSerialize};
use liutong_core::{sha256_parts, CreditCode};
use serde::{Deserialize, Serialize};

pub const MAX_NAME: usize = 64;
pub const MAX_TITLE: usize = 200;
pub const MAX_DESCRIPTION: usize = 4000;
pub const MAX_TAGS: usize = 16;
pub const MAX_TAG: usize = 32;
pub const MAX_MEDIA_TYPE: usize = 127;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[borsh(use_discriminant = true)]
pub enum DatasetKind {
    Table = 0,
    File = 1,
    Document = 2,
}

impl DatasetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::Table => "table",
            DatasetKind::File => "file",
            DatasetKind::Document => "document",
        }
    }
}

impl std::str::FromStr for DatasetKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<DatasetKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "table" => Ok(DatasetKind::Table),
            "file" => Ok(DatasetKind::File),
            "document" => Ok(DatasetKind::Document),
            other => Err(Error::BadDescriptor(format!(
                "unknown dataset kind {other:?}: choose table, file or document"
            ))),
        }
    }
}

/// A dataset's id: the first 16 bytes of SHA-256("liutong/dataset/v1\0" ‖
/// provider credit code ‖ 0x00 ‖ name), as 32 hex digits. A provider's names
/// are unique, so ids are, and anyone can recompute one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub struct DatasetId(pub [u8; 16]);

impl DatasetId {
    pub fn of(provider: &CreditCode, name: &str) -> DatasetId {
        let d = sha256_parts(&[
            b"liutong/dataset/v1\0",
            provider.as_str().as_bytes(),
            &[0],
            name.as_bytes(),
        ]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&d.as_bytes()[..16]);
        DatasetId(id)
    }
}

impl std::fmt::Display for DatasetId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&hex::encode(self.0))
    }
}

impl std::str::FromStr for DatasetId {
    type Err = Error;
    fn from_str(s: &str) -> Result<DatasetId> {
        let bytes = liutong_core::from_hex_array::<16>("dataset id", s.trim())
            .map_err(|e| Error::BadDescriptor(e.to_string()))?;
        Ok(DatasetId(bytes))
    }
}

impl Serialize for DatasetId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DatasetId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a provider declares about one version of a dataset.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Description {
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub kind: DatasetKind,
    pub media_type: String,
    /// Columns and row count; tables only.
    pub table: Option<TableShape>,
    pub commitment: Commitment,
}

impl Description {
    /// Checks every field; tags are normalized first (see [`normalize_tags`]).
    pub fn validate(&self, chunk_size: u32) -> Result<()> {
        text("title", &self.title, MAX_TITLE, true)?;
        text("description", &self.description, MAX_DESCRIPTION, false)?;
        if self.tags.len() > MAX_TAGS {
            return Err(Error::BadDescriptor(format!(
                "{} tags; the limit is {MAX_TAGS}",
                self.tags.len()
            )));
        }
        for t in &self.tags {
            if t.is_empty()
                || t.len() > MAX_TAG
                || t.chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c.is_uppercase())
            {
                return Err(Error::BadDescriptor(format!(
                    "tag {t:?} must be 1-{MAX_TAG} bytes, lower case, without spaces"
                )));
            }
        }
        if normalize_tags(self.tags.clone()) != self.tags {
            return Err(Error::BadDescriptor("tags must be sorted and unique".into()));
        }
        check_media_type(&self.media_type)?;
        match (self.kind, &self.table) {
            (DatasetKind::Table, None) => {
                return Err(Error::BadDescriptor(
                    "a table dataset needs its columns and row count".into(),
                ))
            }
            (DatasetKind::Table, Some(shape)) => {
                shape.to_arrow()?;
            }
            (_, Some(_)) => {
                return Err(Error::BadDescriptor(format!(
                    "a {} dataset has no table shape",
                    self.kind.as_str()
                )))
            }
            (_, None) => {}
        }
        self.commitment.validate(chunk_size)
    }
}

/// Lower-cases, trims, sorts and de-duplicates tags.
pub fn normalize_tags(tags: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = tags
        .into_iter()
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A provider's name for a dataset: 1-64 of `[a-z0-9._-]`, starting with a
/// letter or digit.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if !ok {
        return Err(Error::BadDescriptor(format!(
            "dataset name {name:?} must be 1-{MAX_NAME} characters of a-z 0-9 . _ -, starting with a letter or digit"
        )));
    }
    Ok(())
}

/// `type/subtype`, RFC 6838 restricted names, no parameters.
pub fn check_media_type(m: &str) -> Result<()> {
    let restricted = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match m.split_once('/') {
        Some((t, s)) if m.len() <= MAX_MEDIA_TYPE && restricted(t) && restricted(s) => Ok(()),
        _ => Err(Error::BadDescriptor(format!(
            "media type {m:?} must look like type/subtype (e.g. text/csv)"
        ))),
    }
}

fn text(field: &str, value: &str, max: usize, required: bool) -> Result<()> {
    if required && value.trim().is_empty() {
        return Err(Error::BadDescriptor(format!("{field} must not be empty")));
    }
    if value.len() > max {
        return Err(Error::BadDescriptor(format!(
            "{field} is {} bytes; the limit is {max}",
            value.len()
        )));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::BadDescriptor(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_parse() {
        let p = CreditCode::parse("91350100M000100Y43").expect("valid code");
        let a = DatasetId::of(&p, "manifests");
        assert_eq!(a, DatasetId::of(&p, "manifests"));
        assert_ne!(a, DatasetId::of(&p, "manifests2"));
        assert_eq!(a.to_string().len(), 32);
        assert_eq!(a.to_string().parse::<DatasetId>().expect("parses"), a);
        assert!("xyz".parse::<DatasetId>().is_err());
    }

    #[test]
    fn names_tags_and_media_types() {
        for good in ["a", "bills-of-lading.2026", "0x"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "A", "a b", &"x".repeat(65), "漢字"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            normalize_tags(vec![" Port ".into(), "port".into(), "b".into(), "".into()]),
            ["b", "port"]
        );
        assert!(check_media_type("text/csv").is_ok());
        assert!(check_media_type("application/vnd.apache.parquet").is_ok());
        for bad in ["csv", "text/", "/csv", "text/csv; charset=utf-8", "te xt/csv"] {
            assert!(check_media_type(bad).is_err(), "{bad}");
        }
    }
}
