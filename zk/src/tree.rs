//! The grant tree: a Poseidon Merkle tree of depth [`DEPTH`] over grant
//! commitments, node = Poseidon(left, right), an empty leaf is 0. The tree
//! is sparse: only nodes on the paths of set leaves are stored, anything
//! missing is the empty subtree of its level. Revoking or expiring a grant
//! sets its leaf back to 0.

use crate::field::FieldBytes;
use crate::poseidon::hash;
use crate::{Error, Fr, Result};
use ark_ff::Zero;
use std::sync::OnceLock;

/// Levels between a leaf and the root: room for 2^20 (about a million) grants.
pub const DEPTH: usize = 20;
/// Leaves the tree holds.
pub const CAPACITY: u64 = 1 << DEPTH;

/// The root of an empty subtree of height `level` (0: an empty leaf).
pub fn empty(level: usize) -> Fr {
    static EMPTY: OnceLock<Vec<Fr>> = OnceLock::new();
    EMPTY.get_or_init(|| {
        let mut v = vec![Fr::zero()];
        for l in 0..DEPTH {
            v.push(hash(&[v[l], v[l]]));
        }
        v
    })[level]
}

/// Where a tree's nodes live. `level` 0 holds the leaves, [`DEPTH`] the root.
pub trait NodeStore {
    type Error;
    fn node(&self, level: usize, index: u64) -> Result<Option<Fr>, Self::Error>;
    fn set_node(&mut self, level: usize, index: u64, value: Fr);
}

fn at<S: NodeStore>(store: &S, level: usize, index: u64) -> Result<Fr, S::Error> {
    Ok(store.node(level, index)?.unwrap_or_else(|| empty(level)))
}

/// Sets leaf `index` and every node above it; answers the new root.
pub fn set_leaf<S: NodeStore>(store: &mut S, index: u64, leaf: Fr) -> Result<Fr, S::Error> {
    assert!(index < CAPACITY, "leaf index within the tree");
    let mut cur = leaf;
    let mut i = index;
    store.set_node(0, i, cur);
    for level in 0..DEPTH {
        let sibling = at(store, level, i ^ 1)?;
        cur = if i & 1 == 0 {
            hash(&[cur, sibling])
        } else {
            hash(&[sibling, cur])
        };
        i >>= 1;
        store.set_node(level + 1, i, cur);
    }
    Ok(cur)
}

/// The current root.
pub fn root<S: NodeStore>(store: &S) -> Result<Fr, S::Error> {
    at(store, DEPTH, 0)
}

/// A leaf's authentication path: its index and the sibling at each level, leaf first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerklePath {
    pub index: u64,
    pub siblings: Vec<Fr>,
}

/// Leaf `index`'s path in the tree as it is now.
pub fn path<S: NodeStore>(store: &S, index: u64) -> Result<MerklePath, S::Error> {
    assert!(index < CAPACITY, "leaf index within the tree");
    let mut siblings = Vec::with_capacity(DEPTH);
    let mut i = index;
    for level in 0..DEPTH {
        siblings.push(at(store, level, i ^ 1)?);
        i >>= 1;
    }
    Ok(MerklePath { index, siblings })
}

impl MerklePath {
    /// The root this path leads to from `leaf`.
    pub fn root(&self, leaf: Fr) -> Fr {
        let mut cur = leaf;
        for (level, sibling) in self.siblings.iter().enumerate() {
            cur = if (self.index >> level) & 1 == 0 {
                hash(&[cur, *sibling])
            } else {
                hash(&[*sibling, cur])
            };
        }
        cur
    }

    pub fn to_hex(&self) -> Vec<String> {
        self.siblings.iter().map(|s| FieldBytes::of(s).to_hex()).collect()
    }

    pub fn from_hex(index: u64, siblings: &[String]) -> Result<MerklePath> {
        if siblings.len() != DEPTH || index >= CAPACITY {
            return Err(Error::BadField(format!(
                "a path has {DEPTH} siblings and an index below {CAPACITY}"
            )));
        }
        let siblings = siblings
            .iter()
            .map(|s| FieldBytes::from_hex("path sibling", s)?.to_fr())
            .collect::<Result<Vec<_>>>()?;
        Ok(MerklePath { index, siblings })
    }
}

/// A tree held in memory (tests, benchmarks, tools).
#[derive(Default, Clone, Debug)]
pub struct MemoryTree {
    nodes: std::collections::HashMap<(usize, u64), Fr>,
}

impl NodeStore for MemoryTree {
    type Error = std::convert::Infallible;
    fn node(&self, level: usize, index: u64) -> Result<Option<Fr>, Self::Error> {
        Ok(self.nodes.get(&(level, index)).copied())
    }
    fn set_node(&mut self, level: usize, index: u64, value: Fr) {
        self.nodes.insert((level, index), value);
    }
}

impl MemoryTree {
    pub fn set(&mut self, index: u64, leaf: Fr) -> Fr {
        match set_leaf(self, index, leaf) {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }
    pub fn root(&self) -> Fr {
        match root(self) {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }
    pub fn path(&self, index: u64) -> MerklePath {
        match path(self, index) {
            Ok(p) => p,
            Err(never) => match never {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_lead_to_the_root() {
        let mut t = MemoryTree::default();
        assert_eq!(t.root(), empty(DEPTH));
        let leaves: Vec<(u64, Fr)> = vec![
            (0, Fr::from(7)),
            (1, Fr::from(8)),
            (5, Fr::from(9)),
            (CAPACITY - 1, Fr::from(10)),
        ];
        for (i, l) in &leaves {
            t.set(*i, *l);
        }
        for (i, l) in &leaves {
            assert_eq!(t.path(*i).root(*l), t.root());
            assert_ne!(t.path(*i).root(*l + Fr::from(1)), t.root());
        }
        // Zeroing every leaf gives the empty tree back.
        for (i, _) in &leaves {
            t.set(*i, Fr::zero());
        }
        assert_eq!(t.root(), empty(DEPTH));
    }
}
