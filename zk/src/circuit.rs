//! The authorized-use statement.
//!
//! Public inputs, in this order (snarkjs's `public.json` has the same):
//! `root, dataset, action, time, request, nullifier, escrow_tag, terms`.
//!
//! The prover knows a grant commitment
//! `C = Poseidon(dataset, packed, terms, Poseidon(secret), salt)` with
//! `packed = actions + 4·max_uses + 2^18·not_after`, and a path from `C` to
//! `root` in the grant tree, such that:
//! - the grant's `dataset` and `terms` digest are the public ones;
//! - its action bits include the public `action` (0 download, 1 query);
//! - `time < not_after` (seconds; the difference is a 40-bit number);
//! - the use index `k` (16 bits) is below `max_uses` (16 bits);
//! - `nullifier = Poseidon(secret, salt, k)`;
//! - `escrow_tag = Poseidon(C, k, r)` for some `r` (the auditor's opening).
//!
//! The request digest is a public input that no constraint reads: the
//! Groth16 reduction adds one row per public input, so the proof is bound
//! to it all the same (a proof for one request fails for any other).
//!
//! Cost, in constraints: 20 levels × (240 Poseidon + 1 select + 1 bit) =
//! 4,840; the commitment (5 inputs) 321; the secret's hash 213; the
//! nullifier and the escrow tag 261 each; range checks 2 + 16 + 16 + 17 +
//! 41; the action 1; the root 1: 5,992 in all. Packing the three small
//! terms into one input saves a Poseidon width (33) at the price of the
//! 16-bit check on `max_uses` that keeps the packing unambiguous.

use crate::poseidon::{hash, hash_var, hash_witness};
use crate::tree::{MerklePath, DEPTH};
use crate::{Error, Fr, Result};
use ark_ff::{AdditiveGroup, Field, One, Zero};
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::boolean::Boolean;
use ark_r1cs_std::eq::EqGadget;
use ark_r1cs_std::fields::fp::FpVar;
use ark_r1cs_std::fields::FieldVar;
use ark_r1cs_std::select::CondSelectGadget;
use ark_relations::r1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};

/// Bits of a use index and of `max_uses`: a private grant allows at most 65,535 uses.
pub const USE_BITS: usize = 16;
pub const MAX_USES: u64 = (1 << USE_BITS) - 1;
/// Bits of `not_after - time - 1`, in seconds (about 34,000 years).
pub const TIME_BITS: usize = 40;
/// Action bits: bit 0 download, bit 1 query.
pub const ACTION_BITS: u8 = 2;
/// Number of public inputs.
pub const PUBLIC_INPUTS: usize = 8;
/// Names of the public inputs, in order.
pub const PUBLIC_NAMES: [&str; PUBLIC_INPUTS] = [
    "root",
    "dataset",
    "action",
    "time",
    "request",
    "nullifier",
    "escrow_tag",
    "terms",
];

/// The grant's fields that its commitment binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantFields {
    /// The dataset id (16 bytes) as a number.
    pub dataset: Fr,
    /// Bit 0 download, bit 1 query.
    pub actions: u8,
    /// End of validity, seconds since the epoch (a use needs `time < not_after`).
    pub not_after: u64,
    pub max_uses: u64,
    /// A digest of the terms the provider must enforce on a query (columns,
    /// filter, masks, aggregation, row cap), reduced into the field.
    pub terms: Fr,
    /// Poseidon(secret): the consumer's secret stays with the consumer.
    pub secret_hash: Fr,
    pub salt: Fr,
}

impl GrantFields {
    /// Checks the ranges the circuit relies on.
    pub fn validate(&self) -> Result<()> {
        if self.actions == 0 || self.actions >= 1 << ACTION_BITS {
            return Err(Error::Unprovable(
                "actions are bit 0 (download) and bit 1 (query)".into(),
            ));
        }
        if self.max_uses > MAX_USES {
            return Err(Error::Unprovable(format!(
                "a private grant allows at most {MAX_USES} uses"
            )));
        }
        if self.not_after >= 1 << (TIME_BITS - 1) {
            return Err(Error::Unprovable("the validity end is too far in the future".into()));
        }
        Ok(())
    }

    pub fn packed(&self) -> Fr {
        Fr::from(u64::from(self.actions)) + Fr::from(4 * self.max_uses) + Fr::from(self.not_after) * pow2(18)
    }

    /// The grant commitment: its leaf in the grant tree.
    pub fn commitment(&self) -> Fr {
        hash(&[self.dataset, self.packed(), self.terms, self.secret_hash, self.salt])
    }
}

fn pow2(n: u64) -> Fr {
    Fr::from(2u64).pow([n])
}

pub fn secret_hash(secret: &Fr) -> Fr {
    hash(&[*secret])
}

/// One use's nullifier: the same for the same grant and use index, unlinkable otherwise.
pub fn nullifier(secret: &Fr, salt: &Fr, k: u64) -> Fr {
    hash(&[*secret, *salt, Fr::from(k)])
}

/// The escrow tag: binds the grant (its commitment), the use index and `r`.
pub fn escrow_tag(commitment: &Fr, k: u64, r: &Fr) -> Fr {
    hash(&[*commitment, Fr::from(k), *r])
}

/// The public inputs of one use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub root: Fr,
    pub dataset: Fr,
    /// 0 download, 1 query.
    pub action: u8,
    /// Seconds since the epoch.
    pub time: u64,
    pub request: Fr,
    pub nullifier: Fr,
    pub escrow_tag: Fr,
    pub terms: Fr,
}

impl Statement {
    pub fn inputs(&self) -> [Fr; PUBLIC_INPUTS] {
        [
            self.root,
            self.dataset,
            Fr::from(u64::from(self.action)),
            Fr::from(self.time),
            self.request,
            self.nullifier,
            self.escrow_tag,
            self.terms,
        ]
    }
}

/// What only the consumer knows.
#[derive(Clone, Debug)]
pub struct UseWitness {
    pub grant: GrantFields,
    pub secret: Fr,
    pub path: MerklePath,
    /// The use index: 0 for the first use, up to `max_uses - 1`.
    pub k: u64,
    /// The escrow tag's randomness (in the auditor's opening).
    pub escrow_randomness: Fr,
}

impl UseWitness {
    /// The statement this witness proves for `action`, `time` and `request`.
    pub fn statement(&self, action: u8, time: u64, request: Fr) -> Statement {
        let c = self.grant.commitment();
        Statement {
            root: self.path.root(c),
            dataset: self.grant.dataset,
            action,
            time,
            request,
            nullifier: nullifier(&self.secret, &self.grant.salt, self.k),
            escrow_tag: escrow_tag(&c, self.k, &self.escrow_randomness),
            terms: self.grant.terms,
        }
    }

    /// Checks natively what the circuit will check, so a use that cannot be
    /// proven is refused with its reason rather than with a bad proof.
    pub fn check(&self, s: &Statement) -> Result<()> {
        self.grant.validate()?;
        let g = &self.grant;
        if secret_hash(&self.secret) != g.secret_hash {
            return Err(Error::Unprovable(
                "the secret does not match the grant's secret hash".into(),
            ));
        }
        if self.path.siblings.len() != DEPTH {
            return Err(Error::Unprovable(format!("a path has {DEPTH} siblings")));
        }
        let c = g.commitment();
        if self.path.root(c) != s.root {
            return Err(Error::Unprovable("the grant is not in the tree at this root".into()));
        }
        if g.dataset != s.dataset || g.terms != s.terms {
            return Err(Error::Unprovable(
                "the grant is for another dataset or other terms".into(),
            ));
        }
        if s.action >= ACTION_BITS || g.actions >> s.action & 1 == 0 {
            return Err(Error::Unprovable("the grant does not allow this action".into()));
        }
        if s.time >= g.not_after || g.not_after - s.time > 1 << TIME_BITS {
            return Err(Error::Unprovable("the grant has expired".into()));
        }
        if self.k >= g.max_uses {
            return Err(Error::Unprovable(format!(
                "use {} is past the grant's {} uses",
                self.k + 1,
                g.max_uses
            )));
        }
        // The rest of the statement: what `statement` would compute, without
        // hashing the path a second time.
        if s.nullifier != nullifier(&self.secret, &g.salt, self.k)
            || s.escrow_tag != escrow_tag(&c, self.k, &self.escrow_randomness)
        {
            return Err(Error::Unprovable(
                "the nullifier or escrow tag is not this use's".into(),
            ));
        }
        Ok(())
    }

    /// A witness of the right shape, for key generation (values unused).
    pub fn dummy() -> UseWitness {
        UseWitness {
            grant: GrantFields {
                dataset: Fr::zero(),
                actions: 1,
                not_after: 1,
                max_uses: 1,
                terms: Fr::zero(),
                secret_hash: Fr::zero(),
                salt: Fr::zero(),
            },
            secret: Fr::zero(),
            path: MerklePath {
                index: 0,
                siblings: vec![Fr::zero(); DEPTH],
            },
            k: 0,
            escrow_randomness: Fr::zero(),
        }
    }
}

/// The tree levels after which a prover's cache starts a new segment. Upper
/// levels change more often (every new grant far away changes the top),
/// lower ones seldom once a grant's neighbours are filled; segments of a
/// few levels keep each multi-scalar multiplication large enough to be
/// efficient (one of 240 points costs about 1.7 times as much per point as
/// one of 6,000). The top three levels share the last segment with the use
/// itself: in a mature tree (2^17 grants and more) they change at every
/// use, so one multiplication over all of it beats three smaller ones.
const SEGMENT_ENDS: [usize; 4] = [4, 9, 13, 16];

/// The circuit: a statement and its witness.
#[derive(Clone, Debug)]
pub struct UseCircuit {
    pub statement: Statement,
    pub witness: UseWitness,
}

impl UseCircuit {
    /// The circuit's shape, for key generation and the constraint matrices.
    pub fn blank() -> UseCircuit {
        let witness = UseWitness::dummy();
        UseCircuit {
            statement: witness.statement(0, 0, Fr::zero()),
            witness,
        }
    }
}

/// `n` little-endian bits of `value`, each constrained to be a bit.
pub(crate) fn bits(cs: &ConstraintSystemRef<Fr>, value: u64, n: usize) -> Result<Vec<Boolean<Fr>>, SynthesisError> {
    (0..n)
        .map(|i| Boolean::new_witness(cs.clone(), || Ok(value >> i & 1 == 1)))
        .collect()
}

/// The number the bits spell (a linear combination: no constraint).
pub(crate) fn number(bits: &[Boolean<Fr>]) -> FpVar<Fr> {
    let mut acc = FpVar::zero();
    let mut power = Fr::one();
    for b in bits {
        acc += FpVar::from(b.clone()) * power;
        power.double_in_place();
    }
    acc
}

/// A run of the circuit computed natively: the full assignment (`1`, the
/// public inputs, then every witness variable) and, per constraint in
/// order, the values of its A and B linear combinations. For a satisfying
/// assignment C's value is their product, so a prover needs no
/// matrix-vector product at all (the B side of a Poseidon S-box in a
/// partial round is a combination of some sixty variables).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    pub full: Vec<Fr>,
    pub a: Vec<Fr>,
    pub b: Vec<Fr>,
}

impl Trace {
    pub(crate) fn var(&mut self, v: Fr) {
        self.full.push(v);
    }

    pub(crate) fn row(&mut self, a: Fr, b: Fr) {
        self.a.push(a);
        self.b.push(b);
    }

    /// `n` bits of `value` (each a variable and the constraint
    /// `(1 − b)·b = 0`); answers the number they spell.
    fn bits(&mut self, value: u64, n: usize) -> Fr {
        let mut number = Fr::zero();
        let mut power = Fr::one();
        for i in 0..n {
            let bit = Fr::from(value >> i & 1 == 1);
            self.var(bit);
            self.row(Fr::one() - bit, bit);
            number += bit * power;
            power.double_in_place();
        }
        number
    }

    /// An equality `(lhs − rhs)·1 = 0`.
    fn equal(&mut self, lhs: Fr, rhs: Fr) {
        self.row(lhs - rhs, Fr::one());
    }
}

impl UseCircuit {
    /// The assignment and each constraint's A and B values, computed
    /// natively: the same values in the same order as synthesis gives and
    /// the constraint matrices multiply out to, without building the
    /// constraint system's linear combinations (about a tenth of the time).
    /// A prover that holds the matrices needs nothing else; the tests check
    /// both against synthesis and the matrices.
    pub fn trace(&self) -> Trace {
        let (s, w) = (&self.statement, &self.witness);
        let g = &w.grant;
        // 1, the inputs and 6,010 witness variables; 5,992 constraints.
        let mut t = Trace {
            full: Vec::with_capacity(1 + PUBLIC_INPUTS + 6_010),
            a: Vec::with_capacity(6_000),
            b: Vec::with_capacity(6_000),
        };
        t.var(Fr::one());
        t.full.extend(s.inputs());
        t.full.extend([w.secret, g.salt]);
        let a0 = Fr::from(g.actions & 1 == 1);
        let a1 = Fr::from(g.actions >> 1 & 1 == 1);
        let actions = t.bits(u64::from(g.actions), ACTION_BITS as usize);
        let m = t.bits(g.max_uses, USE_BITS);
        let end = Fr::from(g.not_after);
        t.var(end);
        let packed = actions + m * Fr::from(4u64) + end * pow2(18);
        let secret_hash = hash_witness(&[w.secret], &mut t);
        let leaf = hash_witness(&[s.dataset, packed, s.terms, secret_hash, g.salt], &mut t);
        let mut cur = leaf;
        for level in 0..DEPTH {
            let right_side = Fr::from(w.path.index >> level & 1 == 1);
            let sibling = w.path.siblings.get(level).copied().unwrap_or_default();
            let left = if right_side.is_one() { sibling } else { cur };
            t.var(right_side);
            t.row(Fr::one() - right_side, right_side);
            t.var(sibling);
            t.var(left);
            // cond·(true − false) = result − false
            t.row(right_side, sibling - cur);
            cur = hash_witness(&[left, cur + sibling - left], &mut t);
        }
        t.equal(cur, s.root);
        let k = t.bits(w.k, USE_BITS);
        let spare = g.max_uses.wrapping_sub(1).wrapping_sub(w.k) & MAX_USES;
        let spare = t.bits(spare, USE_BITS);
        t.equal(spare, m - k - Fr::one());
        let time = Fr::from(s.time);
        let left = g.not_after.wrapping_sub(s.time).wrapping_sub(1) & ((1 << TIME_BITS) - 1);
        let left = t.bits(left, TIME_BITS);
        t.equal(left, end - time - Fr::one());
        t.row(Fr::from(u64::from(s.action)), a1 - a0);
        let nullifier = hash_witness(&[w.secret, g.salt, k], &mut t);
        t.equal(nullifier, s.nullifier);
        t.var(w.escrow_randomness);
        let tag = hash_witness(&[leaf, k, w.escrow_randomness], &mut t);
        t.equal(tag, s.escrow_tag);
        t
    }
}

impl ConstraintSynthesizer<Fr> for UseCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        self.synthesize(cs, &mut Vec::new())
    }
}

impl UseCircuit {
    /// The constraints, in an order that keeps what changes between a
    /// grant's uses apart: the grant's own part (secret, terms, commitment),
    /// then each tree level, then the use (index, time, nullifier, tag).
    /// `marks` gets the witness-variable count at each boundary (after the
    /// grant's part and the lowest tree levels, then after groups of upper
    /// levels), so a prover can reuse the parts of a proof whose witness
    /// values did not change.
    pub fn synthesize(self, cs: ConstraintSystemRef<Fr>, marks: &mut Vec<usize>) -> Result<(), SynthesisError> {
        let (s, w) = (&self.statement, &self.witness);
        let input = |v: Fr| FpVar::new_input(cs.clone(), || Ok(v));
        let [root, dataset, action, time, request, nullifier, tag, terms] = s.inputs();
        let (root, dataset, action, time) = (input(root)?, input(dataset)?, input(action)?, input(time)?);
        let _request = input(request)?;
        let (nullifier, tag, terms) = (input(nullifier)?, input(tag)?, input(terms)?);

        let witness = |v: Fr| FpVar::new_witness(cs.clone(), || Ok(v));
        let g = &w.grant;
        let secret = witness(w.secret)?;
        let salt = witness(g.salt)?;
        let a = bits(&cs, u64::from(g.actions), ACTION_BITS as usize)?;
        let m_bits = bits(&cs, g.max_uses, USE_BITS)?;
        let m = number(&m_bits);
        let end = witness(Fr::from(g.not_after))?;
        let packed = number(&a) + &m * Fr::from(4u64) + &end * pow2(18);

        let secret_hash = hash_var(cs.clone(), std::slice::from_ref(&secret))?;
        let leaf = hash_var(cs.clone(), &[dataset, packed, terms, secret_hash, salt.clone()])?;

        let mut cur = leaf.clone();
        for level in 0..DEPTH {
            let right_side = Boolean::new_witness(cs.clone(), || Ok(w.path.index >> level & 1 == 1))?;
            let sibling = witness(w.path.siblings.get(level).copied().unwrap_or_default())?;
            let left = FpVar::conditionally_select(&right_side, &sibling, &cur)?;
            let right = &cur + &sibling - &left;
            cur = hash_var(cs.clone(), &[left, right])?;
            if SEGMENT_ENDS.contains(&level) {
                marks.push(cs.num_witness_variables());
            }
        }
        cur.enforce_equal(&root)?;

        // k < max_uses: k and max_uses - 1 - k are both 16-bit numbers.
        let k_bits = bits(&cs, w.k, USE_BITS)?;
        let k = number(&k_bits);
        let spare = g.max_uses.wrapping_sub(1).wrapping_sub(w.k) & MAX_USES;
        number(&bits(&cs, spare, USE_BITS)?).enforce_equal(&(&m - &k - Fr::one()))?;

        // time < not_after: not_after - time - 1 is a 40-bit number.
        let left = g.not_after.wrapping_sub(s.time).wrapping_sub(1) & ((1 << TIME_BITS) - 1);
        number(&bits(&cs, left, TIME_BITS)?).enforce_equal(&(&end - &time - Fr::one()))?;

        // The public action's bit is set: action·(a1 - a0) = 1 - a0.
        let (a0, a1) = (FpVar::from(a[0].clone()), FpVar::from(a[1].clone()));
        action.mul_equals(&(&a1 - &a0), &(FpVar::one() - &a0))?;

        hash_var(cs.clone(), &[secret, salt, k.clone()])?.enforce_equal(&nullifier)?;
        let r = witness(w.escrow_randomness)?;
        hash_var(cs.clone(), &[leaf, k, r])?.enforce_equal(&tag)?;
        Ok(())
    }
}
