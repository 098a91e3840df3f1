//! Search terms: how titles, descriptions and tags become index tokens, and
//! how a query is split the same way.

use std::collections::BTreeSet;

/// Longest token kept (longer words are cut, so a key stays short).
pub const MAX_TOKEN: usize = 48;

/// The words of `text`, lower-cased: runs of letters and digits; a run of
/// CJK ideographs or kana gives one token per character (Chinese and Japanese
/// do not separate words with spaces, so "物流单据" is found by "物流").
pub fn tokens(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut BTreeSet<String>| {
        if !word.is_empty() {
            let cut: String = word
                .chars()
                .scan(0usize, |len, c| {
                    *len += c.len_utf8();
                    (*len <= MAX_TOKEN).then_some(c)
                })
                .collect();
            out.insert(cut);
            word.clear();
        }
    };
    for c in text.chars() {
        if is_cjk(c) {
            flush(&mut word, &mut out);
            out.insert(c.to_string());
        } else if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else {
            flush(&mut word, &mut out);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF   // hiragana, katakana
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK unified ideographs
        | 0xF900..=0xFAFF // compatibility ideographs
        | 0x20000..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_ideographs() {
        let t: Vec<String> = tokens("Bills of Lading — Ningbo-Zhoushan 2026, 物流单据")
            .into_iter()
            .collect();
        assert_eq!(
            t,
            ["2026", "bills", "lading", "ningbo", "of", "zhoushan", "单", "据", "流", "物"]
        );
        assert!(tokens("  ,.; ").is_empty());
        let long = "a".repeat(100);
        assert_eq!(tokens(&long).into_iter().next().map(|s| s.len()), Some(MAX_TOKEN));
    }
}
