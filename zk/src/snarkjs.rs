//! Keys and proofs in snarkjs's JSON (`snarkjs groth16 verify
//! verification_key.json public.json proof.json`).
//!
//! snarkjs writes curve points as projective coordinates in decimal
//! strings with z = 1: G1 `[x, y, "1"]`, G2 `[[x.c0, x.c1], [y.c0, y.c1],
//! ["1", "0"]]` (each Fp2 element as `[c0, c1]`, real part first). The
//! verification key's `IC` is arkworks' `gamma_abc_g1`; `vk_alphabeta_12`
//! is e(α, β) as snarkjs lays out Fp12 (`[[[c0, c1] × 3] × 2]`).
//! `public.json` lists the public inputs in circuit order as decimal strings.

use crate::circuit::Statement;
use crate::field::FieldBytes;
use crate::groth16::{UseProof, VerifyingKey};
use crate::Bn254;
use ark_bn254::{Fq, Fq2, G1Affine, G2Affine};
use ark_ec::pairing::Pairing;
use ark_ff::PrimeField;
use serde_json::{json, Value};

fn fq(x: &Fq) -> String {
    x.into_bigint().to_string()
}

fn fq2(x: &Fq2) -> Value {
    json!([fq(&x.c0), fq(&x.c1)])
}

fn g1(p: &G1Affine) -> Value {
    json!([fq(&p.x), fq(&p.y), "1"])
}

fn g2(p: &G2Affine) -> Value {
    json!([fq2(&p.x), fq2(&p.y), ["1", "0"]])
}

pub fn verification_key(vk: &VerifyingKey) -> Value {
    let ab = Bn254::pairing(vk.alpha_g1, vk.beta_g2).0;
    let fq6 = |x: &ark_bn254::Fq6| json!([fq2(&x.c0), fq2(&x.c1), fq2(&x.c2)]);
    json!({
        "protocol": "groth16",
        "curve": "bn128",
        "nPublic": vk.gamma_abc_g1.len() - 1,
        "vk_alpha_1": g1(&vk.alpha_g1),
        "vk_beta_2": g2(&vk.beta_g2),
        "vk_gamma_2": g2(&vk.gamma_g2),
        "vk_delta_2": g2(&vk.delta_g2),
        "vk_alphabeta_12": [fq6(&ab.c0), fq6(&ab.c1)],
        "IC": vk.gamma_abc_g1.iter().map(g1).collect::<Vec<_>>(),
    })
}

pub fn proof(p: &UseProof) -> Value {
    json!({
        "pi_a": g1(&p.0.a),
        "pi_b": g2(&p.0.b),
        "pi_c": g1(&p.0.c),
        "protocol": "groth16",
        "curve": "bn128",
    })
}

pub fn public(s: &Statement) -> Value {
    Value::Array(
        s.inputs()
            .iter()
            .map(|x| Value::String(FieldBytes::of(x).to_decimal()))
            .collect(),
    )
}
