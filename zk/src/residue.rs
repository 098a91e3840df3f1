//! Verification without the final exponentiation: a residue hint.
//!
//! A Groth16 check is "the final exponentiation of a Miller-loop product
//! `F` is one". The final exponentiation (`F^((q¹²−1)/r)`) is a third of a
//! single verification. Novakovic and Eagen ("On Proving Pairings",
//! eprint 2024/640, §4.3) show that for BN254 the prover can instead hand
//! over `c ∈ F_q¹²` and an index `s ∈ {0, 1, 2}` with
//!
//! ```text
//! c^λ = F · w^s,   λ = 6x + 2 + q − q² + q³
//! ```
//!
//! where `w` is a fixed element of order 27. That relation implies the
//! pairing check: `λ` is a multiple of `r`, so `FE(c^λ) = c^((λ/r)(q¹²−1)) = 1`,
//! and 27 divides `(q¹²−1)/r`, so `FE(w^s) = 1`; hence `FE(F) = 1`. No
//! assumption enters: a hint for a false statement cannot exist.
//!
//! The verifier checks the relation in the shape of the Miller loop itself:
//! `c^{-(6x+2)}` rides on the loop's squarings (one multiplication by `c⁻¹`
//! or `c` at each non-zero digit of the loop count) and `c^{-q+q²-q³}` is
//! three Frobenius maps, so the final exponentiation is replaced by about
//! thirty multiplications. The prover finds `c` with one exponentiation
//! by a fixed 3,000-bit exponent (split into twelve 254-bit ones by the
//! Frobenius map) and a search over the 27 cube-root corrections.

use ark_bn254::{Fq, Fq12, Fq2, Fq6, G1Affine};
use ark_ec::bn::{BnConfig, G2Prepared};
use ark_ec::AffineRepr;
use ark_ff::{BigInteger, Field, One, PrimeField, Zero};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use num_bigint::BigUint;
use std::sync::OnceLock;

type Config = ark_bn254::Config;

/// Bytes of a hint: the index `s`, then `c` uncompressed (twelve 32-byte
/// base-field elements in arkworks' order).
pub const HINT_BYTES: usize = 1 + 384;

/// The residue hint of one proof and statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Hint {
    pub c: Fq12,
    pub s: u8,
}

impl Hint {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HINT_BYTES);
        out.push(self.s);
        self.c
            .serialize_uncompressed(&mut out)
            .expect("serializing into a Vec cannot fail");
        out
    }

    /// Decodes; `None` for anything but `s < 3` and a non-zero `c` of
    /// canonical field elements.
    pub fn from_bytes(bytes: &[u8]) -> Option<Hint> {
        let (&s, rest) = bytes.split_first()?;
        if s >= 3 || rest.len() != HINT_BYTES - 1 {
            return None;
        }
        let c = Fq12::deserialize_uncompressed(rest).ok()?;
        (!c.is_zero()).then_some(Hint { c, s })
    }
}

/// The constants of the method, derived once from q, r and x.
struct Consts {
    /// `w^0, w^1, w^2` for the fixed element `w` of order 27.
    w_pow: [Fq12; 3],
    /// `N(w)^((q−1)/3)`, a primitive cube root of unity in F_q: an element
    /// `f` times `w^s` is a cube exactly when `N(f)^((q−1)/3)·ζ^s = 1`.
    zeta: Fq,
    /// `(q−1)/3`, as little-endian limbs.
    third: Vec<u64>,
    /// The base-q digits of the exponent that takes `F·w^s` to a first
    /// candidate for `c`: (r⁻¹·m'⁻¹ mod h)·(t+1)/3 mod (q¹²−1), where
    /// λ = 3·r·m', h = (q¹²−1)/r and q¹²−1 = 27·t.
    exponent: [[u64; 4]; 12],
    /// `w^((t+1)/3)`, a cube-root correction of the candidate.
    we: Fq12,
    /// `we^(−λ)`: what one correction does to the relation's residual.
    step: Fq12,
}

fn to_big(x: &impl BigInteger) -> BigUint {
    BigUint::from_bytes_le(&x.to_bytes_le())
}

fn q() -> BigUint {
    to_big(&Fq::MODULUS)
}

/// The base-q digits of `v < q¹²`, each as little-endian 64-bit limbs.
fn base_q_digits(v: &BigUint) -> [[u64; 4]; 12] {
    let q = q();
    let mut v = v.clone();
    let mut out = [[0u64; 4]; 12];
    for d in out.iter_mut() {
        for (o, limb) in d.iter_mut().zip((&v % &q).to_u64_digits()) {
            *o = limb;
        }
        v /= &q;
    }
    out
}

fn frobenius(f: &Fq12, power: usize) -> Fq12 {
    let mut g = *f;
    g.frobenius_map_in_place(power);
    g
}

/// The norm of `f` down to F_q: the product of its twelve conjugates.
fn norm(f: &Fq12) -> Option<Fq> {
    let n = (1..12).fold(*f, |acc, i| acc * frobenius(f, i));
    let base = n.c0.c0.c0;
    (n == Fq12::from_base_prime_field(base)).then_some(base)
}

/// `x^e` for `e < q¹²` given by its base-q digits: the twelve conjugates
/// `x^(q^i)` raised to 254-bit digits together, sharing the squarings
/// (4-bit windows), the conjugates split over two threads.
pub(crate) fn pow_digits(x: &Fq12, digits: &[[u64; 4]; 12]) -> Fq12 {
    let part = |range: std::ops::Range<usize>| -> Fq12 {
        let tables: Vec<[Fq12; 16]> = range
            .clone()
            .map(|i| {
                let b = frobenius(x, i);
                let mut t = [Fq12::one(); 16];
                for j in 1..16 {
                    t[j] = t[j - 1] * b;
                }
                t
            })
            .collect();
        let mut acc = Fq12::one();
        for window in (0..64).rev() {
            for _ in 0..4 {
                acc.square_in_place();
            }
            for (t, d) in tables.iter().zip(&digits[range.clone()]) {
                let nibble = (d[window / 16] >> ((window % 16) * 4)) & 0xf;
                if nibble != 0 {
                    acc *= t[nibble as usize];
                }
            }
        }
        acc
    };
    let (a, b) = rayon::join(|| part(0..6), || part(6..12));
    a * b
}

/// `c^(−(6x+2))` folded into a Miller loop over `pairs` (their line
/// functions multiplied in as arkworks' `multi_miller_loop` does), or the
/// plain loop with `fold` absent. With no pairs it is the power alone.
pub(crate) fn ate_loop(pairs: &[(G1Affine, &G2Prepared<Config>)], fold: Option<(&Fq12, &Fq12)>) -> Fq12 {
    let mut lines: Vec<_> = pairs
        .iter()
        .filter(|(p, q)| !p.is_zero() && !q.infinity)
        .map(|(p, q)| (p, q.ell_coeffs.iter()))
        .collect();
    let ell = |f: &mut Fq12, lines: &mut Vec<(&G1Affine, std::slice::Iter<'_, _>)>| {
        for (p, coeffs) in lines.iter_mut() {
            // BN254's twist is a D-type one.
            let Some(&(c0, c1, c2)) = coeffs.next() else { continue };
            let (mut c0, mut c1): (Fq2, Fq2) = (c0, c1);
            c0.mul_assign_by_fp(&p.y);
            c1.mul_assign_by_fp(&p.x);
            f.mul_by_034(&c0, &c1, &c2);
        }
    };
    let count = <Config as BnConfig>::ATE_LOOP_COUNT;
    let mut f = fold.map_or(Fq12::one(), |(c_inv, _)| *c_inv);
    for i in (1..count.len()).rev() {
        if i != count.len() - 1 || fold.is_some() {
            f.square_in_place();
        }
        ell(&mut f, &mut lines);
        let digit = count[i - 1];
        if digit != 0 {
            ell(&mut f, &mut lines);
            if let Some((c_inv, c)) = fold {
                f *= if digit > 0 { c_inv } else { c };
            }
        }
    }
    // BN254's x is positive: no inversion here.
    ell(&mut f, &mut lines);
    ell(&mut f, &mut lines);
    f
}

/// `c^(−λ)` given `c^(−(6x+2))` (from [`ate_loop`]).
fn close(folded: Fq12, c: &Fq12, c_inv: &Fq12) -> Fq12 {
    folded * frobenius(c_inv, 1) * frobenius(c, 2) * frobenius(c_inv, 3)
}

fn consts() -> Option<&'static Consts> {
    static CONSTS: OnceLock<Option<Consts>> = OnceLock::new();
    CONSTS.get_or_init(derive).as_ref()
}

/// The constants, from q, r and x, each property they rely on checked.
fn derive() -> Option<Consts> {
    let q = q();
    let r = to_big(&ark_bn254::Fr::MODULUS);
    let x = BigUint::from(<Config as BnConfig>::X[0]);
    let one = BigUint::one();
    let order = q.pow(12) - &one;
    let lambda = BigUint::from(6u8) * &x + 2u8 + &q + q.pow(3) - q.pow(2);
    let h = &order / &r;
    if &h * &r != order || !(&lambda % &r).is_zero() || !(&order % 27u8).is_zero() || !(&h % 27u8).is_zero() {
        return None;
    }
    let t = &order / 27u8;
    if (&t % 3u8) != BigUint::from(2u8) {
        return None;
    }
    let m = &lambda / &r;
    if !(&m % 3u8).is_zero() {
        return None;
    }
    let m_dash = &m / 3u8;
    let e1 = r.modinv(&h)? * m_dash.modinv(&h)?;
    let e0 = (&t + &one) / 3u8;
    let e = (e1 * &e0) % &order;
    let third = ((&q - &one) / 3u8).to_u64_digits();
    // w: the 27-part of the first non-cube among 2 + v·k (k = 1, 2, …).
    let (mut w, mut zeta) = (Fq12::one(), Fq::one());
    for k in 1u64..64 {
        let z = Fq12::new(Fq6::new(Fq2::from(2u64), Fq2::from(k), Fq2::zero()), Fq6::zero());
        let chi = norm(&z)?.pow(&third);
        if chi != Fq::one() {
            w = pow_digits(&z, &base_q_digits(&t));
            zeta = norm(&w)?.pow(&third);
            break;
        }
    }
    if w.pow([9u64]) == Fq12::one() || w.pow([27u64]) != Fq12::one() || zeta == Fq::one() {
        return None;
    }
    let we = pow_digits(&w, &base_q_digits(&e0));
    let we_inv = we.inverse()?;
    let step = close(ate_loop(&[], Some((&we_inv, &we))), &we, &we_inv);
    Some(Consts {
        w_pow: [Fq12::one(), w, w * w],
        zeta,
        third,
        exponent: base_q_digits(&e),
        we,
        step,
    })
}

/// The hint for a Miller-loop product `f` whose final exponentiation is
/// one; `None` when it is not (no hint exists then).
pub(crate) fn find(f: &Fq12) -> Option<Hint> {
    let k = consts()?;
    // Which w^s makes f·w^s a cube.
    let chi = norm(f)?.pow(&k.third);
    let s = (0..3u8).find(|&s| chi * k.zeta.pow([u64::from(s)]) == Fq::one())?;
    let g = *f * k.w_pow[usize::from(s)];
    let c = pow_digits(&g, &k.exponent);
    let c_inv = c.inverse()?;
    // g·c^(−λ) lies in the 27-torsion; each correction c ← c·w^((t+1)/3)
    // multiplies it by `step`.
    let mut residual = g * close(ate_loop(&[], Some((&c_inv, &c))), &c, &c_inv);
    let mut c = c;
    for _ in 0..27 {
        if residual.is_one() {
            return Some(Hint { c, s });
        }
        residual *= k.step;
        c *= k.we;
    }
    None
}

/// Whether the hint closes `folded`, the Miller-loop product of the
/// statement's pairs (already times `M⁻¹` for the fixed pair) with
/// `c^(−(6x+2))` folded in by [`ate_loop`].
pub(crate) fn closes(folded: Fq12, hint: &Hint, c_inv: &Fq12) -> bool {
    match consts() {
        Some(k) => (close(folded, &hint.c, c_inv) * k.w_pow[usize::from(hint.s)]).is_one(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::UniformRand;

    fn lambda() -> BigUint {
        let q = q();
        BigUint::from(6u8) * BigUint::from(<Config as BnConfig>::X[0]) + 2u8 + &q + q.pow(3) - q.pow(2)
    }

    #[test]
    fn the_constants_hold() {
        let k = consts().expect("the method's constants");
        let w = k.w_pow[1];
        assert!(w.pow([27u64]).is_one() && !w.pow([9u64]).is_one(), "w has order 27");
        assert_eq!(k.w_pow[2], w * w);
        assert!(k.zeta != Fq::one() && k.zeta.pow([3u64]) == Fq::one());
        // The loop count's signed digits are 6x + 2.
        let count = <Config as BnConfig>::ATE_LOOP_COUNT;
        let value: i128 = count.iter().rev().fold(0, |acc, d| 2 * acc + i128::from(*d));
        assert_eq!(value, 6 * i128::from(<Config as BnConfig>::X[0]) + 2);
        assert_eq!(count.last(), Some(&1));
    }

    #[test]
    fn the_folded_loop_is_the_power() {
        let mut rng = rand::rngs::OsRng;
        let c = Fq12::rand(&mut rng);
        let c_inv = c.inverse().expect("non-zero");
        let folded = close(ate_loop(&[], Some((&c_inv, &c))), &c, &c_inv);
        assert_eq!(folded * c.pow(lambda().to_u64_digits()), Fq12::one());
        let e: BigUint = (BigUint::one() << 700u32) + 12345u32;
        let digits = base_q_digits(&e);
        assert_eq!(pow_digits(&c, &digits), c.pow(e.to_u64_digits()));
    }

    #[test]
    fn a_hint_exists_exactly_for_products_that_exponentiate_to_one() {
        let mut rng = rand::rngs::OsRng;
        // e(aP, Q)·e(−P, aQ) = 1.
        let a = ark_bn254::Fr::rand(&mut rng);
        let p = ark_bn254::G1Affine::rand(&mut rng);
        let q2 = ark_bn254::G2Affine::rand(&mut rng);
        let pa: G1Affine = (p * a).into();
        let qa: ark_bn254::G2Affine = (q2 * a).into();
        let (prep_q, prep_qa) = (G2Prepared::from(q2), G2Prepared::from(qa));
        let f = ate_loop(&[(pa, &prep_q), (-p, &prep_qa)], None);
        let hint = find(&f).expect("a hint");
        // The relation, by plain exponentiation.
        let k = consts().expect("constants");
        assert_eq!(hint.c.pow(lambda().to_u64_digits()), f * k.w_pow[usize::from(hint.s)]);
        // As the verifier checks it.
        let c_inv = hint.c.inverse().expect("non-zero");
        let folded = ate_loop(&[(pa, &prep_q), (-p, &prep_qa)], Some((&c_inv, &hint.c)));
        assert!(closes(folded, &hint, &c_inv));
        assert_eq!(Hint::from_bytes(&hint.to_bytes()), Some(hint.clone()));
        // A product that is not one after exponentiation has none.
        let g = ate_loop(&[(pa, &prep_q), (p, &prep_qa)], None);
        assert!(find(&g).is_none());
        let folded = ate_loop(&[(pa, &prep_q), (p, &prep_qa)], Some((&c_inv, &hint.c)));
        assert!(!closes(folded, &hint, &c_inv));
    }
}
