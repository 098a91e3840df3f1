//! Content commitments: one streaming pass over a file gives its size, its
//! plain SHA-256, and an RFC 6962 Merkle root over the SHA-256 hashes of its
//! fixed-size chunks. A receiver checks each chunk as it arrives (against the
//! chunk hash list, itself checked against the root), resumes after a
//! verified prefix, and checks that all arrived; anyone can check a copy with
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
    /// Each chunk's hash, when the caller wants the list.
    hashes: Option<Vec<Digest>>,
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
            hashes: None,
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

    fn close_last(&mut self) {
        if self.in_chunk > 0 {
            self.close_chunk();
        }
    }

    fn close_chunk(&mut self) {
        let hash = Digest(std::mem::take(&mut self.chunk).finalize().into());
        self.frontier.push(leaf_hash(hash.as_bytes()));
        if let Some(list) = &mut self.hashes {
            list.push(hash);
        }
        self.in_chunk = 0;
    }

    pub fn finish(mut self) -> Commitment {
        self.close_last();
        Commitment {
            size: self.size,
            chunk_size: self.chunk_size as u32,
            chunk_root: self.frontier.root(),
            sha256: Digest(self.whole.finalize().into()),
        }
    }
}

/// The chunk hash list and the commitment of everything `reader` yields: what
/// a provider sends ahead of a delivery so the receiver can check each chunk
/// on arrival. 32 bytes per chunk (32 KiB per GiB at 1 MiB chunks).
pub fn chunk_hashes(reader: impl Read, chunk_size: u32) -> Result<(Vec<Digest>, Commitment)> {
    let mut hasher = ChunkHasher::new(chunk_size)?;
    hasher.hashes = Some(Vec::new());
    let mut hasher = feed(reader, hasher)?;
    let hashes = hasher.hashes.take().unwrap_or_default();
    Ok((hashes, hasher.finish()))
}

/// Fills `buf` unless the reader ends first; the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io(format!("reading: {e}"))),
        }
    }
    Ok(filled)
}

/// The RFC 6962 root over a list of chunk hashes (each hash is a leaf).
pub fn chunk_root(hashes: &[Digest]) -> Digest {
    let mut frontier = Frontier::default();
    for h in hashes {
        frontier.push(leaf_hash(h.as_bytes()));
    }
    frontier.root()
}

/// A receiver's check of content against its commitment, chunk by chunk as
/// it arrives: first the chunk hash list (its RFC 6962 root must be the
/// commitment's), then each chunk in order against its hash (and its
/// length: full chunks, then the exact remainder), then that all arrived.
/// Each byte is hashed once: chunk hashes authenticated by the chunk root
/// fix the content exactly, so the plain SHA-256 (for tools such as
/// `sha256sum`) is not computed again. A verified prefix can be taken up again after an
/// interruption with [`ChunkVerifier::resume`].
pub struct ChunkVerifier {
    commitment: Commitment,
    hashes: Vec<Digest>,
    next: u64,
    size: u64,
}

impl ChunkVerifier {
    pub fn new(commitment: &Commitment, hashes: Vec<Digest>) -> Result<ChunkVerifier> {
        let mismatch = |m: String| Err(Error::ContentMismatch(m));
        if hashes.len() as u64 != commitment.chunks() {
            return mismatch(format!(
                "{} chunk hashes for {} chunks",
                hashes.len(),
                commitment.chunks()
            ));
        }
        if chunk_root(&hashes) != commitment.chunk_root {
            return mismatch("the chunk hash list's root is not the committed chunk root".into());
        }
        Ok(ChunkVerifier {
            commitment: commitment.clone(),
            hashes,
            next: 0,
            size: 0,
        })
    }

    /// Takes up a transfer whose first chunks are already in `prefix` (a
    /// partial file): every whole chunk in it is checked again; a trailing
    /// partial chunk is ignored (the caller truncates to
    /// [`ChunkVerifier::verified_bytes`] and asks for the rest from there).
    pub fn resume(commitment: &Commitment, hashes: Vec<Digest>, mut prefix: impl Read) -> Result<ChunkVerifier> {
        let mut v = ChunkVerifier::new(commitment, hashes)?;
        let mut chunk = vec![0u8; commitment.chunk_size as usize];
        while v.next < commitment.chunks() {
            let want = v.expected_len(v.next);
            let n = read_full(&mut prefix, &mut chunk[..want])?;
            if n < want {
                break;
            }
            let index = v.next;
            v.check(index, &chunk[..n])?;
        }
        Ok(v)
    }

    fn expected_len(&self, index: u64) -> usize {
        let cs = u64::from(self.commitment.chunk_size);
        (self.commitment.size - index * cs).min(cs) as usize
    }

    /// The next chunk expected (the number of chunks verified so far).
    pub fn next_chunk(&self) -> u64 {
        self.next
    }

    /// Bytes verified so far.
    pub fn verified_bytes(&self) -> u64 {
        self.size
    }

    /// Checks chunk `index`, which must be the next one.
    pub fn check(&mut self, index: u64, chunk: &[u8]) -> Result<()> {
        let mismatch = |m: String| Err(Error::ContentMismatch(m));
        if index != self.next {
            return mismatch(format!("chunk {index} arrived where chunk {} was due", self.next));
        }
        if index >= self.commitment.chunks() {
            return mismatch(format!(
                "chunk {index} is past the end ({} chunks)",
                self.commitment.chunks()
            ));
        }
        let want = self.expected_len(index);
        if chunk.len() != want {
            return mismatch(format!("chunk {index} is {} bytes, not {want}", chunk.len()));
        }
        if sha256(chunk) != self.hashes[index as usize] {
            return mismatch(format!("chunk {index}'s SHA-256 is not the committed one"));
        }
        self.size += chunk.len() as u64;
        self.next += 1;
        Ok(())
    }

    /// Checks that every chunk arrived; answers the verified chunk root.
    pub fn finish(self) -> Result<Digest> {
        if self.next != self.commitment.chunks() {
            return Err(Error::ContentMismatch(format!(
                "the content ended after {} of {} chunks",
                self.next,
                self.commitment.chunks()
            )));
        }
        if self.size != self.commitment.size {
            return Err(Error::ContentMismatch(format!(
                "{} bytes arrived, not {}",
                self.size, self.commitment.size
            )));
        }
        Ok(self.commitment.chunk_root)
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
pub fn commit_reader(reader: impl Read, chunk_size: u32) -> Result<Commitment> {
    Ok(feed(reader, ChunkHasher::new(chunk_size)?)?.finish())
}

/// Everything `reader` yields into `hasher`, in 64 KiB pieces; the last
/// chunk is closed.
fn feed(mut reader: impl Read, mut hasher: ChunkHasher) -> Result<ChunkHasher> {
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
    hasher.close_last();
    Ok(hasher)
}

/// The commitment of a file on disk.
pub fn commit_file(path: &Path, chunk_size: u32) -> Result<Commitment> {
    file_chunk_hashes(path, chunk_size).map(|(_, c)| c)
}

/// [`chunk_hashes`] of a file: its chunk hash list and commitment in one pass.
pub fn file_chunk_hashes(path: &Path, chunk_size: u32) -> Result<(Vec<Digest>, Commitment)> {
    let file = std::fs::File::open(path).map_err(|e| Error::Io(format!("opening {}: {e}", path.display())))?;
    chunk_hashes(std::io::BufReader::with_capacity(1 << 20, file), chunk_size)
        .map_err(|e| Error::Io(format!("{}: {e}", path.display())))
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

    fn sample() -> Vec<u8> {
        (0..(MIN_CHUNK_SIZE as usize * 3 + 777))
            .map(|i| (i * 31 % 251) as u8)
            .collect()
    }

    #[test]
    fn a_receiver_checks_each_chunk_and_the_whole() {
        let data = sample();
        let cs = MIN_CHUNK_SIZE as usize;
        let (hashes, c) = chunk_hashes(&data[..], MIN_CHUNK_SIZE).expect("hashes");
        assert_eq!(c, commit_reader(&data[..], MIN_CHUNK_SIZE).expect("commits"));
        let mut v = ChunkVerifier::new(&c, hashes.clone()).expect("list matches");
        for (i, chunk) in data.chunks(cs).enumerate() {
            v.check(i as u64, chunk).expect("chunk verifies");
        }
        assert_eq!(v.finish().expect("whole verifies"), c.chunk_root);

        let code = |r: Result<()>| r.expect_err("refused").code();
        // A tampered chunk, one out of order, a short one, one past the end.
        let mut v = ChunkVerifier::new(&c, hashes.clone()).expect("list");
        let mut bad = data[..cs].to_vec();
        bad[9] ^= 0x80;
        assert_eq!(code(v.check(0, &bad)), "catalog.content_mismatch");
        assert_eq!(code(v.check(1, &data[cs..2 * cs])), "catalog.content_mismatch");
        assert_eq!(code(v.check(0, &data[..cs - 1])), "catalog.content_mismatch");
        v.check(0, &data[..cs]).expect("the right chunk still verifies");
        // Ending early.
        assert_eq!(v.finish().expect_err("truncated").code(), "catalog.content_mismatch");
        // A hash list that is not the committed one.
        let mut wrong = hashes.clone();
        wrong[2] = sha256(b"other");
        assert!(ChunkVerifier::new(&c, wrong).is_err());
        assert!(ChunkVerifier::new(&c, hashes[..3].to_vec()).is_err());
    }

    #[test]
    fn a_transfer_resumes_after_its_verified_prefix() {
        let data = sample();
        let cs = MIN_CHUNK_SIZE as usize;
        let (hashes, c) = chunk_hashes(&data[..], MIN_CHUNK_SIZE).expect("hashes");
        // Two whole chunks and part of the third were written before the cut.
        let partial = &data[..2 * cs + 100];
        let mut v = ChunkVerifier::resume(&c, hashes.clone(), partial).expect("resumes");
        assert_eq!((v.next_chunk(), v.verified_bytes()), (2, 2 * cs as u64));
        for (i, chunk) in data.chunks(cs).enumerate().skip(2) {
            v.check(i as u64, chunk).expect("verifies");
        }
        v.finish().expect("whole");
        // A prefix that was altered on disk is not taken up.
        let mut altered = partial.to_vec();
        altered[cs + 5] ^= 1;
        assert!(ChunkVerifier::resume(&c, hashes, &altered[..]).is_err());
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
