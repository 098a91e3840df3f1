//! liutong-zk: what private-mode grants are proven with.
//!
//! - [`poseidon`]: Poseidon over BN254 with circomlib's parameters, natively
//!   (light-poseidon) and as R1CS (arkworks' Poseidon constraint code fed
//!   the same constants);
//! - [`tree`]: the depth-20 Poseidon Merkle tree of grant commitments;
//! - [`circuit`]: the authorized-use statement;
//! - [`qap`]: the reduction the keys are made for (the smallest `2^k` or
//!   `3·2^k` domain, the quotient committed through its coset values);
//! - [`groth16`]: circuit-specific setup, a prover that keeps the constraint
//!   matrices, single and batch verification, key and proof encodings;
//! - [`snarkjs`]: the same keys and proofs in snarkjs's JSON.
//!
//! Field elements travel as 32 big-endian bytes (hex in JSON), always the
//! canonical representative (below the BN254 scalar modulus).

pub mod circuit;
pub mod field;
pub mod groth16;
pub mod msm;
pub mod naive;
pub mod poseidon;
pub mod qap;
pub mod residue;
pub mod snarkjs;
pub mod tree;

pub use ark_bn254::{Bn254, Fr};
pub use circuit::{GrantFields, Statement, UseCircuit, UseWitness};
pub use field::FieldBytes;
pub use groth16::{setup, Prover, Shape, UseProof, Verifier, VerifyingKey};
pub use tree::{MerklePath, DEPTH};

/// What can go wrong in this crate; each with a stable code.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    #[error("{0}")]
    BadField(String),
    #[error("malformed proof: {0}")]
    MalformedProof(String),
    #[error("malformed key: {0}")]
    MalformedKey(String),
    #[error("the proof does not verify against these public inputs and verifying key")]
    InvalidProof,
    #[error("cannot prove: {0}")]
    Unprovable(String),
    #[error("synthesis failed: {0}")]
    Synthesis(String),
}

impl Error {
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadField(_) => "zk.bad_field",
            Error::MalformedProof(_) => "zk.malformed_proof",
            Error::MalformedKey(_) => "zk.malformed_key",
            Error::InvalidProof => "zk.invalid_proof",
            Error::Unprovable(_) => "zk.unprovable",
            Error::Synthesis(_) => "zk.synthesis",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
