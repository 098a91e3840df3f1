//! The same statement written the straightforward way, kept for `bench zk`
//! to show what the circuit work saves: every grant field a separate
//! commitment input (Poseidon of 6), 64-bit range checks on both
//! comparisons, action sets as 8-bit masks matched bit by bit against a
//! one-hot public action, and two selects per tree level. It is proven with
//! arkworks' plain `Groth16::prove`, which synthesizes the circuit and
//! builds its matrices anew for every proof.

use crate::circuit::{bits, number, Statement, UseWitness};
use crate::poseidon::hash_var;
use crate::tree::DEPTH;
use crate::Fr;
use ark_ff::One;
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::boolean::Boolean;
use ark_r1cs_std::eq::EqGadget;
use ark_r1cs_std::fields::fp::FpVar;
use ark_r1cs_std::fields::FieldVar;
use ark_r1cs_std::select::CondSelectGadget;
use ark_relations::r1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};

/// The naive circuit's commitment: Poseidon(dataset, actions, not_after, max_uses, terms, secret_hash, salt)
/// would be 7 inputs; it keeps the six fields and hashes the terms digest with the dataset.
pub struct NaiveCircuit {
    pub statement: Statement,
    pub witness: UseWitness,
}

const WIDE: usize = 64;

impl ConstraintSynthesizer<Fr> for NaiveCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let (s, w) = (&self.statement, &self.witness);
        let input = |v: Fr| FpVar::new_input(cs.clone(), || Ok(v));
        let [root, dataset, action, time, request, nullifier, tag, terms] = s.inputs();
        let (root, dataset, _action, time) = (input(root)?, input(dataset)?, input(action)?, input(time)?);
        let _request = input(request)?;
        let (nullifier, tag, terms) = (input(nullifier)?, input(tag)?, input(terms)?);
        let witness = |v: Fr| FpVar::new_witness(cs.clone(), || Ok(v));
        let g = &w.grant;
        let secret = witness(w.secret)?;
        let salt = witness(g.salt)?;
        let actions = bits(&cs, u64::from(g.actions), 8)?;
        let wanted = bits(&cs, 1 << s.action, 8)?;
        let end = witness(Fr::from(g.not_after))?;
        let max = witness(Fr::from(g.max_uses))?;
        let secret_hash = hash_var(cs.clone(), std::slice::from_ref(&secret))?;
        let scope = hash_var(cs.clone(), &[dataset, terms])?;
        let leaf = hash_var(
            cs.clone(),
            &[
                scope,
                number(&actions),
                end.clone(),
                max.clone(),
                secret_hash,
                salt.clone(),
            ],
        )?;
        let mut cur = leaf.clone();
        for level in 0..DEPTH {
            let bit = Boolean::new_witness(cs.clone(), || Ok(w.path.index >> level & 1 == 1))?;
            let sibling = witness(w.path.siblings[level])?;
            let left = FpVar::conditionally_select(&bit, &sibling, &cur)?;
            let right = FpVar::conditionally_select(&bit, &cur, &sibling)?;
            cur = hash_var(cs.clone(), &[left, right])?;
        }
        cur.enforce_equal(&root)?;
        let k_bits = bits(&cs, w.k, WIDE)?;
        let k = number(&k_bits);
        let spare = g.max_uses.wrapping_sub(1).wrapping_sub(w.k);
        number(&bits(&cs, spare, WIDE)?).enforce_equal(&(&max - &k - Fr::one()))?;
        let left = g.not_after.wrapping_sub(s.time).wrapping_sub(1);
        number(&bits(&cs, left, WIDE)?).enforce_equal(&(&end - &time - Fr::one()))?;
        let mut hit = FpVar::zero();
        for (a, b) in actions.iter().zip(&wanted) {
            hit += FpVar::from(a.clone()) * FpVar::from(b.clone());
        }
        hit.enforce_equal(&FpVar::one())?;
        hash_var(cs.clone(), &[secret, salt, k.clone()])?.enforce_equal(&nullifier)?;
        let r = witness(w.escrow_randomness)?;
        hash_var(cs.clone(), &[leaf, k, r])?.enforce_equal(&tag)?;
        Ok(())
    }
}

/// The naive circuit's commitment of the witness's grant.
pub fn commitment(w: &UseWitness) -> Fr {
    use crate::poseidon::hash;
    let g = &w.grant;
    let scope = hash(&[g.dataset, g.terms]);
    hash(&[
        scope,
        Fr::from(u64::from(g.actions)),
        Fr::from(g.not_after),
        Fr::from(g.max_uses),
        g.secret_hash,
        g.salt,
    ])
}

/// The statement the naive circuit proves for `w` (its own leaf, path root and tag).
pub fn statement(w: &UseWitness, action: u8, time: u64, request: Fr) -> Statement {
    let c = commitment(w);
    let mut s = w.statement(action, time, request);
    s.root = w.path.root(c);
    s.escrow_tag = crate::circuit::escrow_tag(&c, w.k, &w.escrow_randomness);
    s
}
