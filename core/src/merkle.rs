//! The append-only Merkle log, hashed exactly as RFC 6962 §2.1:
//! leaf hash = SHA-256(0x00 ‖ leaf bytes), node hash = SHA-256(0x01 ‖ left ‖ right),
//! the empty tree's hash = SHA-256(""). Proofs are generated as RFC 6962
//! §2.1.1 (PATH) and §2.1.2 (PROOF) define them and verified with the
//! algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2, so any independent
//! Certificate Transparency verifier agrees with us.

use crate::{sha256, sha256_parts, Digest};

pub fn leaf_hash(leaf: &[u8]) -> Digest {
    sha256_parts(&[&[0x00], leaf])
}

pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    sha256_parts(&[&[0x01], left.as_bytes(), right.as_bytes()])
}

pub fn empty_root() -> Digest {
    sha256(b"")
}

/// Largest power of two strictly below `n` (n ≥ 2).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Where a proof generator reads hashes of complete, aligned subtrees:
/// `complete(level, index)` is the hash of leaves [index·2^level, (index+1)·2^level).
pub trait SubtreeSource {
    type Error;
    fn complete(&self, level: u8, index: u64) -> Result<Digest, Self::Error>;
}

/// MTH(D[start:end]) from stored complete subtrees: O(log n) reads, because
/// only the right edge of a range is ever incomplete.
pub fn range_hash<S: SubtreeSource>(src: &S, start: u64, end: u64) -> Result<Digest, S::Error> {
    let n = end - start;
    if n == 0 {
        return Ok(empty_root());
    }
    if n.is_power_of_two() && start.is_multiple_of(n) {
        return src.complete(n.trailing_zeros() as u8, start / n);
    }
    let k = split_point(n);
    let left = range_hash(src, start, start + k)?;
    let right = range_hash(src, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// RFC 6962 §2.1.1 PATH(m, D[n]) for the leaf `index` in a tree of `size` leaves.
pub fn inclusion_path<S: SubtreeSource>(src: &S, index: u64, size: u64) -> Result<Vec<Digest>, S::Error> {
    assert!(index < size, "inclusion proof for a leaf outside the tree");
    let mut path = Vec::new();
    let (mut start, mut end, mut m) = (0u64, size, index);
    // Walk down from the root, collecting siblings; RFC order is leaf-to-root, so reverse at the end.
    while end - start > 1 {
        let k = split_point(end - start);
        if m < k {
            path.push(range_hash(src, start + k, end)?);
            end = start + k;
        } else {
            path.push(range_hash(src, start, start + k)?);
            start += k;
            m -= k;
        }
    }
    path.reverse();
    Ok(path)
}

/// RFC 6962 §2.1.2 PROOF(m, D[n]): consistency of the first `old_size` leaves with `new_size`.
pub fn consistency_path<S: SubtreeSource>(src: &S, old_size: u64, new_size: u64) -> Result<Vec<Digest>, S::Error> {
    assert!(old_size <= new_size, "consistency proof to a smaller tree");
    if old_size == 0 || old_size == new_size {
        return Ok(Vec::new());
    }
    let mut path = Vec::new();
    let (mut start, mut end, mut m, mut whole) = (0u64, new_size, old_size, true);
    loop {
        let n = end - start;
        if m == n {
            if !whole {
                path.push(range_hash(src, start, end)?);
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            path.push(range_hash(src, start + k, end)?);
            end = start + k;
        } else {
            path.push(range_hash(src, start, start + k)?);
            start += k;
            m -= k;
            whole = false;
        }
    }
    path.reverse();
    Ok(path)
}

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("proof has {got} hashes, expected {expected}")]
    WrongLength { got: usize, expected: usize },
    #[error("recomputed root {computed} does not match {expected}")]
    RootMismatch { computed: Digest, expected: Digest },
    #[error("old tree size {old} is larger than new tree size {new}")]
    SizesOutOfOrder { old: u64, new: u64 },
}

/// RFC 9162 §2.1.3.2: verifies that `leaf_hash` is leaf `index` of the tree of `size` leaves with `root`.
pub fn verify_inclusion(
    leaf_hash: &Digest,
    index: u64,
    size: u64,
    path: &[Digest],
    root: &Digest,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in path {
        if s_n == 0 {
            return Err(ProofError::WrongLength {
                got: path.len(),
                expected: inclusion_len(index, size),
            });
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength {
            got: path.len(),
            expected: inclusion_len(index, size),
        });
    }
    if &r != root {
        return Err(ProofError::RootMismatch {
            computed: r,
            expected: *root,
        });
    }
    Ok(())
}

fn inclusion_len(index: u64, size: u64) -> usize {
    let (mut start, mut end, mut m, mut len) = (0u64, size, index, 0);
    while end - start > 1 {
        let k = split_point(end - start);
        if m < k {
            end = start + k;
        } else {
            start += k;
            m -= k;
        }
        len += 1;
    }
    len
}

/// RFC 9162 §2.1.4.2: verifies that the tree (`old_size`, `old_root`) is a prefix of (`new_size`, `new_root`).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    path: &[Digest],
    old_root: &Digest,
    new_root: &Digest,
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == new_size {
        if !path.is_empty() {
            return Err(ProofError::WrongLength {
                got: path.len(),
                expected: 0,
            });
        }
        return check_root(old_root, new_root);
    }
    if old_size == 0 {
        if !path.is_empty() {
            return Err(ProofError::WrongLength {
                got: path.len(),
                expected: 0,
            });
        }
        // Every tree extends the empty one, but only the empty tree has
        // size 0: an old root that is not MTH({}) is no root of that size.
        return check_root(&empty_root(), old_root);
    }
    let mut path: Vec<Digest> = path.to_vec();
    if old_size.is_power_of_two() {
        path.insert(0, *old_root);
    }
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength { got: 0, expected: 1 });
    };
    let (mut f_n, mut s_n) = (old_size - 1, new_size - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return Err(ProofError::WrongLength {
                got: path.len(),
                expected: path.len() - 1,
            });
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength {
            got: path.len(),
            expected: path.len() + 1,
        });
    }
    check_root(&fr, old_root)?;
    check_root(&sr, new_root)
}

fn check_root(computed: &Digest, expected: &Digest) -> Result<(), ProofError> {
    if computed != expected {
        return Err(ProofError::RootMismatch {
            computed: *computed,
            expected: *expected,
        });
    }
    Ok(())
}

/// The log's right edge kept in memory: the roots of the maximal complete
/// subtrees of the current tree (at most log2 n of them). Appending a leaf
/// yields every newly completed subtree, which the store persists so that
/// proofs are O(log n) reads.
#[derive(Clone, Debug, Default)]
pub struct Frontier {
    size: u64,
    /// (level, hash), levels strictly decreasing from the left.
    peaks: Vec<(u8, Digest)>,
}

impl Frontier {
    /// Rebuilds the frontier of a tree of `size` leaves from stored subtrees.
    pub fn load<S: SubtreeSource>(src: &S, size: u64) -> Result<Self, S::Error> {
        let mut peaks = Vec::new();
        let mut start = 0u64;
        for level in (0..64u8).rev() {
            if size & (1u64 << level) != 0 {
                peaks.push((level, src.complete(level, start >> level)?));
                start += 1u64 << level;
            }
        }
        Ok(Frontier { size, peaks })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; returns the completed subtrees as (level, index, hash), the leaf first.
    pub fn push(&mut self, leaf: Digest) -> Vec<(u8, u64, Digest)> {
        let index = self.size;
        let mut done = vec![(0u8, index, leaf)];
        let mut cur = (0u8, leaf);
        while let Some(&(level, left)) = self.peaks.last() {
            if level != cur.0 {
                break;
            }
            self.peaks.pop();
            let parent = node_hash(&left, &cur.1);
            cur = (level + 1, parent);
            done.push((cur.0, index >> cur.0, parent));
        }
        self.peaks.push(cur);
        self.size += 1;
        done
    }

    /// MTH of the whole tree: peaks folded right to left.
    pub fn root(&self) -> Digest {
        let mut iter = self.peaks.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return empty_root();
        };
        for (_, left) in iter {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// Naive RFC 6962 MTH, straight from the definition.
    fn mth(leaves: &[Digest]) -> Digest {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    struct Mem(HashMap<(u8, u64), Digest>);
    impl SubtreeSource for Mem {
        type Error = ();
        fn complete(&self, level: u8, index: u64) -> Result<Digest, ()> {
            self.0.get(&(level, index)).copied().ok_or(())
        }
    }

    fn build(n: usize) -> (Vec<Digest>, Mem, Frontier) {
        let leaves: Vec<Digest> = (0..n).map(|i| leaf_hash(format!("leaf {i}").as_bytes())).collect();
        let mut f = Frontier::default();
        let mut m = Mem(HashMap::new());
        for l in &leaves {
            for (lv, i, h) in f.push(*l) {
                m.0.insert((lv, i), h);
            }
        }
        (leaves, m, f)
    }

    #[test]
    fn empty_tree_hash_is_sha256_of_nothing() {
        assert_eq!(
            empty_root().to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn known_root_of_rfc6962_reference_leaves() {
        // The eight leaves used by Certificate Transparency's reference test suite
        // (certificate-transparency-go merkle tests); root of all eight below.
        let inputs: [&[u8]; 8] = [
            b"",
            &[0x00],
            &[0x10],
            &[0x20, 0x21],
            &[0x30, 0x31],
            &[0x40, 0x41, 0x42, 0x43],
            &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            &[
                0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,
            ],
        ];
        let mut f = Frontier::default();
        for i in inputs {
            f.push(leaf_hash(i));
        }
        assert_eq!(
            f.root().to_string(),
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed), ..ProptestConfig::default() })]

        #[test]
        fn frontier_and_stored_ranges_equal_naive_mth(n in 1usize..300) {
            let (leaves, m, f) = build(n);
            prop_assert_eq!(f.root(), mth(&leaves));
            prop_assert_eq!(range_hash(&m, 0, n as u64).expect("stored"), mth(&leaves));
            let reloaded = Frontier::load(&m, n as u64).expect("stored");
            prop_assert_eq!(reloaded.root(), f.root());
        }

        #[test]
        fn inclusion_proofs_verify_and_reject_tampering(n in 1usize..300, pick in any::<u64>(), flip in any::<u8>()) {
            let (leaves, m, _) = build(n);
            let size = n as u64;
            let index = pick % size;
            let root = mth(&leaves);
            let path = inclusion_path(&m, index, size).expect("stored");
            prop_assert_eq!(path.len(), inclusion_len(index, size));
            prop_assert!(verify_inclusion(&leaves[index as usize], index, size, &path, &root).is_ok());
            if !path.is_empty() {
                let mut bad = path.clone();
                let j = flip as usize % bad.len();
                bad[j].0[0] ^= 1;
                prop_assert!(verify_inclusion(&leaves[index as usize], index, size, &bad, &root).is_err());
                prop_assert!(verify_inclusion(&leaves[index as usize], index, size, &path[1..], &root).is_err());
            }
            if size > 1 {
                let other = (index + 1) % size;
                prop_assert!(verify_inclusion(&leaves[index as usize], other, size, &path, &root).is_err());
            }
        }

        #[test]
        fn consistency_proofs_verify_and_reject_tampering(n in 1usize..300, pick in any::<u64>()) {
            let (leaves, m, _) = build(n);
            let new_size = n as u64;
            let old_size = pick % (new_size + 1);
            let old_root = mth(&leaves[..old_size as usize]);
            let new_root = mth(&leaves);
            let path = consistency_path(&m, old_size, new_size).expect("stored");
            prop_assert!(verify_consistency(old_size, new_size, &path, &old_root, &new_root).is_ok());
            // Whatever the sizes, a wrong old or new root is refused (the
            // empty tree's root included: size 0 has exactly one root).
            let mut wrong_old = old_root;
            wrong_old.0[3] ^= 0x80;
            prop_assert!(verify_consistency(old_size, new_size, &path, &wrong_old, &new_root).is_err());
            // (From size 0 the proof is empty and says nothing of the new tree.)
            if old_size > 0 {
                let mut wrong_new = new_root;
                wrong_new.0[5] ^= 0x01;
                prop_assert!(verify_consistency(old_size, new_size, &path, &old_root, &wrong_new).is_err());
            }
            if old_size > 0 && old_size < new_size {
                let mut bad = path.clone();
                bad[0].0[0] ^= 1;
                prop_assert!(verify_consistency(old_size, new_size, &bad, &old_root, &new_root).is_err());
            }
        }
    }
}
