//! `liutong audit open` (the auditor opens a private use) and `liutong zk
//! export --snarkjs` (keys and proofs for snarkjs).

use crate::cli::{NodeArg, Output};
use crate::client::Client;
use crate::home::Home;
use crate::private::{FieldHex, Opening};
use crate::{Error, Result};
use clap::Subcommand;
use liutong_core::Digest;
use serde_json::json;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum ZkCommand {
    /// Re-verify a private access-log entry's proof here, against the
    /// genesis's verifying key and the entry's public inputs.
    Verify {
        /// The entry (its request digest).
        entry: String,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Write the verifying key (and with --entry a logged private use's proof
    /// and public inputs) in snarkjs's JSON: `snarkjs groth16 verify
    /// verification_key.json public.json proof.json`.
    Export {
        /// The directory to write verification_key.json (and proof.json, public.json) into.
        #[arg(long)]
        snarkjs: PathBuf,
        /// A private access-log entry (its request digest).
        #[arg(long)]
        entry: Option<String>,
        #[command(flatten)]
        node: NodeArg,
    },
}

async fn private_entry(
    client: &Client,
    entry: &str,
) -> Result<(crate::access::AccessRecord, crate::access::PrivateEntry)> {
    let digest: Digest = entry
        .trim()
        .parse()
        .map_err(|_| Error::BadRequest(format!("{entry:?} is not an entry's request digest (64 hex digits)")))?;
    let record: crate::access::AccessRecord = client.get(&format!("/v1/access-log/{digest}")).await?;
    let p = record.private.clone().ok_or_else(|| {
        Error::BadRequest(format!(
            "entry {digest} is not a private use; it names its grant already"
        ))
    })?;
    Ok((record, p))
}

/// `liutong audit open ENTRY`: an auditor opens a private use's escrow.
pub async fn open_entry(home: &Home, entry: String, node: NodeArg) -> Result<Output> {
    let client = Client::new(&node.node)?;
    let identity = home.identity()?;
    let me = client.key_binding(&identity.signing.public_key()).await?;
    let party = client.party(&me.party).await?;
    if !party.profile.roles.contains(&crate::party::Role::Auditor) {
        return Err(Error::BadRequest(format!(
            "only an auditor opens private uses; {} is not one",
            me.party
        )));
    }
    let (record, p) = private_entry(&client, &entry).await?;
    let sealed = p.openings.iter().find(|o| o.auditor == me.party).ok_or_else(|| {
        Error::BadRequest(format!(
            "entry {} has no opening sealed to {}",
            record.request, me.party
        ))
    })?;
    let opening = Opening::open(sealed, &identity.encryption, &p.escrow_tag)?;
    if !opening.matches(&p.escrow_tag) {
        return Err(Error::BadRequest(format!(
            "the opening does not match entry {}'s escrow tag: the consumer sealed a false opening",
            record.request
        )));
    }
    let grant = client.grant(&opening.grant).await?;
    let committed = grant.grant.private.as_ref().and_then(|g| g.commitment);
    if committed != Some(opening.commitment) {
        return Err(Error::BadRequest(format!(
            "the opening names grant {}, whose commitment is not the one the tag binds",
            opening.grant
        )));
    }
    Ok(Output::ok(
        format!(
            "entry {} opened (the opening matches its escrow tag and grant {}'s commitment)\n  grant     {}\n  holder    {}\n  provider  {}\n  dataset   {}\n  use       {} of {}\n  nullifier {}",
            record.request,
            opening.grant,
            opening.grant,
            grant.grant.holder,
            grant.grant.provider,
            grant.grant.dataset,
            opening.k + 1,
            grant.grant.terms.max_uses.unwrap_or(0),
            p.nullifier
        ),
        json!({
            "entry": record.request,
            "grant": opening.grant,
            "holder": grant.grant.holder,
            "provider": grant.grant.provider,
            "dataset": grant.grant.dataset,
            "use_index": opening.k,
            "nullifier": p.nullifier,
            "commitment": opening.commitment,
        }),
    ))
}

/// A private entry's proof and public inputs, decoded.
fn entry_proof(p: &crate::access::PrivateEntry) -> Result<(liutong_zk::UseProof, Vec<liutong_zk::Fr>)> {
    let bytes = hex::decode(&p.proof).map_err(|e| Error::Io(format!("the entry's proof is not hex: {e}")))?;
    let proof = liutong_zk::UseProof::from_bytes(&bytes).map_err(|e| Error::Io(e.to_string()))?;
    let inputs = p
        .public_inputs
        .iter()
        .map(FieldHex::fr)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|r| Error::Io(r.message))?;
    Ok((proof, inputs))
}

pub async fn zk(home: &Home, cmd: ZkCommand) -> Result<Output> {
    let (snarkjs, entry, node) = match cmd {
        ZkCommand::Export { snarkjs, entry, node } => (snarkjs, entry, node),
        ZkCommand::Verify { entry, node } => return verify_entry(home, &entry, &node).await,
    };
    let client = Client::new(&node.node)?;
    let genesis = crate::cli::chain_genesis(home, &client, false).await?;
    let vk = genesis.zk.verifying_key()?;
    std::fs::create_dir_all(&snarkjs).map_err(|e| Error::Io(format!("{}: {e}", snarkjs.display())))?;
    let write = |name: &str, v: &serde_json::Value| -> Result<PathBuf> {
        let path = snarkjs.join(name);
        let text = serde_json::to_string_pretty(v).map_err(|e| Error::Io(e.to_string()))?;
        crate::home::write_atomically(&path, text.as_bytes(), false)?;
        Ok(path)
    };
    let mut written = vec![write(
        "verification_key.json",
        &liutong_zk::snarkjs::verification_key(&vk),
    )?];
    if let Some(entry) = entry {
        let (_, p) = private_entry(&client, &entry).await?;
        let (proof, inputs) = entry_proof(&p)?;
        written.push(write("proof.json", &liutong_zk::snarkjs::proof(&proof))?);
        written.push(write(
            "public.json",
            &serde_json::Value::Array(
                inputs
                    .iter()
                    .map(|x| serde_json::Value::String(liutong_zk::FieldBytes::of(x).to_decimal()))
                    .collect(),
            ),
        )?);
    }
    let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    Ok(Output::ok(
        format!(
            "wrote {}\ncheck with: snarkjs groth16 verify {}",
            names.join(", "),
            if names.len() == 3 {
                "verification_key.json public.json proof.json"
            } else {
                "verification_key.json public.json proof.json (add --entry to export a proof)"
            }
        ),
        json!({ "written": names, "verifying_key_digest": genesis.zk.verifying_key_digest }),
    ))
}

async fn verify_entry(home: &Home, entry: &str, node: &NodeArg) -> Result<Output> {
    let client = Client::new(&node.node)?;
    let genesis = crate::cli::chain_genesis(home, &client, false).await?;
    let (record, p) = private_entry(&client, entry).await?;
    let (proof, inputs) = entry_proof(&p)?;
    let names = liutong_zk::circuit::PUBLIC_NAMES;
    if inputs.len() != names.len() {
        return Err(Error::BadEvidence(format!(
            "the entry has {} public inputs, the circuit {}",
            inputs.len(),
            names.len()
        )));
    }
    let small = |i: usize| -> Result<u64> {
        u64::try_from(num_of(&inputs[i])?).map_err(|_| Error::BadEvidence(format!("{} is out of range", names[i])))
    };
    let statement = liutong_zk::Statement {
        root: inputs[0],
        dataset: inputs[1],
        action: u8::try_from(small(2)?).map_err(|_| Error::BadEvidence("action is out of range".into()))?,
        time: small(3)?,
        request: inputs[4],
        nullifier: inputs[5],
        escrow_tag: inputs[6],
        terms: inputs[7],
    };
    if statement.inputs().as_slice() != inputs.as_slice() {
        return Err(Error::BadEvidence(
            "the entry's action or time input is not a valid one".into(),
        ));
    }
    let verifier = liutong_zk::Verifier::new(&genesis.zk.verifying_key()?);
    let ok = verifier.verify(&statement, &proof).is_ok();
    let text = format!(
        "entry {}: the proof {} against the genesis's verifying key {}\n  nullifier {}\n  {}",
        record.request,
        if ok { "VERIFIES" } else { "DOES NOT VERIFY" },
        genesis.zk.verifying_key_digest,
        p.nullifier,
        names
            .iter()
            .zip(&p.public_inputs)
            .map(|(n, v)| format!("{n} {v}"))
            .collect::<Vec<_>>()
            .join("\n  ")
    );
    Ok(Output {
        ok,
        text,
        json: json!({ "entry": record.request, "verified": ok, "nullifier": p.nullifier, "public_inputs": p.public_inputs }),
    })
}

fn num_of(f: &liutong_zk::Fr) -> Result<u128> {
    let b = liutong_zk::FieldBytes::of(f).0;
    if b[..16].iter().any(|x| *x != 0) {
        return Err(Error::BadEvidence("a small public input is not small".into()));
    }
    Ok(u128::from_be_bytes(b[16..].try_into().expect("16 bytes")))
}
