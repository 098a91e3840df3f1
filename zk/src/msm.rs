//! Multi-scalar multiplication for the prover: Pippenger's bucket method with
//! signed window digits, every window's buckets kept in affine form and
//! filled by batched affine additions (one field inversion shared by a batch
//! through Montgomery's trick).
//!
//! Why not arkworks' own `msm`: an affine addition whose inversion is shared
//! costs about 6 field multiplications against 11 for the mixed
//! (projective + affine) addition arkworks accumulates with, and arkworks
//! keeps twice the buckets that signed digits need, each reduced with two
//! full projective additions. On the prover's multiplications (8,191 points
//! for H, a few hundred for a changed witness segment, in G1 and G2) this one
//! takes about half the time; `liutong bench zk` shows the proof times and
//! the tests check every result against arkworks'.
//!
//! All windows are filled at once, so even a few hundred points give a batch
//! many distinct buckets; the windows are split between the threads, each
//! thread running over every point for its own windows.

use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::{AdditiveGroup, BigInteger, Field, PrimeField, Zero};
use rayon::prelude::*;

/// Pending additions per shared inversion.
const BATCH: usize = 256;

/// Window width for `n` points, chosen by measurement on the prover's sizes.
fn window(n: usize) -> usize {
    match n {
        0..=31 => 3,
        32..=127 => 5,
        128..=511 => 6,
        512..=2047 => 7,
        2048..=6143 => 8,
        6144..=24_575 => 9,
        _ => 11,
    }
}

/// `Σ scalars[i]·bases[i]` over the shorter of the two slices.
pub fn msm<P: SWCurveConfig>(bases: &[Affine<P>], scalars: &[P::ScalarField]) -> Projective<P> {
    let n = bases.len().min(scalars.len());
    let c = window(n);
    msm_with(&bases[..n], scalars, c, P::ScalarField::MODULUS_BIT_SIZE as usize)
}

/// The same with 64-bit scalars: a quarter of the windows.
pub fn msm_u64<P: SWCurveConfig>(bases: &[Affine<P>], scalars: &[u64]) -> Projective<P> {
    let n = bases.len().min(scalars.len());
    let wide: Vec<P::ScalarField> = scalars[..n].iter().map(|k| P::ScalarField::from(*k)).collect();
    msm_with(&bases[..n], &wide, window(n), 64)
}

fn msm_with<P: SWCurveConfig>(bases: &[Affine<P>], scalars: &[P::ScalarField], c: usize, bits: usize) -> Projective<P> {
    // One window more than the bits need: the top one holds only a carry
    // or fewer than `c` bits, so every digit fits in 2^(c-1) buckets.
    let windows = bits / c + 1;
    let digits: Vec<Vec<i32>> = scalars
        .par_iter()
        .take(bases.len())
        .map(|s| signed_digits(&s.into_bigint(), c, windows))
        .collect();
    let threads = rayon::current_num_threads().clamp(1, windows);
    let per = windows.div_ceil(threads);
    let sums: Vec<Projective<P>> = (0..threads)
        .into_par_iter()
        .flat_map_iter(|t| {
            let lo = (t * per).min(windows);
            let hi = ((t + 1) * per).min(windows);
            Buckets::<P>::fill(bases, &digits, lo..hi, c).reduce()
        })
        .collect();
    // Σ_w 2^(c·w)·sum_w, from the top window down.
    let mut total = Projective::<P>::zero();
    for s in sums.iter().rev() {
        for _ in 0..c {
            total.double_in_place();
        }
        total += s;
    }
    total
}

/// Fixed bases with their multiples `2^(c·w)·P` for every window `w`
/// computed once, so a multiplication over them fills a single set of
/// buckets (all windows at once) and reduces it once: no per-window
/// reduction and no doublings. For a prover whose bases never change (the
/// proving key's queries) this is what does not change between proofs.
pub struct FixedBases<P: SWCurveConfig> {
    c: usize,
    windows: usize,
    /// `table[i·windows + w] = 2^(c·w)·bases[i]`.
    table: Vec<Affine<P>>,
}

impl<P: SWCurveConfig> FixedBases<P> {
    /// Tables of window width `c` for `bases`.
    pub fn new(bases: &[Affine<P>], c: usize) -> FixedBases<P> {
        let windows = P::ScalarField::MODULUS_BIT_SIZE as usize / c + 1;
        let table = bases
            .par_chunks(64)
            .flat_map_iter(|chunk| {
                let mut out = Vec::with_capacity(chunk.len() * windows);
                for p in chunk {
                    let mut q = p.into_group();
                    for w in 0..windows {
                        if w > 0 {
                            for _ in 0..c {
                                q.double_in_place();
                            }
                        }
                        out.push(q);
                    }
                }
                Projective::<P>::normalize_batch(&out)
            })
            .collect();
        FixedBases { c, windows, table }
    }

    pub fn len(&self) -> usize {
        self.table.len() / self.windows
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// `Σ scalars[j]·bases[start + j]`.
    pub fn msm(&self, start: usize, scalars: &[P::ScalarField]) -> Projective<P> {
        let n = scalars.len().min(self.len().saturating_sub(start));
        let threads = rayon::current_num_threads().max(1);
        let per = n.div_ceil(threads).max(1);
        let (c, windows) = (self.c, self.windows);
        let half = 1usize << (c - 1);
        scalars[..n]
            .par_chunks(per)
            .enumerate()
            .map(|(t, chunk)| {
                let mut buckets = vec![Affine::<P>::identity(); half];
                let mut overflow = vec![Projective::<P>::zero(); half];
                let mut batch = Batch::<P>::new(half);
                for (j, s) in chunk.iter().enumerate() {
                    let i = start + t * per + j;
                    let row = &self.table[i * windows..(i + 1) * windows];
                    if row[0].is_zero() {
                        continue;
                    }
                    for (d, p) in signed_digits(&s.into_bigint(), c, windows).into_iter().zip(row) {
                        if d != 0 {
                            let p = if d > 0 { *p } else { -*p };
                            batch.add(&mut buckets, &mut overflow, d.unsigned_abs() as usize - 1, p);
                        }
                    }
                }
                batch.flush(&mut buckets);
                reduce_window(&buckets, &overflow)
            })
            .sum()
    }
}

/// One base's multiples `d·2^(c·w)·P` for every window `w` and digit
/// `1 ≤ d ≤ 2^(c-1)`: a scalar multiplication is then one addition per
/// non-zero signed digit, with no doubling (for a few fixed points that are
/// multiplied again and again, such as a verifying key's input points).
pub struct WindowTable<P: SWCurveConfig> {
    c: usize,
    windows: usize,
    /// `table[w·2^(c-1) + d - 1] = d·2^(c·w)·P`.
    table: Vec<Affine<P>>,
}

impl<P: SWCurveConfig> WindowTable<P> {
    pub fn new(p: &Affine<P>, c: usize) -> WindowTable<P> {
        let windows = P::ScalarField::MODULUS_BIT_SIZE as usize / c + 1;
        let half = 1usize << (c - 1);
        let mut all = Vec::with_capacity(windows * half);
        let mut base = p.into_group();
        for _ in 0..windows {
            let mut m = base;
            for _ in 0..half {
                all.push(m);
                m += &base;
            }
            for _ in 0..c {
                base.double_in_place();
            }
        }
        WindowTable {
            c,
            windows,
            table: Projective::normalize_batch(&all),
        }
    }

    /// `x·P`.
    pub fn mul(&self, x: &P::ScalarField) -> Projective<P> {
        let half = 1usize << (self.c - 1);
        let mut acc = Projective::<P>::zero();
        for (w, d) in signed_digits(&x.into_bigint(), self.c, self.windows)
            .into_iter()
            .enumerate()
        {
            if d != 0 {
                let p = self.table[w * half + d.unsigned_abs() as usize - 1];
                acc += if d > 0 { p } else { -p };
            }
        }
        acc
    }
}

/// `(a + λ·b)·P` for 64-bit `a`, `b` and BN254 G1's endomorphism
/// `φ(x, y) = (β·x, y) = λ·P`: `a·P + b·φ(P)`, both halves sharing 64
/// doublings (a plain multiplication by the 128-bit scalar `a + λ·b`
/// takes 128). Scalars drawn this way are as good as uniform 128-bit ones
/// wherever only their count matters: the map `(a, b) ↦ a + λ·b` is
/// injective on 64-bit pairs, since a collision would be a vector of the
/// GLV lattice shorter than 2^64, whose shortest vectors are about 2^127.
pub fn mul_glv_halves(p: &ark_bn254::G1Affine, a: u64, b: u64) -> ark_bn254::G1Projective {
    let phi = endomorphism(p);
    // Kept projective: a quarter of the bits use it, fewer than an
    // inversion's worth of extra multiplications.
    let both = p.into_group() + phi;
    let mut acc = ark_bn254::G1Projective::zero();
    for i in (0..64).rev() {
        acc.double_in_place();
        match (a >> i & 1, b >> i & 1) {
            (1, 1) => acc += &both,
            (1, 0) => acc += p,
            (0, 1) => acc += &phi,
            _ => {}
        }
    }
    acc
}

/// BN254 G1's endomorphism `φ(x, y) = (β·x, y)`, which is multiplication by `λ`.
pub fn endomorphism(p: &ark_bn254::G1Affine) -> ark_bn254::G1Affine {
    use ark_ec::scalar_mul::glv::GLVConfig;
    ark_bn254::g1::Config::endomorphism_affine(p)
}

/// The scalar `a + λ·b` that [`mul_glv_halves`] multiplies by.
pub fn glv_scalar(a: u64, b: u64) -> ark_bn254::Fr {
    use ark_ec::scalar_mul::glv::GLVConfig;
    ark_bn254::Fr::from(a) + ark_bn254::g1::Config::LAMBDA * ark_bn254::Fr::from(b)
}

/// Digits in `[-2^(c-1), 2^(c-1)]` with `Σ d_w·2^(c·w)` equal to the scalar.
fn signed_digits<B: BigInteger>(s: &B, c: usize, windows: usize) -> Vec<i32> {
    let limbs = s.as_ref();
    let half = 1i64 << (c - 1);
    let mut carry = 0i64;
    (0..windows)
        .map(|w| {
            let at = w * c;
            let (i, off) = (at / 64, at % 64);
            let mut raw = limbs.get(i).map_or(0, |l| l >> off);
            if off + c > 64 {
                raw |= limbs.get(i + 1).map_or(0, |l| l << (64 - off));
            }
            let mut d = (raw & ((1u64 << c) - 1)) as i64 + carry;
            carry = 0;
            if d > half {
                d -= 1 << c;
                carry = 1;
            }
            d as i32
        })
        .collect()
}

/// The buckets of a range of windows, `half = 2^(c-1)` per window, in
/// affine form (the identity marks an empty bucket).
struct Buckets<P: SWCurveConfig> {
    points: Vec<Affine<P>>,
    /// Additions that met their bucket already queued in the batch.
    overflow: Vec<Projective<P>>,
    half: usize,
    windows: std::ops::Range<usize>,
}

impl<P: SWCurveConfig> Buckets<P> {
    fn fill(bases: &[Affine<P>], digits: &[Vec<i32>], windows: std::ops::Range<usize>, c: usize) -> Buckets<P> {
        let half = 1usize << (c - 1);
        let mut b = Buckets {
            points: vec![Affine::<P>::identity(); half * windows.len()],
            overflow: vec![Projective::<P>::zero(); half * windows.len()],
            half,
            windows,
        };
        let mut batch = Batch::<P>::new(b.points.len());
        for (base, ds) in bases.iter().zip(digits) {
            if base.is_zero() {
                continue;
            }
            for (slot, w) in b.windows.clone().enumerate() {
                let d = ds[w];
                if d == 0 {
                    continue;
                }
                let bucket = slot * half + (d.unsigned_abs() as usize - 1);
                let p = if d > 0 { *base } else { -*base };
                batch.add(&mut b.points, &mut b.overflow, bucket, p);
            }
        }
        batch.flush(&mut b.points);
        b
    }

    /// Each window's `Σ_k (k+1)·bucket_k`, by running sums from the top.
    fn reduce(self) -> Vec<Projective<P>> {
        self.points
            .chunks(self.half)
            .zip(self.overflow.chunks(self.half))
            .map(|(window, overflow)| reduce_window(window, overflow))
            .collect()
    }
}

/// `Σ_k (k+1)·(bucket_k + overflow_k)`, by running sums from the top.
fn reduce_window<P: SWCurveConfig>(buckets: &[Affine<P>], overflow: &[Projective<P>]) -> Projective<P> {
    let mut running = Projective::<P>::zero();
    let mut sum = Projective::<P>::zero();
    for (b, o) in buckets.iter().zip(overflow).rev() {
        if !b.is_zero() {
            running += b;
        }
        if !o.is_zero() {
            running += o;
        }
        sum += &running;
    }
    sum
}

/// Additions waiting for their shared inversion. A bucket appears at most
/// once in a batch; another addition to it meanwhile goes to its projective
/// overflow (this happens mostly in the top window, whose few bits give it
/// few buckets).
struct Batch<P: SWCurveConfig> {
    pending: Vec<(usize, Affine<P>)>,
    /// The batch number each bucket was last queued in.
    queued: Vec<u32>,
    epoch: u32,
    scratch: Vec<P::BaseField>,
}

impl<P: SWCurveConfig> Batch<P> {
    fn new(buckets: usize) -> Batch<P> {
        Batch {
            pending: Vec::with_capacity(BATCH),
            queued: vec![0; buckets],
            epoch: 1,
            scratch: Vec::with_capacity(BATCH),
        }
    }

    fn add(&mut self, buckets: &mut [Affine<P>], overflow: &mut [Projective<P>], bucket: usize, p: Affine<P>) {
        if self.queued[bucket] == self.epoch {
            overflow[bucket] += &p;
            return;
        }
        let b = buckets[bucket];
        if b.is_zero() {
            buckets[bucket] = p;
        } else if b.x == p.x {
            // P + P or P - P: rare; done at once, outside the batch.
            buckets[bucket] = (b.into_group() + p).into();
        } else {
            self.queued[bucket] = self.epoch;
            self.pending.push((bucket, p));
            if self.pending.len() == BATCH {
                self.flush(buckets);
            }
        }
    }

    /// Every pending addition with one inversion: `λ = (y2 - y1)/(x2 - x1)`,
    /// `x3 = λ² - x1 - x2`, `y3 = λ(x1 - x3) - y1`.
    fn flush(&mut self, buckets: &mut [Affine<P>]) {
        self.scratch.clear();
        let mut acc = P::BaseField::ONE;
        for (bucket, p) in &self.pending {
            self.scratch.push(acc);
            acc *= p.x - buckets[*bucket].x;
        }
        // Never zero: a pair is queued only with distinct x.
        let mut inv = acc.inverse().expect("a batch's x differences are non-zero");
        for ((bucket, p), prefix) in self.pending.iter().zip(&self.scratch).rev() {
            let b = &mut buckets[*bucket];
            let dx = p.x - b.x;
            let lambda = (p.y - b.y) * (inv * prefix);
            inv *= dx;
            let x3 = lambda.square() - b.x - p.x;
            let y3 = lambda * (b.x - x3) - b.y;
            *b = Affine::new_unchecked(x3, y3);
        }
        self.pending.clear();
        self.epoch = self.epoch.wrapping_add(1).max(1);
        if self.epoch == 1 {
            self.queued.fill(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::{Fr, G1Affine, G1Projective, G2Affine, G2Projective};
    use ark_ec::{CurveGroup, VariableBaseMSM};
    use ark_ff::UniformRand;
    use ark_std::rand::Rng;

    fn points<G: CurveGroup>(n: usize) -> Vec<G::Affine> {
        let mut rng = ark_std::test_rng();
        G::normalize_batch(&(0..n).map(|_| G::rand(&mut rng)).collect::<Vec<_>>())
    }

    #[test]
    fn agrees_with_arkworks_on_every_window_and_size() {
        let mut rng = ark_std::test_rng();
        for n in [0, 1, 2, 7, 33, 130, 600] {
            let bases = points::<G1Projective>(n);
            let scalars: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
            let want = G1Projective::msm_unchecked(&bases, &scalars);
            assert_eq!(msm(&bases, &scalars), want, "{n} points");
            for c in 2..=12 {
                assert_eq!(msm_with(&bases, &scalars, c, 254), want, "{n} points, window {c}");
            }
        }
    }

    #[test]
    fn edge_scalars_repeated_and_opposite_points_and_the_identity() {
        let mut rng = ark_std::test_rng();
        let p = points::<G1Projective>(3);
        // The same point many times (doublings in a bucket), its negation
        // (a bucket emptied), the identity, and scalars 0, 1, -1, 2^k.
        let mut bases = vec![p[0]; 40];
        bases.extend(vec![-p[0]; 40]);
        bases.extend([G1Affine::identity(), p[1], p[2], p[1], p[2]]);
        let mut scalars: Vec<Fr> = (0..bases.len()).map(|_| Fr::rand(&mut rng)).collect();
        scalars[0] = Fr::zero();
        scalars[1] = Fr::from(1u64);
        scalars[2] = -Fr::from(1u64);
        scalars[3] = Fr::from(1u64 << 40);
        for i in 40..80 {
            scalars[i] = scalars[i - 40];
        }
        let want = G1Projective::msm_unchecked(&bases, &scalars);
        for c in 2..=10 {
            assert_eq!(msm_with(&bases, &scalars, c, 254), want, "window {c}");
        }
        assert!(msm(&bases[..80], &scalars[..80]).is_zero());
    }

    #[test]
    fn fixed_bases_and_window_tables_agree_with_arkworks() {
        let mut rng = ark_std::test_rng();
        let mut bases = points::<G1Projective>(300);
        bases[7] = G1Affine::identity();
        let mut scalars: Vec<Fr> = (0..300).map(|_| Fr::rand(&mut rng)).collect();
        scalars[3] = Fr::zero();
        scalars[4] = -Fr::from(1u64);
        for c in [3, 8, 10, 13] {
            let fixed = FixedBases::new(&bases, c);
            assert_eq!(fixed.len(), 300);
            for (start, n) in [(0, 300), (0, 1), (17, 100), (299, 1), (250, 50)] {
                let want = G1Projective::msm_unchecked(&bases[start..start + n], &scalars[..n]);
                assert_eq!(fixed.msm(start, &scalars[..n]), want, "window {c}, {start}+{n}");
            }
        }
        let g2 = points::<G2Projective>(40);
        let fixed = FixedBases::new(&g2, 10);
        assert_eq!(
            fixed.msm(0, &scalars[..40]),
            G2Projective::msm_unchecked(&g2, &scalars[..40])
        );
        for c in [2, 4, 6, 9] {
            let table = WindowTable::new(&bases[0], c);
            for x in &scalars[..20] {
                assert_eq!(table.mul(x), bases[0] * x, "window {c}");
            }
        }
    }

    #[test]
    fn glv_halves_multiply_by_their_scalar() {
        let mut rng = ark_std::test_rng();
        let p = G1Projective::rand(&mut rng).into_affine();
        for (a, b) in [
            (0, 0),
            (1, 0),
            (0, 1),
            (u64::MAX, u64::MAX),
            (rng.gen(), rng.gen()),
            (rng.gen(), 0),
        ] {
            assert_eq!(mul_glv_halves(&p, a, b), p * glv_scalar(a, b), "{a} {b}");
        }
        assert!(mul_glv_halves(&G1Affine::identity(), 5, 7).is_zero());
    }

    #[test]
    fn sixty_four_bit_scalars_agree_with_arkworks() {
        let mut rng = ark_std::test_rng();
        for n in [1, 2, 9, 128] {
            let bases = points::<G1Projective>(n);
            let ks: Vec<u64> = (0..n).map(|i| if i == 0 { u64::MAX } else { rng.gen() }).collect();
            let wide: Vec<Fr> = ks.iter().map(|k| Fr::from(*k)).collect();
            let want = G1Projective::msm(&bases, &wide).expect("lengths");
            assert_eq!(msm_u64(&bases, &ks), want, "{n} points");
        }
    }

    #[test]
    fn agrees_with_arkworks_in_g2() {
        let mut rng = ark_std::test_rng();
        for n in [5, 300] {
            let bases: Vec<G2Affine> = points::<G2Projective>(n);
            let scalars: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
            assert_eq!(
                msm(&bases, &scalars),
                G2Projective::msm_unchecked(&bases, &scalars),
                "{n} points"
            );
        }
    }
}
