//! Groth16 over BN254 for the use circuit: setup, proving with the
//! constraint matrices built once, single and batch verification, and the
//! byte forms of keys and proofs.

use crate::circuit::{Statement, Trace, UseCircuit, UseWitness, PUBLIC_INPUTS};
use crate::qap::{CosetReduction, Domain};
use crate::residue::{self, Hint, HINT_BYTES};
use crate::{msm, Bn254, Error, Fr, Result};
use ark_bn254::{Fq12, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::pairing::Pairing;
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::BigInteger;
use ark_ff::{Field, One, PrimeField, UniformRand, Zero};
use ark_groth16::r1cs_to_qap::{LibsnarkReduction, R1CSToQAP};
use ark_groth16::{Groth16, PreparedVerifyingKey, ProvingKey};
use ark_poly::{EvaluationDomain, GeneralEvaluationDomain};
use ark_relations::r1cs::{ConstraintMatrices, ConstraintSystem, OptimizationGoal, SynthesisMode};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use rand::{CryptoRng, RngCore};
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

pub use ark_groth16::VerifyingKey as ArkVerifyingKey;
pub type VerifyingKey = ArkVerifyingKey<Bn254>;

/// Bytes of a compressed proof (A in G1, B in G2, C in G1).
pub const PROOF_BYTES: usize = 128;

fn synthesis(e: ark_relations::r1cs::SynthesisError) -> Error {
    Error::Synthesis(e.to_string())
}

/// Circuit-specific setup with randomness from `rng` (the OS generator in
/// `liutong init`), for the [`CosetReduction`]. The trapdoor lives only
/// inside this call and is dropped with its stack frame: whoever runs it
/// once could forge proofs had they kept it, which is the trust a
/// single-party setup asks for.
pub fn setup<R: RngCore + CryptoRng>(rng: &mut R) -> Result<ProvingKey<Bn254>> {
    Groth16::<Bn254, CosetReduction>::generate_random_parameters_with_reduction(UseCircuit::blank(), rng)
        .map_err(synthesis)
}

/// The circuit's R1CS, built once.
pub struct Shape {
    pub matrices: ConstraintMatrices<Fr>,
    pub num_instance: usize,
    pub num_constraints: usize,
}

impl Shape {
    /// The use circuit's R1CS, and the witness-variable counts at its
    /// segment boundaries (see [`UseCircuit::synthesize`]).
    pub fn of_use_circuit() -> Result<(Shape, Vec<usize>)> {
        let cs = ConstraintSystem::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        cs.set_mode(SynthesisMode::Setup);
        let mut marks = Vec::new();
        UseCircuit::blank()
            .synthesize(cs.clone(), &mut marks)
            .map_err(synthesis)?;
        cs.finalize();
        let matrices = cs
            .to_matrices()
            .ok_or_else(|| Error::Synthesis("no constraint matrices".into()))?;
        let shape = Shape {
            num_instance: matrices.num_instance_variables,
            num_constraints: matrices.num_constraints,
            matrices,
        };
        Ok((shape, marks))
    }
}

/// Constraints of the use circuit.
pub fn constraint_count() -> Result<usize> {
    Ok(Shape::of_use_circuit()?.0.num_constraints)
}

/// A prover: the proving key and the circuit's matrices, kept between proofs,
/// so a proof only computes the witness (no constraint synthesis, no
/// linear-combination inlining) before the FFTs and multi-scalar
/// multiplications. With a [`ProverCache`] it also keeps, per segment of the
/// witness (the grant's own part with the lowest tree levels, groups of
/// upper levels, the use), the segment's sums in A, B and C: a later use of
/// the same grant recomputes only the segments whose values changed (the
/// use's, and the levels above a changed sibling), plus the H part, which
/// depends on everything.
pub struct Prover {
    pk: ProvingKey<Bn254>,
    /// The queries' fixed-base tables, for a prover that proves again and
    /// again (see [`Prover::with_tables`]).
    tables: Option<Tables>,
    verifier: Verifier,
    shape: Shape,
    /// Witness (aux) index ranges of the segments.
    segments: Vec<(usize, usize)>,
    reduction: Reduction,
}

/// How the proving key's H query was made: by [`setup`] (the
/// [`CosetReduction`]), or by arkworks' own setup, as keys were before it
/// (`LibsnarkReduction`: the power-of-two domain and `h`'s coefficients).
/// Both prove against the same verifying-key format.
enum Reduction {
    Coset(Box<Domain<Fr>>),
    Libsnark,
}

/// A segment's contribution to a proof: a digest of its witness values and
/// the sums of its A, B (G1 and G2) and L query terms.
#[derive(Clone, Debug, PartialEq, CanonicalSerialize, CanonicalDeserialize)]
struct Segment {
    digest: Vec<u8>,
    a: G1Affine,
    b1: G1Affine,
    b2: G2Affine,
    l: G1Affine,
}

/// What a prover keeps between uses of one grant (about 7 KB; the exchange
/// keeps one per private grant in the consumer's home). The sums are
/// functions of the witness, so it is kept as private as the grant's secret.
#[derive(Clone, Debug, Default, PartialEq, CanonicalSerialize, CanonicalDeserialize)]
pub struct ProverCache {
    segments: Vec<Option<Segment>>,
}

impl ProverCache {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.serialize_uncompressed(&mut out)
            .expect("serializing into a Vec cannot fail");
        out
    }

    /// Reads a cache; anything unreadable is an empty cache (it only saves time).
    pub fn from_bytes(bytes: &[u8]) -> ProverCache {
        ProverCache::deserialize_uncompressed(bytes).unwrap_or_default()
    }
}

impl Prover {
    pub fn new(pk: ProvingKey<Bn254>) -> Result<Prover> {
        let (shape, marks) = Shape::of_use_circuit()?;
        let (n_in, n_aux) = (shape.num_instance, shape.matrices.num_witness_variables);
        if pk.a_query.len() != n_in + n_aux
            || pk.b_g1_query.len() != n_in + n_aux
            || pk.b_g2_query.len() != n_in + n_aux
            || pk.l_query.len() != n_aux
        {
            return Err(Error::MalformedKey("the proving key is not for the use circuit".into()));
        }
        let rows = shape.num_constraints + n_in;
        let domain = Domain::for_rows(rows).ok_or_else(|| Error::Synthesis("no domain for the circuit".into()))?;
        let radix2 = GeneralEvaluationDomain::<Fr>::new(rows).map_or(0, |d| d.size());
        let reduction = match pk.h_query.len() {
            n if n == domain.size() => Reduction::Coset(Box::new(domain)),
            n if n + 1 == radix2 => Reduction::Libsnark,
            n => {
                return Err(Error::MalformedKey(format!(
                    "the proving key's H query has {n} points; the use circuit's keys have {} (or {})",
                    domain.size(),
                    radix2 - 1
                )))
            }
        };
        let mut segments = Vec::new();
        let mut lo = 0;
        for m in marks.into_iter().chain([n_aux]) {
            segments.push((lo, m));
            lo = m;
        }
        let verifier = Verifier::new(&pk.vk);
        Ok(Prover {
            pk,
            tables: None,
            verifier,
            shape,
            segments,
            reduction,
        })
    }

    /// As [`Prover::new`], with every query of the proving key also kept as
    /// fixed-base tables (each point's multiples for every window): about
    /// 70 MB and 1.5 s of work on two cores, once, after which each proof's
    /// multiplications fill one set of buckets instead of one per window
    /// (10–15% off a proof here). Worth it in a process that proves many
    /// uses; a one-shot `liutong fetch --private` does without.
    pub fn with_tables(pk: ProvingKey<Bn254>) -> Result<Prover> {
        let mut prover = Prover::new(pk)?;
        prover.tables = Some(Tables::new(&prover.pk));
        Ok(prover)
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.pk.vk
    }

    pub fn proving_key(&self) -> &ProvingKey<Bn254> {
        &self.pk
    }

    /// `Σ scalars[j]·query[start + j]` for one of the G1 queries.
    fn g1(&self, q: Query, start: usize, scalars: &[Fr]) -> G1Projective {
        let pk = &self.pk;
        match (&self.tables, q) {
            (Some(t), Query::A) => t.a.msm(start, scalars),
            (Some(t), Query::B1) => t.b1.msm(start, scalars),
            (Some(t), Query::L) => t.l.msm(start, scalars),
            (Some(t), Query::H) => t.h.msm(start, scalars),
            (None, Query::A) => msm::msm(&pk.a_query[start..], scalars),
            (None, Query::B1) => msm::msm(&pk.b_g1_query[start..], scalars),
            (None, Query::L) => msm::msm(&pk.l_query[start..], scalars),
            (None, Query::H) => msm::msm(&pk.h_query[start..], scalars),
        }
    }

    /// The same for the G2 query of B.
    fn g2(&self, start: usize, scalars: &[Fr]) -> G2Projective {
        match &self.tables {
            Some(t) => t.b2.msm(start, scalars),
            None => msm::msm(&self.pk.b_g2_query[start..], scalars),
        }
    }

    /// A proof of `statement` with `witness`, checked natively first so a
    /// use that cannot be proven gets its reason.
    pub fn prove<R: RngCore + CryptoRng>(
        &self,
        statement: &Statement,
        witness: &UseWitness,
        rng: &mut R,
    ) -> Result<UseProof> {
        self.prove_with(statement, witness, &mut ProverCache::default(), rng)
    }

    /// As [`Prover::prove`], reusing and updating `cache`.
    pub fn prove_with<R: RngCore + CryptoRng>(
        &self,
        statement: &Statement,
        witness: &UseWitness,
        cache: &mut ProverCache,
        rng: &mut R,
    ) -> Result<UseProof> {
        // The native check (which names what cannot be proven) runs beside
        // the circuit's run, computed natively (the values the circuit's
        // synthesis would give; the matrices are already here).
        let (checked, trace) = rayon::join(
            || witness.check(statement),
            || {
                UseCircuit {
                    statement: statement.clone(),
                    witness: witness.clone(),
                }
                .trace()
            },
        );
        checked?;
        let variables = self.shape.num_instance + self.shape.matrices.num_witness_variables;
        if trace.full.len() != variables || trace.a.len() != self.shape.num_constraints {
            return Err(Error::Synthesis(format!(
                "the native run has {} variables and {} constraints, the circuit {variables} and {}",
                trace.full.len(),
                trace.a.len(),
                self.shape.num_constraints
            )));
        }
        let (r, s) = (Fr::rand(rng), Fr::rand(rng));
        let mut proof = self.assemble(&trace, Rows::Native, r, s, cache)?;
        // The proof's residue hint (see [`residue`]) exists only for a proof
        // that verifies, so finding it is also the proof's check. A cache
        // from disk that went wrong costs a second proof, never a bad one:
        // without the cache, its rows from the constraint matrices. A proof
        // that still does not verify comes from a proving key whose points
        // are on the curve but not the key's (its file was altered), and is
        // refused.
        proof.1 = self.verifier.hint(statement, &proof.0);
        if proof.1.is_none() {
            *cache = ProverCache::default();
            proof = self.assemble(&trace, Rows::Matrices, r, s, cache)?;
            proof.1 = self.verifier.hint(statement, &proof.0);
            if proof.1.is_none() {
                *cache = ProverCache::default();
                return Err(Error::MalformedKey(
                    "the proving key makes proofs its own verifying key refuses (the key file was altered)".into(),
                ));
            }
        }
        Ok(proof)
    }

    /// Groth16's A, B and C from the circuit's run. The H part (the
    /// quotient's transforms and its 6,144-point multiplication) runs beside
    /// the witness segments' sums, which come from `cache` where a
    /// segment's values did not change.
    fn assemble(&self, trace: &Trace, rows: Rows, r: Fr, s: Fr, cache: &mut ProverCache) -> Result<UseProof> {
        let pk = &self.pk;
        let shape = &self.shape;
        let full = &trace.full;
        let (h_acc, (a, b1, b2, l)) = rayon::join(
            || -> Result<G1Projective> {
                let h = match (&self.reduction, rows) {
                    (Reduction::Coset(domain), Rows::Native) => {
                        let c = trace.a.iter().zip(&trace.b).map(|(a, b)| *a * b).collect();
                        domain.quotient_of(trace.a.clone(), trace.b.clone(), c, &full[..shape.num_instance])
                    }
                    (Reduction::Coset(domain), Rows::Matrices) => {
                        domain.quotient(&shape.matrices, shape.num_instance, full)
                    }
                    (Reduction::Libsnark, _) => LibsnarkReduction::witness_map_from_matrices::<
                        Fr,
                        GeneralEvaluationDomain<Fr>,
                    >(
                        &shape.matrices, shape.num_instance, shape.num_constraints, full
                    )
                    .map_err(synthesis)?,
                };
                Ok(self.g1(Query::H, 0, &h))
            },
            || self.witness_sums(full, cache),
        );
        let h_acc = h_acc?;
        let g_a = pk.delta_g1 * r + pk.a_query[0] + pk.vk.alpha_g1 + a;
        let g1_b = pk.delta_g1 * s + pk.b_g1_query[0] + pk.beta_g1 + b1;
        let g2_b = pk.vk.delta_g2 * s + pk.b_g2_query[0] + pk.vk.beta_g2 + b2;
        let g_c = g_a * s + g1_b * r - pk.delta_g1 * (r * s) + l + h_acc;
        Ok(UseProof(
            ark_groth16::Proof {
                a: g_a.into_affine(),
                b: g2_b.into_affine(),
                c: g_c.into_affine(),
            },
            None,
        ))
    }

    /// The assignment's sums in the A, B (G1 and G2) and L queries, segment
    /// by segment, reusing the cached sums of segments whose values did not
    /// change.
    fn witness_sums(
        &self,
        full: &[Fr],
        cache: &mut ProverCache,
    ) -> (G1Projective, G1Projective, G2Projective, G1Projective) {
        let n_in = self.shape.num_instance;
        let (inputs, aux) = (&full[1..n_in], &full[n_in..]);
        cache.segments.resize(self.segments.len(), None);
        // The public inputs' part (small; it changes with every use).
        let mut a = self.g1(Query::A, 1, inputs);
        let mut b1 = self.g1(Query::B1, 1, inputs);
        let mut b2 = self.g2(1, inputs);
        let mut l = G1Projective::zero();
        for ((lo, hi), slot) in self.segments.iter().copied().zip(cache.segments.iter_mut()) {
            let values = &aux[lo..hi];
            let mut d = Sha256::new();
            for v in values {
                d.update(v.into_bigint().to_bytes_le());
            }
            let digest = d.finalize().to_vec();
            let seg = match slot {
                Some(seg) if seg.digest == digest => seg.clone(),
                _ => {
                    let ((sa, sb1), (sb2, sl)) = rayon::join(
                        || {
                            rayon::join(
                                || self.g1(Query::A, n_in + lo, values),
                                || self.g1(Query::B1, n_in + lo, values),
                            )
                        },
                        || rayon::join(|| self.g2(n_in + lo, values), || self.g1(Query::L, lo, values)),
                    );
                    let seg = Segment {
                        digest,
                        a: sa.into_affine(),
                        b1: sb1.into_affine(),
                        b2: sb2.into_affine(),
                        l: sl.into_affine(),
                    };
                    *slot = Some(seg.clone());
                    seg
                }
            };
            a += seg.a;
            b1 += seg.b1;
            b2 += seg.b2;
            l += seg.l;
        }
        (a, b1, b2, l)
    }
}

/// Where the quotient's row values come from: the native run's A and B
/// (C is their product), or the constraint matrices times the assignment,
/// the reference a second attempt falls back on.
#[derive(Clone, Copy)]
enum Rows {
    Native,
    Matrices,
}

#[derive(Clone, Copy)]
enum Query {
    A,
    B1,
    L,
    H,
}

/// The proving key's queries as fixed-base tables (see [`msm::FixedBases`]).
struct Tables {
    a: msm::FixedBases<ark_bn254::g1::Config>,
    b1: msm::FixedBases<ark_bn254::g1::Config>,
    b2: msm::FixedBases<ark_bn254::g2::Config>,
    l: msm::FixedBases<ark_bn254::g1::Config>,
    h: msm::FixedBases<ark_bn254::g1::Config>,
}

impl Tables {
    fn new(pk: &ProvingKey<Bn254>) -> Tables {
        let ((a, b1), (b2, (l, h))) = rayon::join(
            || {
                rayon::join(
                    || msm::FixedBases::new(&pk.a_query, 10),
                    || msm::FixedBases::new(&pk.b_g1_query, 10),
                )
            },
            || {
                rayon::join(
                    || msm::FixedBases::new(&pk.b_g2_query, 10),
                    || {
                        rayon::join(
                            || msm::FixedBases::new(&pk.l_query, 10),
                            || msm::FixedBases::new(&pk.h_query, 13),
                        )
                    },
                )
            },
        );
        Tables { a, b1, b2, l, h }
    }
}

/// A Groth16 proof, and the residue hint that spares its verifiers the
/// final exponentiation (see [`residue`]). The hint never changes a
/// verdict: a proof without one, or with one that does not close, is
/// checked in full.
#[derive(Clone, Debug, PartialEq)]
pub struct UseProof(pub ark_groth16::Proof<Bn254>, pub Option<Hint>);

impl UseProof {
    /// Compressed: 32 bytes A, 64 bytes B, 32 bytes C (arkworks' encoding),
    /// then the hint's [`HINT_BYTES`] when there is one.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PROOF_BYTES + HINT_BYTES);
        self.0
            .serialize_compressed(&mut out)
            .expect("serializing into a Vec cannot fail");
        if let Some(h) = &self.1 {
            out.extend(h.to_bytes());
        }
        out
    }

    /// Decodes, refusing anything but the exact encoding of points on the
    /// curve and in the prime-order subgroups, and of a hint (an index
    /// below 3 and a non-zero element of canonical field elements).
    pub fn from_bytes(bytes: &[u8]) -> Result<UseProof> {
        if bytes.len() != PROOF_BYTES && bytes.len() != PROOF_BYTES + HINT_BYTES {
            return Err(Error::MalformedProof(format!(
                "a proof is {PROOF_BYTES} bytes, or {} with its hint; this one {}",
                PROOF_BYTES + HINT_BYTES,
                bytes.len()
            )));
        }
        let (head, tail) = bytes.split_at(PROOF_BYTES);
        let proof = ark_groth16::Proof::<Bn254>::deserialize_compressed(head)
            .map_err(|e| Error::MalformedProof(e.to_string()))?;
        if proof.a.is_zero() || proof.b.is_zero() || proof.c.is_zero() {
            return Err(Error::MalformedProof("a proof point is the identity".into()));
        }
        let hint = match tail {
            [] => None,
            t => {
                Some(Hint::from_bytes(t).ok_or_else(|| Error::MalformedProof("the residue hint is malformed".into()))?)
            }
        };
        Ok(UseProof(proof, hint))
    }
}

/// The verifying key's bytes (compressed), as its digest is taken.
pub fn vk_bytes(vk: &VerifyingKey) -> Vec<u8> {
    let mut out = Vec::new();
    vk.serialize_compressed(&mut out)
        .expect("serializing into a Vec cannot fail");
    out
}

/// SHA-256 of the compressed verifying key: what the genesis records.
pub fn vk_digest(vk: &VerifyingKey) -> [u8; 32] {
    Sha256::digest(vk_bytes(vk)).into()
}

pub fn vk_from_bytes(bytes: &[u8]) -> Result<VerifyingKey> {
    let vk = VerifyingKey::deserialize_compressed(bytes).map_err(|e| Error::MalformedKey(e.to_string()))?;
    if vk.gamma_abc_g1.len() != PUBLIC_INPUTS + 1 {
        return Err(Error::MalformedKey(format!(
            "the key is for {} public inputs, the use circuit has {PUBLIC_INPUTS}",
            vk.gamma_abc_g1.len().saturating_sub(1)
        )));
    }
    Ok(vk)
}

/// The proving key's bytes (uncompressed, which loads fast).
pub fn pk_bytes(pk: &ProvingKey<Bn254>) -> Vec<u8> {
    let mut out = Vec::new();
    pk.serialize_uncompressed(&mut out)
        .expect("serializing into a Vec cannot fail");
    out
}

/// Reads a proving key. Its points are checked to be on the curve but not
/// for subgroup membership (that would take seconds); a key whose embedded
/// verifying key does not match the chain's is refused by the caller.
pub fn pk_from_bytes(bytes: &[u8]) -> Result<ProvingKey<Bn254>> {
    let pk = ProvingKey::<Bn254>::deserialize_uncompressed_unchecked(bytes)
        .map_err(|e| Error::MalformedKey(e.to_string()))?;
    let on_curve = pk
        .a_query
        .iter()
        .chain(&pk.b_g1_query)
        .chain(&pk.h_query)
        .chain(&pk.l_query)
        .all(|p| p.is_on_curve())
        && pk.b_g2_query.iter().all(|p| p.is_on_curve());
    if !on_curve {
        return Err(Error::MalformedKey("a proving-key point is not on the curve".into()));
    }
    Ok(pk)
}

/// A verifier: the prepared verifying key (e(α, β) and the negated G2
/// points precomputed once) and, per public input's point IC_j, the
/// multiples `d·2^(6w)·IC_j` for every 6-bit window `w` and digit
/// `d ≤ 32`, so preparing the inputs is one affine addition per non-zero
/// window (about 1.4 MB, built in a few milliseconds).
pub struct Verifier {
    pvk: PreparedVerifyingKey<Bn254>,
    /// Window tables of every IC_j (IC_0's for batches, whose combination
    /// multiplies it by the sum of their coefficients).
    inputs: Vec<msm::WindowTable<ark_bn254::g1::Config>>,
    /// α's, for batches.
    alpha: msm::WindowTable<ark_bn254::g1::Config>,
    /// β's line coefficients, for batch verification.
    beta: <Bn254 as Pairing>::G2Prepared,
    /// The inverse of the Miller loop of (α, β): what closes the product of
    /// a proof's loops to one, for the residue hint.
    alpha_beta_inv: Option<Fq12>,
}

impl Verifier {
    pub fn new(vk: &VerifyingKey) -> Verifier {
        Verifier {
            pvk: ark_groth16::prepare_verifying_key(vk),
            inputs: vk
                .gamma_abc_g1
                .par_iter()
                .map(|p| msm::WindowTable::new(p, 6))
                .collect(),
            alpha: msm::WindowTable::new(&vk.alpha_g1, 6),
            beta: vk.beta_g2.into(),
            alpha_beta_inv: Bn254::multi_miller_loop([vk.alpha_g1], [vk.beta_g2]).0.inverse(),
        }
    }

    pub fn vk(&self) -> &VerifyingKey {
        &self.pvk.vk
    }

    /// IC_0 + Σ inputs·IC_j.
    fn prepare_inputs(&self, inputs: &[Fr]) -> G1Projective {
        let mut acc = self.pvk.vk.gamma_abc_g1[0].into_group();
        for (table, x) in self.inputs.iter().skip(1).zip(inputs) {
            acc += table.mul(x);
        }
        acc
    }

    /// `e(A, B)·e(IC, -γ)·e(C, -δ) = e(α, β)`: with the proof's hint when it
    /// has one and it closes, else in full.
    pub fn verify(&self, statement: &Statement, proof: &UseProof) -> Result<()> {
        if self.hint_closes(statement, proof) {
            return Ok(());
        }
        self.verify_full(statement, &proof.0)
    }

    /// Whether the proof carries a hint that closes its relation (which
    /// proves it valid without the final exponentiation).
    pub fn hint_closes(&self, statement: &Statement, proof: &UseProof) -> bool {
        let (Some(hint), Some(ab_inv)) = (&proof.1, &self.alpha_beta_inv) else {
            return false;
        };
        let (folded, c_inv) = self.loops(statement, &proof.0, Some(&hint.c));
        c_inv.is_some_and(|c_inv| residue::closes(folded * ab_inv, hint, &c_inv))
    }

    /// The product of the statement's three Miller loops, with `c^(−(6x+2))`
    /// folded in when `c` is given (then also `c⁻¹`), the loops split over
    /// two threads: the calling thread prepares B and runs the loop of
    /// (A, B) and (C, −δ), one pool worker prepares the inputs' point and
    /// runs its loop. (`rayon::join` from a thread outside the pool would
    /// hand both halves to the pool and wake two workers in turn, which
    /// costs more than it saves here.)
    fn loops(&self, statement: &Statement, p: &ark_groth16::Proof<Bn254>, c: Option<&Fq12>) -> (Fq12, Option<Fq12>) {
        let pvk = &self.pvk;
        let inputs = statement.inputs();
        let mut ic = None;
        let ab_c = rayon::in_place_scope(|s| {
            s.spawn(|_| {
                let prepared = self.prepare_inputs(&inputs).into_affine();
                let pair = [(prepared, &pvk.gamma_g2_neg_pc)];
                ic = Some(match c.map(|c| (c, c.inverse())) {
                    Some((c, Some(c_inv))) => (residue::ate_loop(&pair, Some((&c_inv, c))), Some(c_inv)),
                    Some((_, None)) => (Fq12::one(), None),
                    None => (residue::ate_loop(&pair, None), None),
                });
            });
            Bn254::multi_miller_loop(
                [p.a, p.c],
                [<Bn254 as Pairing>::G2Prepared::from(p.b), pvk.delta_g2_neg_pc.clone()],
            )
            .0
        });
        match ic {
            Some((ic, c_inv)) => (ab_c * ic, c_inv),
            None => (Fq12::zero(), None),
        }
    }

    /// The check with one final exponentiation.
    fn verify_full(&self, statement: &Statement, p: &ark_groth16::Proof<Bn254>) -> Result<()> {
        let (ml, _) = self.loops(statement, p, None);
        match Bn254::final_exponentiation(ark_ec::pairing::MillerLoopOutput(ml)) {
            Some(v) if v.0 == self.pvk.alpha_g1_beta_g2 => Ok(()),
            _ => Err(Error::InvalidProof),
        }
    }

    /// The residue hint of a proof that verifies; `None` for one that
    /// does not.
    pub fn hint(&self, statement: &Statement, p: &ark_groth16::Proof<Bn254>) -> Option<Hint> {
        let (ml, _) = self.loops(statement, p, None);
        residue::find(&(ml * self.alpha_beta_inv?))
    }

    /// Verifies many proofs at once by a random linear combination: with
    /// 128-bit random `r_i` the check is
    /// `Π e(r_i·A_i, B_i) · e(-Σ r_i·α, β) · e(Σ r_i·IC_i, -γ) · e(Σ r_i·C_i, -δ) = 1`,
    /// one Miller loop per proof plus three and one final exponentiation.
    /// A false proof passes with probability about 2^-128. On failure the
    /// proofs are checked one by one to name the first bad one.
    ///
    /// Each `r_i` is drawn as `a_i + λ·b_i` from two 64-bit halves, so
    /// `r_i·A_i` is two 64-bit multiplications sharing their doublings (see
    /// [`msm::mul_glv_halves`]); the Miller loops run in one chunk per core,
    /// each chunk's pairs sharing the loop's squarings.
    pub fn verify_batch<R: RngCore + CryptoRng>(
        &self,
        items: &[(Statement, UseProof)],
        rng: &mut R,
    ) -> Result<(), (usize, Error)> {
        match items {
            [] => return Ok(()),
            // One proof: its hint is cheaper than a combination's loops.
            [(s, p)] => return self.verify(s, p).map_err(|e| (0, e)),
            _ => {}
        }
        let halves: Vec<(u64, u64)> = items.iter().map(|_| (rng.next_u64(), rng.next_u64())).collect();
        let rs: Vec<Fr> = halves.iter().map(|(a, b)| msm::glv_scalar(*a, *b)).collect();
        // Σ r_i·IC_i = IC_0·Σ r_i + Σ_j (Σ_i r_i·x_ij)·IC_j, from the window tables.
        let mut coeffs = vec![Fr::zero(); PUBLIC_INPUTS + 1];
        for ((s, _), r) in items.iter().zip(&rs) {
            coeffs[0] += r;
            for (c, x) in coeffs[1..].iter_mut().zip(s.inputs()) {
                *c += *r * x;
            }
        }
        let ic: G1Projective = self.inputs.iter().zip(&coeffs).map(|(t, c)| t.mul(c)).sum();
        let alpha = self.alpha.mul(&coeffs[0]);
        // Σ r_i·C_i = Σ a_i·C_i + Σ b_i·φ(C_i): 64-bit scalars.
        let (cs, ks): (Vec<G1Affine>, Vec<u64>) = items
            .iter()
            .zip(&halves)
            .flat_map(|((_, p), (a, b))| [(p.0.c, *a), (msm::endomorphism(&p.0.c), *b)])
            .unzip();
        let c = msm::msm_u64(&cs, &ks);
        // r_i·A_i and B_i's line coefficients, on every core.
        let (scaled_a, mut g2): (Vec<G1Projective>, Vec<<Bn254 as Pairing>::G2Prepared>) = items
            .par_iter()
            .zip(&halves)
            .map(|((_, p), (a, b))| (msm::mul_glv_halves(&p.0.a, *a, *b), p.0.b.into()))
            .unzip();
        let mut g1: Vec<G1Affine> = G1Projective::normalize_batch(&scaled_a);
        g1.extend(G1Projective::normalize_batch(&[-alpha, ic, c]));
        g2.extend([
            self.beta.clone(),
            self.pvk.gamma_g2_neg_pc.clone(),
            self.pvk.delta_g2_neg_pc.clone(),
        ]);
        let pairs: Vec<(G1Affine, &<Bn254 as Pairing>::G2Prepared)> = g1.into_iter().zip(&g2).collect();
        let chunk = pairs.len().div_ceil(rayon::current_num_threads().max(1));
        let ml: Fq12 = pairs.par_chunks(chunk).map(|c| residue::ate_loop(c, None)).product();
        let ok = Bn254::final_exponentiation(ark_ec::pairing::MillerLoopOutput(ml))
            .is_some_and(|v| v.0 == <Bn254 as Pairing>::TargetField::from(1u64));
        if ok {
            return Ok(());
        }
        for (i, (s, p)) in items.iter().enumerate() {
            self.verify(s, p).map_err(|e| (i, e))?;
        }
        // The combination failed but each proof verifies: impossible unless
        // the randomness repeated; refuse rather than accept.
        Err((0, Error::InvalidProof))
    }
}
