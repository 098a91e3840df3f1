//! Content commitments: one streaming pass over a file gives its size, its
//! plain SHA-256, and an RFC 6962 Merkle root over the SHA-256 hashes of its
//! fixed-size chunks. A receiver checks each chunk as it arrives (against the
//! chunk hash list, itself checked against the root), resumes after a
//! verified prefix, and checks the whole; anyone can check a copy with
//! `sha256sum`.

use crate::{Error, Result};
use borsh::{BorshDeserialize, BorshSerialize};
use liutong_core::merkle::{leaf_hash, Frontier};
use liutong_core::{sha256, Digest};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::io::Read;
use std::path::Path;

/// Smallest and largest chunk sizes a genesis may fix.
pub const MIN_CHUNK_SIZE: u32 = 4 * 1024;
pub const MAX_CHUNK_SIZE: u32 = 64 * 1024 * 1024;

/// What the ledger records about a file's bytes.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commitment {
    /// Bytes in the file.
    pub size: u64,
    /// Bytes per chunk (the genesis's); the last chunk may be shorter.
    pub chunk_size: u32,
    /// RFC 6962 root over the chunks' SHA-256 hashes: leaf i's hash is
    /// SHA-256(0x00 ‖ SHA-256(chunk i)). An empty file has no chunks and the
    /// empty tree's root, SHA-256("").
    pub chunk_root: Digest,
    /// SHA-256 of the whole file.
    pub sha256: Digest,
}

impl Commitment {
    /// Number of chunks: ⌈size / chunk_size⌉.
    pub fn chunks(&self) -> u64 {
        self.size.div_ceil(u64::from(self.chunk_size.max(1)))
    }

    /// Checks the fields against each other and against the chain's chunk size.
    pub fn validate(&self, chunk_size: u32) -> Result<()> {
        if self.chunk_size != chunk_size {
            return Err(Error::BadCommitment(format!(
                "chunk size is {}, this chain's is {chunk_size}",
                self.chunk_size
            )));
        }
        if self.size == 0 && (self.chunk_root != liutong_core::merkle::empty_root() || self.sha256 != sha256(b"")) {
            return Err(Error::BadCommitment(
                "an empty file's chunk root and SHA-256 are both SHA-256 of nothing".into(),
            ));
        }
        Ok(())
    }
}

/// Hashes a stream chunk by chunk in constant memory.
pub struct ChunkHasher {
    chunk_size: usize,
    chunk: Sha256,
    in_chunk: usize,
    whole: Sha256,
    frontier: Frontier,
    size: u64,
}

impl ChunkHasher {
    pub fn new(chunk_size: u32) -> Result<ChunkHasher> {
        check_chunk_size(chunk_size)?;
        Ok(ChunkHasher {
            chunk_size: chunk_size as usize,
            chunk: Sha256::new(),
            in_chunk: 0,
            whole: Sha256::new(),
            frontier: Frontier::default(),
            size: 0,
        })
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        self.whole.update(bytes);
        self.size += bytes.len() as u64;
        while !bytes.is_empty() {
            let take = (self.chunk_size - self.in_chunk).min(bytes.len());
            self.chunk.update(&bytes[..take]);
            self.in_chunk += take;
            bytes = &bytes[take..];
            if self.in_chunk == self.chunk_size {
                self.close_chunk();
            }
        }
    }

    fn close_chunk(&mut self) {
        let hash = Digest(std::mem::take(&mut self.chunk).finalize().into());
        self.frontier.push(leaf_hash(hash.as_bytes()));
        self.in_chunk = 0;
    }

    pub fn finish(mut self) -> Commitment {
        if self.in_chunk > 0 {
            self.close_chunk();
        }
        Commitment {
            size: self.size,
            chunk_size: self.chunk_size as u32,
            chunk_root: self.frontier.root(),
            sha256: Digest(self.whole.finalize().into()),
        }
    }
}

pub fn check_chunk_size(chunk_size: u32) -> Result<()> {
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) || !chunk_size.is_power_of_two() {
        return Err(Error::BadCommitment(format!(
            "chunk size {chunk_size} must be a power of two from {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE}"
        )));
    }
    Ok(())
}

/// The commitment of everything `reader` yields, read in 64 KiB pieces.
pub fn commit_reader(mut reader: impl Read, chunk_size: u32) -> Result<Commitment> {
    let mut hasher = ChunkHasher::new(chunk_size)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io(format!("reading: {e}"))),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finish())
}

/// The commitment of a file on disk.
pub fn commit_file(path: &Path, chunk_size: u32) -> Result<Commitment> {
    let file = std::fs::File::open(path).map_err(|e| Error::Io(format!("opening {}: {e}", path.display())))?;
    commit_reader(std::io::BufReader::new(file), chunk_size).map_err(|e| Error::Io(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use liutong_core::merkle::node_hash;

    #[test]
    fn root_is_rfc6962_over_chunk_hashes() {
        let cs = MIN_CHUNK_SIZE as usize;
        let data: Vec<u8> = (0..(cs * 2 + 100)).map(|i| (i % 251) as u8).collect();
        let c = commit_reader(&data[..], MIN_CHUNK_SIZE).expect("commits");
        let leaves: Vec<Digest> = data.chunks(cs).map(|ch| leaf_hash(sha256(ch).as_bytes())).collect();
        // Three leaves: MTH = node(node(l0, l1), l2).
        assert_eq!(c.chunk_root, node_hash(&node_hash(&leaves[0], &leaves[1]), &leaves[2]));
        assert_eq!(c.sha256, sha256(&data));
        assert_eq!((c.size, c.chunks()), (data.len() as u64, 3));
    }

    #[test]
    fn piece_boundaries_do_not_matter() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let whole = commit_reader(&data[..], MIN_CHUNK_SIZE).expect("commits");
        let mut h = ChunkHasher::new(MIN_CHUNK_SIZE).expect("valid size");
        for piece in data.chunks(997) {
            h.update(piece);
        }
        assert_eq!(h.finish(), whole);
    }

    #[test]
    fn empty_and_bad_sizes() {
        let c = commit_reader(&b""[..], MIN_CHUNK_SIZE).expect("commits");
        assert_eq!(c.chunks(), 0);
        assert!(c.validate(MIN_CHUNK_SIZE).is_ok());
        assert_eq!(
            c.validate(MIN_CHUNK_SIZE * 2).expect_err("other chain").code(),
            "catalog.bad_commitment"
        );
        for bad in [0, 1000, MIN_CHUNK_SIZE + 1, MAX_CHUNK_SIZE * 2] {
            assert!(ChunkHasher::new(bad).is_err(), "{bad}");
        }
    }
}
