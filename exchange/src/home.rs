//! A node's or a party's home directory: its keys, the genesis it belongs to,
//! and its store.
//!
//! ```text
//! identity.json   the party's Ed25519 signing and X25519 encryption secrets (mode 0600)
//! orderer.json    the block-signing secret (the orderer's home only, mode 0600)
//! genesis.json    the chain's genesis document
//! sources.json    a provider's registered files: dataset, version → path (never on the ledger)
//! store/          RocksDB
//! retired/        identities replaced by key rotation
//! ```

use crate::genesis::Genesis;
use crate::{Error, Result};
use liutong_catalog::{Commitment, DatasetId};
use liutong_core::{Digest, EncryptionKeyPair, SigningKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const SOURCES_FORMAT: &str = "liutong-sources/1";

/// Where a provider's registered files are, for its node to deliver them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sources {
    pub format: String,
    /// Dataset id (hex) → version → file.
    pub datasets: BTreeMap<String, BTreeMap<u32, SourceFile>>,
}

/// One registered version's file, with what it must still hash to.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SourceFile {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: Digest,
    /// A table registered from PostgreSQL: `path` is the snapshot taken at
    /// registration (what a download delivers); queries read the live table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresSource>,
}

/// Where a PostgreSQL table lives. The connection string stays in this
/// file (written owner-only), never on the ledger.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PostgresSource {
    pub url: String,
    pub table: String,
}

pub const IDENTITY_FORMAT: &str = "liutong-identity/1";

/// A party's secrets.
#[derive(Clone)]
pub struct Identity {
    pub signing: SigningKey,
    pub encryption: EncryptionKeyPair,
}

impl Identity {
    pub fn generate() -> Identity {
        Identity {
            signing: SigningKey::generate(),
            encryption: EncryptionKeyPair::generate(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    format: String,
    signing_public: String,
    signing_secret: String,
    encryption_public: String,
    encryption_secret: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrdererFile {
    format: String,
    public: String,
    secret: String,
}

#[derive(Clone, Debug)]
pub struct Home {
    dir: PathBuf,
}

impl Home {
    pub fn new(dir: impl Into<PathBuf>) -> Home {
        Home { dir: dir.into() }
    }

    /// `$LIUTONG_HOME`, else `~/.liutong`.
    pub fn default_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("LIUTONG_HOME") {
            return PathBuf::from(d);
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        home.join(".liutong")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn store_dir(&self) -> PathBuf {
        self.dir.join("store")
    }
    pub fn genesis_path(&self) -> PathBuf {
        self.dir.join("genesis.json")
    }
    fn identity_path(&self) -> PathBuf {
        self.dir.join("identity.json")
    }
    fn orderer_path(&self) -> PathBuf {
        self.dir.join("orderer.json")
    }

    pub fn has_identity(&self) -> bool {
        self.identity_path().exists()
    }
    pub fn has_genesis(&self) -> bool {
        self.genesis_path().exists()
    }
    pub fn is_orderer(&self) -> bool {
        self.orderer_path().exists()
    }

    fn ensure_dir(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::Home(format!("cannot create {}: {e}", self.dir.display())))
    }

    /// Creates a new identity; refuses to overwrite one.
    pub fn create_identity(&self) -> Result<Identity> {
        self.ensure_dir()?;
        if self.has_identity() {
            return Err(Error::Home(format!(
                "{} already exists; refusing to overwrite a party's keys",
                self.identity_path().display()
            )));
        }
        let id = Identity::generate();
        self.write_identity(&id)?;
        Ok(id)
    }

    /// Replaces the identity after a key rotation, keeping the old one under `retired/`.
    pub fn replace_identity(&self, new: &Identity) -> Result<()> {
        let retired = self.dir.join("retired");
        std::fs::create_dir_all(&retired)
            .map_err(|e| Error::Home(format!("cannot create {}: {e}", retired.display())))?;
        let old = self.identity()?;
        let name = format!("identity-{}.json", old.signing.public_key());
        std::fs::copy(self.identity_path(), retired.join(name))
            .map_err(|e| Error::Home(format!("cannot keep the retired identity: {e}")))?;
        self.write_identity(new)
    }

    fn write_identity(&self, id: &Identity) -> Result<()> {
        let file = IdentityFile {
            format: IDENTITY_FORMAT.into(),
            signing_public: id.signing.public_key().to_string(),
            signing_secret: id.signing.secret_hex(),
            encryption_public: id.encryption.public_key().to_string(),
            encryption_secret: id.encryption.secret_hex(),
        };
        write_secret(
            &self.identity_path(),
            &serde_json::to_string_pretty(&file).expect("identity serializes"),
        )
    }

    pub fn identity(&self) -> Result<Identity> {
        let path = self.identity_path();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::Home(format!(
                "cannot read {}: {e} (create keys with `liutong party keygen --home {}` or `liutong init`)",
                path.display(),
                self.dir.display()
            ))
        })?;
        let f: IdentityFile =
            serde_json::from_str(&text).map_err(|e| Error::Home(format!("{} is malformed: {e}", path.display())))?;
        if f.format != IDENTITY_FORMAT {
            return Err(Error::Home(format!(
                "{}: unknown format {:?}",
                path.display(),
                f.format
            )));
        }
        let id = Identity {
            signing: SigningKey::from_secret_hex(&f.signing_secret)?,
            encryption: EncryptionKeyPair::from_secret_hex(&f.encryption_secret)?,
        };
        if id.signing.public_key().to_string() != f.signing_public.to_ascii_lowercase()
            || id.encryption.public_key().to_string() != f.encryption_public.to_ascii_lowercase()
        {
            return Err(Error::Home(format!(
                "{}: a public key does not match its secret",
                path.display()
            )));
        }
        Ok(id)
    }

    pub fn create_orderer_key(&self) -> Result<SigningKey> {
        self.ensure_dir()?;
        if self.is_orderer() {
            return Err(Error::Home(format!("{} already exists", self.orderer_path().display())));
        }
        let key = SigningKey::generate();
        let file = OrdererFile {
            format: IDENTITY_FORMAT.into(),
            public: key.public_key().to_string(),
            secret: key.secret_hex(),
        };
        write_secret(
            &self.orderer_path(),
            &serde_json::to_string_pretty(&file).expect("orderer key serializes"),
        )?;
        Ok(key)
    }

    pub fn orderer_key(&self) -> Result<SigningKey> {
        let path = self.orderer_path();
        let text =
            std::fs::read_to_string(&path).map_err(|e| Error::Home(format!("cannot read {}: {e}", path.display())))?;
        let f: OrdererFile =
            serde_json::from_str(&text).map_err(|e| Error::Home(format!("{} is malformed: {e}", path.display())))?;
        let key = SigningKey::from_secret_hex(&f.secret)?;
        if key.public_key().to_string() != f.public.to_ascii_lowercase() {
            return Err(Error::Home(format!(
                "{}: public key does not match the secret",
                path.display()
            )));
        }
        Ok(key)
    }

    pub fn genesis(&self) -> Result<Genesis> {
        if !self.has_genesis() {
            return Err(Error::Home(format!(
                "{} has no genesis.json (run `liutong init` for an orderer, or start the node with --follow URL)",
                self.dir.display()
            )));
        }
        Genesis::load(&self.genesis_path())
    }

    pub fn sources_path(&self) -> PathBuf {
        self.dir.join("sources.json")
    }

    /// The provider's registered files (none yet: an empty list).
    pub fn sources(&self) -> Result<Sources> {
        let path = self.sources_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Sources {
                    format: SOURCES_FORMAT.into(),
                    ..Default::default()
                })
            }
            Err(e) => return Err(Error::Home(format!("cannot read {}: {e}", path.display()))),
        };
        let sources: Sources =
            serde_json::from_str(&text).map_err(|e| Error::Home(format!("{} is malformed: {e}", path.display())))?;
        if sources.format != SOURCES_FORMAT {
            return Err(Error::Home(format!(
                "{} has format {:?}, not {SOURCES_FORMAT}",
                path.display(),
                sources.format
            )));
        }
        Ok(sources)
    }

    /// Records where version `version` of `dataset` is (an absolute path),
    /// after its registration committed.
    pub fn record_source(&self, dataset: &DatasetId, version: u32, file: &Path, c: &Commitment) -> Result<PathBuf> {
        self.record_source_with(dataset, version, file, c, None)
    }

    /// [`Home::record_source`], for a table that lives in PostgreSQL.
    pub fn record_source_with(
        &self,
        dataset: &DatasetId,
        version: u32,
        file: &Path,
        c: &Commitment,
        postgres: Option<PostgresSource>,
    ) -> Result<PathBuf> {
        let path = std::fs::canonicalize(file).map_err(|e| Error::Io(format!("{}: {e}", file.display())))?;
        let mut sources = self.sources()?;
        sources.datasets.entry(dataset.to_string()).or_default().insert(
            version,
            SourceFile {
                path: path.clone(),
                size: c.size,
                sha256: c.sha256,
                postgres,
            },
        );
        let text = serde_json::to_string_pretty(&sources).map_err(|e| Error::Io(e.to_string()))?;
        self.ensure_dir()?;
        // Owner-only: it may hold database connection strings.
        write_atomically(&self.sources_path(), text.as_bytes(), true)?;
        Ok(path)
    }

    /// The use circuit's Groth16 proving key (written by `liutong init`, and
    /// fetched from the node followed with the genesis).
    pub fn proving_key_path(&self) -> PathBuf {
        self.dir.join("zk").join("use.pk")
    }

    pub fn has_proving_key(&self) -> bool {
        self.proving_key_path().exists()
    }

    pub fn write_proving_key(&self, bytes: &[u8]) -> Result<()> {
        let path = self.proving_key_path();
        std::fs::create_dir_all(path.parent().unwrap_or(&self.dir))
            .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
        write_atomically(&path, bytes, false)
    }

    /// A prover from the home's proving key, refused unless the key's own
    /// verifying key is the chain's (the genesis's digest).
    pub fn prover(&self, genesis: &Genesis) -> Result<liutong_zk::Prover> {
        let path = self.proving_key_path();
        let bytes = std::fs::read(&path).map_err(|e| {
            Error::Home(format!(
                "{}: {e} (a node that follows the chain fetches it with the genesis)",
                path.display()
            ))
        })?;
        let pk =
            liutong_zk::groth16::pk_from_bytes(&bytes).map_err(|e| Error::Home(format!("{}: {e}", path.display())))?;
        if liutong_zk::groth16::vk_digest(&pk.vk) != genesis.zk.verifying_key_digest.0 {
            return Err(Error::Home(format!(
                "{} is not this chain's proving key (its verifying key differs from the genesis's)",
                path.display()
            )));
        }
        liutong_zk::Prover::new(pk).map_err(|e| Error::Io(e.to_string()))
    }

    /// The prover's sums from a private grant's earlier uses (owner-only).
    pub fn prover_cache_path(&self, grant: &crate::grants::GrantId) -> PathBuf {
        self.dir.join("zk").join("cache").join(format!("{grant}.bin"))
    }

    fn secrets_path(&self) -> PathBuf {
        self.dir.join("zk").join("secrets.json")
    }

    /// Keeps a private grant's secret, under its hash (owner-only file).
    pub fn keep_private_secret(&self, secret_hash: &str, secret: &str) -> Result<()> {
        let mut all = self.private_secrets()?;
        all.insert(secret_hash.to_string(), secret.to_string());
        let path = self.secrets_path();
        std::fs::create_dir_all(path.parent().unwrap_or(&self.dir))
            .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
        let text = serde_json::to_string_pretty(&all).map_err(|e| Error::Io(e.to_string()))?;
        write_atomically(&path, text.as_bytes(), true)
    }

    /// Secret hash → secret, both hex.
    pub fn private_secrets(&self) -> Result<std::collections::BTreeMap<String, String>> {
        match std::fs::read_to_string(self.secrets_path()) {
            Ok(t) => serde_json::from_str(&t)
                .map_err(|e| Error::Home(format!("{} is malformed: {e}", self.secrets_path().display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
            Err(e) => Err(Error::Io(format!("{}: {e}", self.secrets_path().display()))),
        }
    }

    pub fn write_genesis(&self, genesis: &Genesis) -> Result<()> {
        self.ensure_dir()?;
        write_atomically(&self.genesis_path(), genesis.to_json().as_bytes(), false)
    }
}

fn write_secret(path: &Path, text: &str) -> Result<()> {
    write_atomically(path, text.as_bytes(), true)
}

/// Writes via a temporary file and a rename, so a crash never leaves half a file.
pub fn write_atomically(path: &Path, bytes: &[u8], secret: bool) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let io = |e: std::io::Error| Error::Io(format!("writing {}: {e}", path.display()));
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if secret {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = secret;
        let mut f = opts.open(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}
