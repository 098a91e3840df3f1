//! The zk crate's tests: the statement, its proofs, and every bad input the
//! verifier must refuse.

use ark_ff::{One, UniformRand};
use ark_relations::r1cs::{ConstraintSynthesizer, ConstraintSystem};
use liutong_zk::circuit::{self, GrantFields, Statement, UseCircuit, UseWitness};
use liutong_zk::groth16::{self, Prover, Shape, UseProof, Verifier};
use liutong_zk::tree::MemoryTree;
use liutong_zk::{field, residue, Fr};
use std::sync::OnceLock;

fn prover() -> &'static Prover {
    static P: OnceLock<Prover> = OnceLock::new();
    P.get_or_init(|| Prover::new(groth16::setup(&mut rand::rngs::OsRng).expect("setup")).expect("prover"))
}

const NOW: u64 = 1_790_000_000;

/// A tree with a few grants; answers the witness for the grant at leaf 3.
fn witness(k: u64) -> UseWitness {
    let secret = field::random();
    let grant = GrantFields {
        dataset: Fr::from(0x1234_5678u64),
        actions: 0b10,
        not_after: NOW + 3600,
        max_uses: 2,
        terms: Fr::from(99u64),
        secret_hash: circuit::secret_hash(&secret),
        salt: field::random(),
    };
    let mut tree = MemoryTree::default();
    for i in 0..3 {
        tree.set(i, field::random());
    }
    tree.set(3, grant.commitment());
    tree.set(4, field::random());
    UseWitness {
        path: tree.path(3),
        grant,
        secret,
        k,
        escrow_randomness: field::random(),
    }
}

fn statement(w: &UseWitness) -> Statement {
    w.statement(1, NOW, field::reduce(&[7u8; 32]))
}

fn satisfied(s: Statement, w: UseWitness) -> bool {
    let cs = ConstraintSystem::<Fr>::new_ref();
    UseCircuit {
        statement: s,
        witness: w,
    }
    .generate_constraints(cs.clone())
    .expect("synthesis");
    cs.is_satisfied().expect("checkable")
}

/// The assignment the constraint system synthesizes, for comparison with
/// the native one the prover uses.
fn synthesized(c: &UseCircuit) -> Vec<Fr> {
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_mode(ark_relations::r1cs::SynthesisMode::Prove {
        construct_matrices: false,
    });
    c.clone().generate_constraints(cs.clone()).expect("synthesis");
    let cs = cs.into_inner().expect("one reference");
    [cs.instance_assignment, cs.witness_assignment].concat()
}

#[test]
fn the_native_assignment_is_the_synthesized_one() {
    let mut cases = vec![UseCircuit::blank()];
    for k in [0, 1] {
        let w = witness(k);
        cases.push(UseCircuit {
            statement: statement(&w),
            witness: w,
        });
    }
    // Leaves on the right at every level, and values the circuit refuses
    // (a use past the limit, an expired grant, out-of-range fields): the
    // assignment must still be the synthesized one, value for value.
    let mut w = witness(5);
    w.path.index = (1 << 20) - 1;
    w.grant.not_after = 3;
    w.grant.max_uses = 1 << 17;
    w.grant.actions = 7;
    cases.push(UseCircuit {
        statement: w.statement(0, NOW, field::random()),
        witness: w,
    });
    let mut w = witness(0);
    w.path.index = 0b1_0100_1101;
    w.path.siblings.truncate(10);
    cases.push(UseCircuit {
        statement: statement(&w),
        witness: w,
    });
    let (shape, _) = Shape::of_use_circuit().expect("shape");
    let m = &shape.matrices;
    let mut satisfying = 0;
    let product = |rows: &[Vec<(Fr, usize)>], z: &[Fr]| -> Vec<Fr> {
        rows.iter().map(|r| r.iter().map(|(c, i)| *c * z[*i]).sum()).collect()
    };
    for (i, c) in cases.iter().enumerate() {
        let want = synthesized(c);
        let trace = c.trace();
        let got = &trace.full;
        assert_eq!(got.len(), want.len(), "case {i}: variable count");
        if let Some(at) = got.iter().zip(&want).position(|(a, b)| a != b) {
            panic!("case {i}: variable {at} differs");
        }
        // Each constraint's A and B values are what the matrices give.
        for (side, native, rows) in [("A", &trace.a, &m.a), ("B", &trace.b, &m.b)] {
            let want = product(rows, got);
            assert_eq!(native.len(), want.len(), "case {i}: constraint count");
            if let Some(at) = native.iter().zip(&want).position(|(a, b)| a != b) {
                panic!("case {i}: {side} of constraint {at} differs");
            }
        }
        // And C's is their product where the witness satisfies the circuit.
        let c_rows = product(&m.c, got);
        let ab: Vec<Fr> = trace.a.iter().zip(&trace.b).map(|(a, b)| *a * b).collect();
        let sat = satisfied(c.statement.clone(), c.witness.clone());
        assert_eq!(c_rows == ab, sat, "case {i}: C against A·B");
        satisfying += usize::from(sat);
    }
    assert!(satisfying >= 2, "satisfying cases are among those checked");
}

#[test]
fn the_statement_fits_the_budget() {
    let n = groth16::constraint_count().expect("shape");
    assert!(n <= 6000, "{n} constraints");
    let w = witness(0);
    assert!(satisfied(statement(&w), w));
}

#[test]
fn a_use_proves_and_verifies_alone_and_in_a_batch() {
    let p = prover();
    let v = Verifier::new(p.verifying_key());
    let mut rng = rand::rngs::OsRng;
    let mut batch = Vec::new();
    for k in 0..2 {
        let w = witness(k);
        let s = statement(&w);
        let proof = p.prove(&s, &w, &mut rng).expect("prove");
        v.verify(&s, &proof).expect("verifies");
        let again = UseProof::from_bytes(&proof.to_bytes()).expect("round trip");
        v.verify(&s, &again).expect("decoded proof verifies");
        batch.push((s, proof));
    }
    v.verify_batch(&batch, &mut rng).expect("batch verifies");
    // A batch with one tampered statement fails and names it.
    batch[1].0.request += Fr::one();
    assert_eq!(v.verify_batch(&batch, &mut rng).map_err(|(i, _)| i), Err(1));
}

#[test]
fn tampered_public_inputs_and_forged_proofs_are_refused() {
    let p = prover();
    let v = Verifier::new(p.verifying_key());
    let mut rng = rand::rngs::OsRng;
    let w = witness(0);
    let s = statement(&w);
    let proof = p.prove(&s, &w, &mut rng).expect("prove");
    type Tamper = Box<dyn Fn(&mut Statement)>;
    let tampers: Vec<(&str, Tamper)> = vec![
        ("root", Box::new(|s| s.root += Fr::one())),
        ("another dataset", Box::new(|s| s.dataset += Fr::one())),
        ("another action", Box::new(|s| s.action = 0)),
        ("another time", Box::new(|s| s.time += 1)),
        (
            "another request digest",
            Box::new(|s| s.request = field::reduce(&[8u8; 32])),
        ),
        ("nullifier", Box::new(|s| s.nullifier += Fr::one())),
        ("escrow tag", Box::new(|s| s.escrow_tag += Fr::one())),
        ("terms", Box::new(|s| s.terms += Fr::one())),
    ];
    for (what, tamper) in tampers {
        let mut t = s.clone();
        tamper(&mut t);
        assert_eq!(v.verify(&t, &proof), Err(liutong_zk::Error::InvalidProof), "{what}");
    }
    // A proof of another statement.
    let other = witness(1);
    let other_proof = p.prove(&statement(&other), &other, &mut rng).expect("prove");
    assert!(v.verify(&s, &other_proof).is_err(), "another use's proof");
    // A forged proof: random curve points.
    let forged = UseProof(
        ark_groth16::Proof {
            a: ark_bn254::G1Affine::rand(&mut rng),
            b: ark_bn254::G2Affine::rand(&mut rng),
            c: ark_bn254::G1Affine::rand(&mut rng),
        },
        None,
    );
    assert_eq!(v.verify(&s, &forged), Err(liutong_zk::Error::InvalidProof));
    // A wrong verifying key.
    let other_keys = groth16::setup(&mut rng).expect("setup");
    assert!(Verifier::new(&other_keys.vk).verify(&s, &proof).is_err());
}

#[test]
fn malformed_proof_bytes_are_refused() {
    let p = prover();
    let w = witness(0);
    let s = statement(&w);
    let bytes = p.prove(&s, &w, &mut rand::rngs::OsRng).expect("prove").to_bytes();
    let full = groth16::PROOF_BYTES + residue::HINT_BYTES;
    assert_eq!(bytes.len(), full);
    let with_hint = |s: u8, c: &[u8]| [&bytes[..128], &[s], c].concat();
    for bad in [
        vec![],
        bytes[..127].to_vec(),
        bytes[..129].to_vec(),
        bytes[..full - 1].to_vec(),
        [bytes.clone(), vec![0]].concat(),
        vec![0xff; 128],
        vec![0; 128],
        with_hint(3, &bytes[129..]),
        with_hint(0, &[0u8; 384]),
        with_hint(0, &[0xffu8; 384]),
    ] {
        let e = UseProof::from_bytes(&bad).expect_err("malformed");
        assert_eq!(e.code(), "zk.malformed_proof");
    }
    // Any single flipped byte of the proof is refused when decoding or when
    // verifying; one of the hint is refused when decoding or changes
    // nothing (the proof is then checked in full, and it is valid).
    let v = Verifier::new(p.verifying_key());
    for i in (0..full).step_by(9) {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        if let Ok(proof) = UseProof::from_bytes(&b) {
            match i < groth16::PROOF_BYTES {
                true => assert!(v.verify(&s, &proof).is_err(), "byte {i}"),
                false => {
                    assert!(!v.hint_closes(&s, &proof), "byte {i}");
                    v.verify(&s, &proof).expect("a bad hint does not change the verdict");
                }
            }
        }
    }
}

#[test]
fn the_residue_hint_closes_only_its_own_proof() {
    let p = prover();
    let v = Verifier::new(p.verifying_key());
    let mut rng = rand::rngs::OsRng;
    let (w0, w1) = (witness(0), witness(1));
    let (s0, s1) = (statement(&w0), statement(&w1));
    let p0 = p.prove(&s0, &w0, &mut rng).expect("prove");
    let p1 = p.prove(&s1, &w1, &mut rng).expect("prove");
    assert!(v.hint_closes(&s0, &p0) && v.hint_closes(&s1, &p1));
    // Without a hint, or with another proof's, a valid proof still verifies
    // (in full), and the hint does not close.
    let bare = UseProof(p0.0.clone(), None);
    v.verify(&s0, &bare).expect("verifies without a hint");
    assert_eq!(UseProof::from_bytes(&bare.to_bytes()).expect("decodes"), bare);
    let swapped = UseProof(p0.0.clone(), p1.1.clone());
    assert!(!v.hint_closes(&s0, &swapped));
    v.verify(&s0, &swapped).expect("verifies in full");
    // A hint never makes an invalid proof pass: its own hint against a
    // tampered statement, or against another statement.
    let mut t = s0.clone();
    t.nullifier += Fr::one();
    assert!(!v.hint_closes(&t, &p0));
    assert_eq!(v.verify(&t, &p0), Err(liutong_zk::Error::InvalidProof));
    assert_eq!(v.verify(&s1, &p0), Err(liutong_zk::Error::InvalidProof));
    // A verifier of another key finds no hint for this proof.
    let other = Verifier::new(&groth16::setup(&mut rng).expect("setup").vk);
    assert!(other.hint(&s0, &p0.0).is_none());
    assert!(!other.hint_closes(&s0, &p0));
}

#[test]
fn what_the_circuit_forbids_cannot_be_proven() {
    let p = prover();
    let mut rng = rand::rngs::OsRng;
    // Past max uses.
    let w = witness(2);
    let s = statement(&w);
    assert_eq!(
        p.prove(&s, &w, &mut rng).map_err(|e| e.code()).err(),
        Some("zk.unprovable")
    );
    assert!(!satisfied(s, w), "k = max_uses");
    // Expired.
    let w = witness(0);
    let s = w.statement(1, w.grant.not_after, field::reduce(&[7u8; 32]));
    assert!(p.prove(&s, &w, &mut rng).is_err());
    assert!(!satisfied(s, w), "time = not_after");
    // An action the grant does not allow.
    let w = witness(0);
    let s = w.statement(0, NOW, field::reduce(&[7u8; 32]));
    assert!(!satisfied(s, w), "download on a query grant");
    // Another dataset than the committed one.
    let w = witness(0);
    let mut s = statement(&w);
    s.dataset += Fr::one();
    assert!(!satisfied(s, w), "dataset");
    // The packing cannot be reread: 65,536 more uses for a second less
    // validity packs to the same number, and the circuit refuses it.
    let mut w = witness(0);
    let honest = w.grant.packed();
    w.grant.max_uses += 1 << 16;
    w.grant.not_after -= 1;
    assert_eq!(w.grant.packed(), honest);
    let s = statement(&w);
    assert!(!satisfied(s, w), "re-read packing");
    // A use index past the field's small numbers (a wrapped k).
    let mut w = witness(0);
    w.k = u64::MAX;
    let s = statement(&w);
    assert!(!satisfied(s, w), "wrapped k");
    // Another use's nullifier or another escrow tag: the native check
    // names it before any proving.
    let w = witness(0);
    for tamper in [0, 1] {
        let mut s = statement(&w);
        if tamper == 0 {
            s.nullifier = circuit::nullifier(&w.secret, &w.grant.salt, 1);
        } else {
            s.escrow_tag += Fr::one();
        }
        let err = p.prove(&s, &w, &mut rng).expect_err("refused");
        assert_eq!(err.code(), "zk.unprovable");
        assert!(err.to_string().contains("not this use's"), "{err}");
        assert!(!satisfied(s, w.clone()), "tampered case {tamper}");
    }
}

#[test]
fn snarkjs_json_has_snarkjs_shapes() {
    let p = prover();
    let w = witness(0);
    let s = statement(&w);
    let proof = p.prove(&s, &w, &mut rand::rngs::OsRng).expect("prove");
    let vk = liutong_zk::snarkjs::verification_key(p.verifying_key());
    assert_eq!(vk["curve"], "bn128");
    assert_eq!(vk["nPublic"], 8);
    assert_eq!(vk["IC"].as_array().map(Vec::len), Some(9));
    let pj = liutong_zk::snarkjs::proof(&proof);
    assert_eq!(pj["pi_b"][2], serde_json::json!(["1", "0"]));
    let public = liutong_zk::snarkjs::public(&s);
    assert_eq!(public[2], "1");
    assert_eq!(public[3], NOW.to_string());
    // If snarkjs is installed, it must accept the proof.
    if let Ok(bin) = std::env::var("LIUTONG_SNARKJS") {
        let dir = tempfile::tempdir().expect("tmp");
        for (name, v) in [
            ("verification_key.json", &vk),
            ("proof.json", &pj),
            ("public.json", &public),
        ] {
            std::fs::write(dir.path().join(name), v.to_string()).expect("write");
        }
        let out = std::process::Command::new(bin)
            .args([
                "groth16",
                "verify",
                "verification_key.json",
                "public.json",
                "proof.json",
            ])
            .current_dir(dir.path())
            .output()
            .expect("snarkjs runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("OK"), "snarkjs: {text}");
    }
}

#[test]
fn a_proving_key_with_altered_points_makes_no_proof() {
    // Points still on the curve (so the key loads), but not the key's own:
    // the prover refuses rather than hand out a proof that cannot verify.
    let mut pk = prover().proving_key().clone();
    pk.h_query.swap(5, 6);
    let altered = Prover::new(pk).expect("loads");
    let w = witness(0);
    let e = altered
        .prove(&statement(&w), &w, &mut rand::rngs::OsRng)
        .expect_err("no proof from an altered key");
    assert_eq!(e.code(), "zk.malformed_key", "{e}");
}

#[test]
fn keys_from_arkworks_own_setup_still_prove_and_others_are_refused() {
    use ark_groth16::r1cs_to_qap::LibsnarkReduction;
    use ark_groth16::Groth16;
    use liutong_zk::qap::CosetReduction;
    let mut rng = rand::rngs::OsRng;
    let w = witness(0);
    let s = statement(&w);
    // A key made before the coset reduction (arkworks' libsnark one, its H
    // query over the next power of two): our prover still proves with it.
    let stock = Groth16::<liutong_zk::Bn254, LibsnarkReduction>::generate_random_parameters_with_reduction(
        UseCircuit::blank(),
        &mut rng,
    )
    .expect("stock setup");
    assert_eq!(stock.h_query.len(), 8191);
    let p = Prover::new(stock).expect("a stock key loads");
    let proof = p.prove(&s, &w, &mut rng).expect("prove");
    Verifier::new(p.verifying_key()).verify(&s, &proof).expect("verifies");
    // Our keys: one H point per coset element. Our prover's proofs satisfy
    // arkworks' own verifier (the equation snarkjs checks), and arkworks'
    // own prover, given the same reduction, makes proofs that verify.
    let ours = prover().proving_key().clone();
    assert_eq!(ours.h_query.len(), 6144);
    let mine = prover().prove(&s, &w, &mut rng).expect("prove");
    let pvk = ark_groth16::prepare_verifying_key(&ours.vk);
    assert!(Groth16::<liutong_zk::Bn254>::verify_proof(&pvk, &mine.0, &s.inputs()).expect("checkable"));
    let c = UseCircuit {
        statement: s.clone(),
        witness: w.clone(),
    };
    let ark = Groth16::<liutong_zk::Bn254, CosetReduction>::create_random_proof_with_reduction(c, &ours, &mut rng)
        .expect("arkworks proves");
    Verifier::new(&ours.vk)
        .verify(&s, &UseProof(ark, None))
        .expect("arkworks' proof with the coset reduction verifies");
    // Any other H query length is not a key for this circuit.
    let mut short = ours;
    short.h_query.pop();
    let e = Prover::new(short).err().expect("refused");
    assert_eq!(e.code(), "zk.malformed_key", "{e}");
}

#[test]
fn a_cache_of_a_grants_uses_gives_the_same_valid_proofs() {
    use liutong_zk::groth16::ProverCache;
    let p = prover();
    let v = Verifier::new(p.verifying_key());
    let mut rng = rand::rngs::OsRng;
    // The same proving key with fixed-base tables: each proof valid, the
    // caches of the two provers interchangeable (same sums).
    let tabled = Prover::with_tables(p.proving_key().clone()).expect("tables");
    let mut tabled_cache = ProverCache::default();
    let mut cache = ProverCache::default();
    let mut tree = MemoryTree::default();
    let mut w = witness(0);
    w.grant.max_uses = 5;
    tree.set(3, w.grant.commitment());
    w.path = tree.path(3);
    for k in 0..3 {
        w.k = k;
        w.escrow_randomness = field::random();
        if k == 2 {
            // Another grant joins the tree: the root and the top of the path change.
            tree.set(1 << 19, field::random());
            w.path = tree.path(3);
        }
        let s = statement(&w);
        let proof = p.prove_with(&s, &w, &mut cache, &mut rng).expect("prove");
        v.verify(&s, &proof).expect("cached proof verifies");
        let proof = tabled
            .prove_with(&s, &w, &mut tabled_cache, &mut rng)
            .expect("prove with tables");
        v.verify(&s, &proof).expect("a proof with tables verifies");
        assert_eq!(tabled_cache, cache, "use {k}: the same segment sums");
    }
    // The cache survives its bytes, and a damaged one only costs time.
    let bytes = cache.to_bytes();
    assert_eq!(ProverCache::from_bytes(&bytes), cache);
    let mut damaged = ProverCache::from_bytes(&bytes[..bytes.len() / 2]);
    w.k = 3;
    let s = statement(&w);
    v.verify(&s, &p.prove_with(&s, &w, &mut damaged, &mut rng).expect("prove"))
        .expect("verifies");
    let mut flipped = bytes.clone();
    let at = flipped.len() - 40;
    flipped[at] ^= 1;
    let mut wrong = ProverCache::from_bytes(&flipped);
    v.verify(&s, &p.prove_with(&s, &w, &mut wrong, &mut rng).expect("prove"))
        .expect("verifies");
}
