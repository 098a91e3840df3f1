//! The unified social credit code (统一社会信用代码, GB 32100-2015): the
//! real-name id of every organization in China, and so a party's id here.

use crate::{Error, Result};

/// The 31 characters of GB 32100-2015 (no I, O, S, V, Z), in value order.
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weights of positions 1..=17 (3^(i-1) mod 31).
const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// A validated 18-character unified social credit code.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, borsh::BorshSerialize, serde::Serialize)]
#[serde(transparent)]
pub struct CreditCode(String);

impl CreditCode {
    /// Validates length, alphabet, the 6-digit administrative division code
    /// (positions 3–8) and the check character (position 18).
    pub fn parse(text: &str) -> Result<Self> {
        let code = text.trim().to_ascii_uppercase();
        let bad = |reason: &str| Error::BadCreditCode {
            code: text.to_string(),
            reason: reason.to_string(),
        };
        if code.len() != 18 || !code.is_ascii() {
            return Err(bad("must be 18 characters"));
        }
        let bytes = code.as_bytes();
        let mut values = [0u32; 18];
        for (i, b) in bytes.iter().enumerate() {
            values[i] = ALPHABET.iter().position(|a| a == b).ok_or_else(|| {
                bad(&format!(
                    "character {:?} at position {} is not allowed",
                    *b as char,
                    i + 1
                ))
            })? as u32;
        }
        if !bytes[2..8].iter().all(u8::is_ascii_digit) {
            return Err(bad("positions 3-8 must be the administrative division code (digits)"));
        }
        let sum: u32 = values[..17].iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
        let expected = (31 - sum % 31) % 31;
        if values[17] != expected {
            return Err(bad(&format!(
                "check character is {:?}, expected {:?}",
                bytes[17] as char, ALPHABET[expected as usize] as char
            )));
        }
        Ok(CreditCode(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Completes a 17-character prefix with its check character (for tests and demos).
    pub fn with_check_character(prefix17: &str) -> Result<Self> {
        let mut sum = 0u32;
        for (i, b) in prefix17.bytes().enumerate().take(17) {
            let v = ALPHABET.iter().position(|a| *a == b).unwrap_or(0) as u32;
            sum += v * WEIGHTS[i];
        }
        let check = ALPHABET[((31 - sum % 31) % 31) as usize] as char;
        Self::parse(&format!("{prefix17}{check}"))
    }
}

impl std::fmt::Display for CreditCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.0)
    }
}

impl std::str::FromStr for CreditCode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// Decoding validates too: a stored or signed credit code is always a valid one.
impl borsh::BorshDeserialize for CreditCode {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let text = String::deserialize_reader(reader)?;
        CreditCode::parse(&text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
    }
}

impl<'de> serde::Deserialize<'de> for CreditCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        CreditCode::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_codes_validate() {
        // Codes printed on public business licences.
        for code in ["91350100M000100Y43", "91110000600037341L", "91440300708461136T"] {
            CreditCode::parse(code).unwrap_or_else(|e| panic!("{code}: {e}"));
        }
    }

    #[test]
    fn wrong_check_character_and_alphabet_are_refused() {
        let e = CreditCode::parse("91350100M000100Y44").expect_err("must be refused");
        assert_eq!(e.code(), "party.bad_credit_code");
        assert!(CreditCode::parse("91350100M000100I43").is_err());
        assert!(CreditCode::parse("9135").is_err());
        assert!(CreditCode::parse("91ABCDEFM000100Y43").is_err());
    }

    #[test]
    fn completion_produces_valid_codes() {
        let c = CreditCode::with_check_character("91310000MA1FL0000").expect("valid");
        assert_eq!(c.as_str().len(), 18);
    }
}
