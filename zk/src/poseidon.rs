//! Poseidon over BN254 with circomlib's parameters (x^5, 8 full rounds,
//! circomlib's partial-round counts, round constants and MDS matrices).
//!
//! Natively this is `light-poseidon`; in R1CS it is arkworks' Poseidon
//! permutation (`ark-crypto-primitives`' sponge gadget) configured with the
//! same constants. circomlib's hash of `n` inputs is the first state
//! element after one permutation of `[0, in_1, …, in_n]`; the sponge keeps
//! its capacity element first, so absorbing the inputs and squeezing once
//! leaves exactly that state, and the hash is its element 0.

use crate::circuit::Trace;
use crate::Fr;
use ark_crypto_primitives::sponge::constraints::CryptographicSpongeVar;
use ark_crypto_primitives::sponge::poseidon::constraints::PoseidonSpongeVar;
use ark_crypto_primitives::sponge::poseidon::PoseidonConfig;
use ark_ff::{Field, Zero};
use ark_r1cs_std::fields::fp::FpVar;
use ark_relations::r1cs::{ConstraintSystemRef, SynthesisError};
use light_poseidon::{Poseidon, PoseidonHasher};
use std::sync::OnceLock;

/// Most inputs one hash takes here (circomlib goes to 16; light-poseidon to 12).
pub const MAX_INPUTS: usize = 12;

fn configs() -> &'static [PoseidonConfig<Fr>] {
    static CONFIGS: OnceLock<Vec<PoseidonConfig<Fr>>> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        (1..=MAX_INPUTS)
            .map(|n| {
                let width = n + 1;
                let p = light_poseidon::parameters::bn254_x5::get_poseidon_parameters::<Fr>(width as u8)
                    .expect("light-poseidon has circomlib parameters for widths 2 to 13");
                PoseidonConfig {
                    full_rounds: p.full_rounds,
                    partial_rounds: p.partial_rounds,
                    alpha: p.alpha,
                    ark: p.ark.chunks(width).map(<[Fr]>::to_vec).collect(),
                    mds: p.mds,
                    rate: n,
                    capacity: 1,
                }
            })
            .collect()
    })
}

/// The arkworks configuration of circomlib's Poseidon for `n` inputs.
pub fn config(n: usize) -> &'static PoseidonConfig<Fr> {
    assert!((1..=MAX_INPUTS).contains(&n), "Poseidon takes 1 to {MAX_INPUTS} inputs");
    &configs()[n - 1]
}

/// circomlib's `Poseidon(n)` of `inputs`, natively.
pub fn hash(inputs: &[Fr]) -> Fr {
    assert!(
        (1..=MAX_INPUTS).contains(&inputs.len()),
        "Poseidon takes 1 to {MAX_INPUTS} inputs"
    );
    let mut h = Poseidon::<Fr>::new_circom(inputs.len()).expect("widths 2 to 13 exist");
    h.hash(inputs).expect("the input count matches the width")
}

/// circomlib's `Poseidon(n)` of `inputs`, as constraints.
pub fn hash_var(cs: ConstraintSystemRef<Fr>, inputs: &[FpVar<Fr>]) -> Result<FpVar<Fr>, SynthesisError> {
    assert!(
        (1..=MAX_INPUTS).contains(&inputs.len()),
        "Poseidon takes 1 to {MAX_INPUTS} inputs"
    );
    let mut sponge = PoseidonSpongeVar::new(cs, config(inputs.len()));
    sponge.absorb(&inputs.to_vec())?;
    // Squeezing permutes the absorbed state once; circomlib's output is the
    // permuted state's first (capacity) element, not the squeezed one.
    sponge.squeeze_field_elements(1)?;
    Ok(sponge.state[0].clone())
}

/// circomlib's `Poseidon(n)` of `inputs` computed natively the way
/// [`hash_var`] computes it in R1CS, appending to `trace` the values of
/// the witness variables the gadget allocates, in its order: `x²`, `x⁴`,
/// `x⁵` for each S-box whose input is not a constant (arkworks' gadget
/// keeps a constant constant, so the capacity element's first S-box
/// allocates nothing), and its constraints' A and B values: `x·x = x²`,
/// `x²·x² = x⁴`, `x⁴·x = x⁵` (its `pow_by_constant`, square and multiply).
/// The inputs are taken as variables, as in the circuit.
pub(crate) fn hash_witness(inputs: &[Fr], trace: &mut Trace) -> Fr {
    let p = config(inputs.len());
    // (value, is a variable); the sponge starts from constant zeros.
    let mut state: Vec<(Fr, bool)> = std::iter::once((Fr::zero(), false))
        .chain(inputs.iter().map(|x| (*x, true)))
        .collect();
    let half = p.full_rounds / 2;
    let mut next = vec![(Fr::zero(), false); state.len()];
    for round in 0..p.full_rounds + p.partial_rounds {
        for (s, c) in state.iter_mut().zip(&p.ark[round]) {
            s.0 += c;
        }
        let full = round < half || round >= half + p.partial_rounds;
        let boxed = if full { state.len() } else { 1 };
        for s in &mut state[..boxed] {
            let x2 = s.0.square();
            let x4 = x2.square();
            let x5 = x4 * s.0;
            if s.1 {
                trace.full.extend([x2, x4, x5]);
                trace.row(s.0, s.0);
                trace.row(x2, x2);
                trace.row(x4, s.0);
            }
            s.0 = x5;
        }
        for (row, n) in p.mds.iter().zip(next.iter_mut()) {
            *n = row
                .iter()
                .zip(&state)
                .fold((Fr::zero(), false), |(acc, var), (m, s)| (acc + *m * s.0, var || s.1));
        }
        std::mem::swap(&mut state, &mut next);
    }
    state[0].0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::FieldBytes;
    use ark_ff::UniformRand;
    use ark_r1cs_std::alloc::AllocVar;
    use ark_r1cs_std::R1CSVar;
    use ark_relations::r1cs::ConstraintSystem;

    fn hex(f: Fr) -> String {
        FieldBytes::of(&f).to_hex()
    }

    /// circomlib's published vectors (circomlibjs test/poseidon.js: [1, 2] and [1, 2, 3, 4],
    /// and light-poseidon's all-ones table from circomlibjs).
    #[test]
    fn circomlib_vectors() {
        let f = Fr::from;
        assert_eq!(
            hex(hash(&[f(1), f(2)])),
            "115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a"
        );
        assert_eq!(
            hex(hash(&[f(1), f(2), f(3), f(4)])),
            "299c867db6c1fdd79dcefa40e4510b9837e60ebb1ce0663dbaa525df65250465"
        );
        let ones = [
            "29176100eaa962bdc1fe6c654d6a3c130e96a4d1168b33848b897dc502820133",
            "007af346e2d304279e79e0a9f3023f771294a78acb70e73f90afe27cad401e81",
            "02c0066e10a72abd2b33c3b214cb3e81bcb1b6e30961cd23c202b18673bf2543",
            "082c9c370a0d24f4416fbc414a37681f78442d27d86385991c17d6fc0c4b7d71",
            "10389605ae688d4f14db853122c47d66a803c72b41589cb1bf868741b206b9bb",
            "2a73f679328c3eab724aa3e5bdbf50b39035d7729f135b9709890f85c5dc5e76",
        ];
        for (n, want) in ones.iter().enumerate() {
            assert_eq!(hex(hash(&vec![f(1); n + 1])), *want, "{} ones", n + 1);
        }
    }

    /// The gadget computes the native hash, on random inputs of every arity
    /// the circuit uses, and costs what circomlib's circuit costs.
    #[test]
    fn gadget_matches_native() {
        let mut rng = rand::thread_rng();
        for n in [1, 2, 3, 5, 6] {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let inputs: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
            let vars: Vec<FpVar<Fr>> = inputs
                .iter()
                .map(|x| FpVar::new_witness(cs.clone(), || Ok(*x)))
                .collect::<Result<_, _>>()
                .expect("witnesses");
            let out = hash_var(cs.clone(), &vars).expect("gadget");
            assert_eq!(out.value().expect("value"), hash(&inputs), "{n} inputs");
            assert!(cs.is_satisfied().expect("satisfiable"));
            if n == 2 {
                assert_eq!(cs.num_constraints(), 240, "circomlib's Poseidon(2) costs 240");
            }
        }
    }
}
