//! `liutong bench zk`: the private-use statement's size and its Groth16
//! costs, against the same statement written naively and proven with
//! arkworks' plain `Groth16::prove` in the same run.

use crate::cli::Output;
use crate::Result;
use ark_groth16::r1cs_to_qap::LibsnarkReduction;
use ark_groth16::Groth16;
use ark_relations::r1cs::ConstraintSynthesizer;
use ark_snark::SNARK;
use clap::Args;
use liutong_zk::circuit::{self, GrantFields, Statement, UseCircuit, UseWitness};
use liutong_zk::groth16::{self, Prover, ProverCache, Verifier};
use liutong_zk::naive::{self, NaiveCircuit};
use liutong_zk::tree::MemoryTree;
use liutong_zk::{field, Bn254, Fr};
use serde_json::json;
use std::time::Instant;

#[derive(Args, Debug, Clone)]
pub struct ZkBench {
    /// Proofs timed (the median is reported).
    #[arg(long, default_value_t = 10)]
    pub proofs: usize,
    /// Batch sizes for batch verification (the last is the headline figure).
    #[arg(long, value_delimiter = ',', default_value = "1,8,16,32,64")]
    pub batches: Vec<usize>,
    /// A small run: 3 proofs, batches up to 16.
    #[arg(long)]
    pub quick: bool,
}

use crate::bench::{median, ms};

/// A grant at leaf `index` of a tree of a few hundred, and the witness of use `k`.
fn witness(tree: &mut MemoryTree, index: u64, k: u64, now: u64) -> UseWitness {
    let secret = field::random();
    let grant = GrantFields {
        dataset: Fr::from(0xD47Au64),
        actions: 0b11,
        not_after: now + 86_400,
        max_uses: 1000,
        terms: field::random(),
        secret_hash: circuit::secret_hash(&secret),
        salt: field::random(),
    };
    tree.set(index, grant.commitment());
    UseWitness {
        path: tree.path(index),
        grant,
        secret,
        k,
        escrow_randomness: field::random(),
    }
}

pub async fn run(mut b: ZkBench) -> Result<Output> {
    if b.quick {
        b.proofs = 3;
        b.batches = vec![1, 4, 16];
    }
    let b2 = b.clone();
    tokio::task::spawn_blocking(move || measure(&b2))
        .await
        .map_err(|e| crate::Error::Io(format!("bench zk: {e}")))?
}

fn measure(b: &ZkBench) -> Result<Output> {
    let zk = |e: liutong_zk::Error| crate::Error::Io(format!("bench zk: {e}"));
    let ark = |e: ark_relations::r1cs::SynthesisError| crate::Error::Io(format!("bench zk: {e}"));
    let mut rng = rand::rngs::OsRng;
    let now = liutong_core::now_ms() / 1000;
    let proofs = b.proofs.max(1);
    let most = b.batches.iter().copied().max().unwrap_or(1).max(1);

    // The optimized statement: setup, a prover holding the matrices.
    let constraints = groth16::constraint_count().map_err(zk)?;
    let t = Instant::now();
    let pk = groth16::setup(&mut rng).map_err(zk)?;
    let setup_ms = ms(t);
    let verifier = Verifier::new(&pk.vk);
    // A prover that proves again and again keeps the proving key's queries
    // as fixed-base tables (built once, timed); a one-shot prover (what a
    // `liutong fetch --private` process builds) does without.
    let one_shot = Prover::new(pk.clone()).map_err(zk)?;
    let t = Instant::now();
    let prover = Prover::with_tables(pk.clone()).map_err(zk)?;
    let tables_ms = ms(t);
    let mut tree = MemoryTree::default();
    for i in 0..256 {
        tree.set(i, field::random());
    }
    let mut items: Vec<(Statement, UseWitness)> = Vec::new();
    for i in 0..most.max(proofs) as u64 {
        let w = witness(&mut tree, 1000 + i, i % 7, now);
        items.push((w.statement(1, now, field::random()), w));
    }
    // Paths against the final root.
    for (s, w) in &mut items {
        w.path = tree.path(w.path.index);
        *s = w.statement(1, now, s.request);
    }
    let mut cold = Vec::new();
    let mut made = Vec::new();
    for (s, w) in &items {
        let t = Instant::now();
        let p = prover.prove(s, w, &mut rng).map_err(zk)?;
        if made.len() < proofs {
            cold.push(ms(t));
        }
        made.push((s.clone(), p));
    }
    let prove_cold_ms = median(&cold);
    // Repeat uses of one grant, each after another grant joined the tree:
    // the prover's cache keeps the sums of the segments that did not change.
    // Young tree: the new grants land next to ours (leaf 1,000 of about
    // 1,100), so the upper half of its path changes every use. Mature tree:
    // they land past leaf 131,072, so only the top three levels change.
    // The same prover with a key from arkworks' own setup (libsnark's
    // reduction: the power-of-two domain of 8,192 and h's coefficients),
    // as keys were made before the coset reduction: what it saves, timed
    // interleaved with ours (this machine's speed drifts).
    let stock_pk =
        Groth16::<Bn254, LibsnarkReduction>::generate_random_parameters_with_reduction(UseCircuit::blank(), &mut rng)
            .map_err(ark)?;
    let stock = Prover::with_tables(stock_pk.clone()).map_err(zk)?;
    // Each prover proves each use in turn; the medians, in order.
    let mut repeat = |provers: &[&Prover], first_free: u64| -> Result<Vec<f64>> {
        let verifiers: Vec<Verifier> = provers.iter().map(|p| Verifier::new(p.verifying_key())).collect();
        let mut times = vec![Vec::new(); provers.len()];
        let mut caches = vec![ProverCache::default(); provers.len()];
        let (_, mut w) = items[0].clone();
        for k in 0..=proofs as u64 {
            tree.set(first_free + k, field::random());
            w.path = tree.path(w.path.index);
            w.k = k;
            w.escrow_randomness = field::random();
            let s = w.statement(1, now, field::random());
            for (i, prover) in provers.iter().enumerate() {
                let t = Instant::now();
                let p = prover.prove_with(&s, &w, &mut caches[i], &mut rng).map_err(zk)?;
                if k > 0 {
                    times[i].push(ms(t));
                }
                verifiers[i].verify(&s, &p).map_err(zk)?;
            }
        }
        Ok(times.iter().map(|t| median(t)).collect())
    };
    let prove_young_ms = repeat(&[&prover], 1000 + items.len() as u64)?[0];
    let mature = repeat(&[&prover, &stock], 1 << 17)?;
    let (prove_ms, prove_radix2_key_ms) = (mature[0], mature[1]);
    drop(stock);
    let prove_one_shot_ms = repeat(&[&one_shot], (1 << 17) + 2 * proofs as u64 + 2)?[0];
    // Single verification with the proof's residue hint (as proofs travel),
    // and in the same run, interleaved, the same proofs without it (one
    // final exponentiation each), and what finding a hint costs the prover.
    // Each proof's hint is checked once, so the timed verifications below
    // are the hinted path and not its fallback.
    if !made.iter().all(|(s, p)| verifier.hint_closes(s, p)) {
        return Err(crate::Error::Io("bench zk: a proof's hint does not close".into()));
    }
    let (mut verify, mut verify_full, mut hint) = (Vec::new(), Vec::new(), Vec::new());
    for (s, p) in made.iter().cycle().take(proofs.max(20)) {
        let bare = liutong_zk::UseProof(p.0.clone(), None);
        let t = Instant::now();
        verifier.verify(s, p).map_err(zk)?;
        verify.push(ms(t));
        let t = Instant::now();
        verifier.verify(s, &bare).map_err(zk)?;
        verify_full.push(ms(t));
        let t = Instant::now();
        verifier
            .hint(s, &p.0)
            .ok_or_else(|| crate::Error::Io("bench zk: no hint for a valid proof".into()))?;
        hint.push(ms(t));
    }
    let (verify_ms, verify_without_hint_ms, hint_ms) = (median(&verify), median(&verify_full), median(&hint));
    let mut batches = Vec::new();
    for &n in &b.batches {
        let n = n.max(1);
        let mut runs = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            verifier
                .verify_batch(&made[..n], &mut rng)
                .map_err(|(i, e)| crate::Error::Io(format!("batch proof {i}: {e}")))?;
            runs.push(ms(t) / n as f64);
        }
        batches.push((n, median(&runs)));
    }
    let batch_verify_ms_per_proof = batches.last().map_or(verify_ms, |b| b.1);

    // Our circuit through arkworks' plain prover (synthesis and matrices
    // every time), with arkworks' own key.
    let (s0, w0) = &items[0];
    let mut plain = Vec::new();
    for _ in 0..proofs {
        let c = UseCircuit {
            statement: s0.clone(),
            witness: w0.clone(),
        };
        let t = Instant::now();
        Groth16::<Bn254>::prove(&stock_pk, c, &mut rng).map_err(ark)?;
        plain.push(ms(t));
    }
    let plain_prove_ms = median(&plain);

    // The naive statement, with arkworks' plain setup, prover and verifier.
    let naive_blank = NaiveCircuit {
        statement: s0.clone(),
        witness: w0.clone(),
    };
    let naive_constraints = {
        let cs = ark_relations::r1cs::ConstraintSystem::<Fr>::new_ref();
        NaiveCircuit {
            statement: s0.clone(),
            witness: w0.clone(),
        }
        .generate_constraints(cs.clone())
        .map_err(ark)?;
        cs.num_constraints()
    };
    let t = Instant::now();
    let (npk, nvk) = Groth16::<Bn254>::circuit_specific_setup(naive_blank, &mut rng).map_err(ark)?;
    let naive_setup_ms = ms(t);
    let mut ntree = MemoryTree::default();
    let mut nw = w0.clone();
    ntree.set(nw.path.index, naive::commitment(&nw));
    nw.path = ntree.path(nw.path.index);
    let ns = naive::statement(&nw, 1, now, field::random());
    let mut naive_prove = Vec::new();
    let mut nproof = None;
    for _ in 0..proofs {
        let c = NaiveCircuit {
            statement: ns.clone(),
            witness: nw.clone(),
        };
        let t = Instant::now();
        nproof = Some(Groth16::<Bn254>::prove(&npk, c, &mut rng).map_err(ark)?);
        naive_prove.push(ms(t));
    }
    let nproof = nproof.ok_or_else(|| crate::Error::Io("no naive proof".into()))?;
    let mut naive_verify = Vec::new();
    for _ in 0..proofs.max(20) {
        let t = Instant::now();
        let ok = Groth16::<Bn254>::verify(&nvk, &ns.inputs(), &nproof).map_err(ark)?;
        naive_verify.push(ms(t));
        if !ok {
            return Err(crate::Error::Io("the naive proof does not verify".into()));
        }
    }
    let (naive_prove_ms, naive_verify_ms) = (median(&naive_prove), median(&naive_verify));

    let mut lines = vec![
        "Private use, Groth16 over BN254 (depth-20 grant tree), this machine:".to_string(),
        format!("  constraints        {constraints:>8}    naive {naive_constraints:>8}"),
        format!("  setup              {setup_ms:>8.0} ms naive {naive_setup_ms:>8.0} ms"),
        format!("  prove, a grant's next use (median): mature tree {prove_ms:.1} ms, young tree {prove_young_ms:.1} ms, first use {prove_cold_ms:.1} ms"),
        format!("    (prover with fixed-base tables, built once in {tables_ms:.0} ms; without them, mature tree {prove_one_shot_ms:.1} ms)"),
        format!("    (the same prover with a key of arkworks' own reduction, 8,192-point domain: mature tree {prove_radix2_key_ms:.1} ms)"),
        format!("  prove via arkworks' Groth16::prove: our circuit {plain_prove_ms:.1} ms, naive circuit {naive_prove_ms:.1} ms"),
        format!("  verify (median)    {verify_ms:>8.2} ms naive {naive_verify_ms:>8.2} ms"),
        format!("    (without the residue hint, one final exponentiation: {verify_without_hint_ms:.2} ms; finding the hint, part of each proof: {hint_ms:.2} ms)"),
        "  batch verification, per proof:".to_string(),
    ];
    for (n, per) in &batches {
        lines.push(format!("    {n:>4} proofs      {per:>8.3} ms"));
    }
    let result = json!({
        "bench": "zk",
        "constraints": constraints,
        "setup_ms": setup_ms,
        "prove_ms": prove_ms,
        "prove_first_use_ms": prove_cold_ms,
        "prove_young_tree_ms": prove_young_ms,
        "prove_without_tables_ms": prove_one_shot_ms,
        "prove_radix2_key_ms": prove_radix2_key_ms,
        "tables_ms": tables_ms,
        "verify_ms": verify_ms,
        "verify_without_hint_ms": verify_without_hint_ms,
        "hint_ms": hint_ms,
        "batch_verify_ms_per_proof": batch_verify_ms_per_proof,
        "batch": batches.iter().map(|(n, per)| json!({"proofs": n, "ms_per_proof": per})).collect::<Vec<_>>(),
        "plain_groth16_prove_ms": plain_prove_ms,
        "naive": {
            "constraints": naive_constraints,
            "setup_ms": naive_setup_ms,
            "prove_ms": naive_prove_ms,
            "verify_ms": naive_verify_ms,
        },
        "threads": rayon::current_num_threads(),
    });
    lines.push(result.to_string());
    Ok(Output::ok(lines.join("\n"), result))
}
