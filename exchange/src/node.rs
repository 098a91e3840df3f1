//! A running node: the ledger over the home's store, an ordering (the solo
//! orderer on the operator's home, forwarding to the orderer on a follower),
//! the follower loop that pulls and checks blocks, and the HTTP server.

use crate::api::{self, AppState};
use crate::client::Client;
use crate::genesis::Genesis;
use crate::home::Home;
use crate::machine::ExchangeMachine;
use crate::serve::Provider;
use crate::{Error, Result};
use liutong_ledger::{CheckedTx, Ledger, Ordering, Receipt, Solo};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// Opens the ledger of a home for its genesis.
pub fn open_ledger(home: &Home, genesis: &Genesis) -> Result<Arc<Ledger>> {
    let machine = Arc::new(ExchangeMachine::new(genesis.clone()));
    Ok(Arc::new(Ledger::open(
        &home.store_dir(),
        genesis.ledger_genesis(),
        machine,
    )?))
}

/// A follower's ordering: forwards transactions (already checked here) to
/// the orderer and passes its answers back.
struct Forward {
    orderer: Client,
    runtime: tokio::runtime::Handle,
}

impl Ordering for Forward {
    fn submit(&self, txs: Vec<CheckedTx>) -> Vec<oneshot::Receiver<liutong_ledger::Result<Receipt>>> {
        let (senders, receivers): (Vec<_>, Vec<_>) = txs.iter().map(|_| oneshot::channel()).unzip();
        if txs.is_empty() {
            return receivers;
        }
        let client = self.orderer.clone();
        let bytes: Vec<Vec<u8>> = txs.into_iter().map(|c| c.bytes).collect();
        self.runtime.spawn(async move {
            let answers = client.submit_batch(&bytes).await;
            let answers: Vec<liutong_ledger::Result<Receipt>> = match answers {
                Ok(list) if list.len() == senders.len() => list
                    .into_iter()
                    .map(|r| r.and_then(|v| v.into_receipt()).map_err(to_ledger_error))
                    .collect(),
                Ok(list) => {
                    let e = Error::Io(format!(
                        "the orderer answered {} of {} transactions",
                        list.len(),
                        senders.len()
                    ));
                    senders
                        .iter()
                        .map(|_| Err(to_ledger_error(Error::Io(e.to_string()))))
                        .collect()
                }
                Err(e) => {
                    let (code, message) = (e.code().to_string(), e.to_string());
                    senders
                        .iter()
                        .map(|_| Err(liutong_ledger::Error::rejected(code.clone(), message.clone())))
                        .collect()
                }
            };
            for (s, a) in senders.into_iter().zip(answers) {
                let _ = s.send(a);
            }
        });
        receivers
    }
}

fn to_ledger_error(e: Error) -> liutong_ledger::Error {
    match e {
        Error::Ledger(l) => l,
        other => liutong_ledger::Error::rejected(other.code().to_string(), other.to_string()),
    }
}

/// Where a node gets its blocks.
#[derive(Clone, Debug)]
pub enum NodeRole {
    /// The home holds the orderer key: this node orders and seals blocks.
    Orderer,
    /// Follows the orderer at this URL.
    Follower(String),
}

pub struct NodeConfig {
    pub home: Home,
    pub listen: SocketAddr,
    pub follow: Option<String>,
    /// How long the delivery service waits for a consumer's receipt.
    pub receipt_timeout: Duration,
    /// The query service's limits.
    pub queries: crate::serve::QueryConfig,
}

/// A started node. Dropping it does not stop it; call [`RunningNode::stop`].
pub struct RunningNode {
    pub url: String,
    pub addr: SocketAddr,
    pub ledger: Arc<Ledger>,
    pub genesis: Genesis,
    pub role: NodeRole,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    follower: Option<tokio::task::JoinHandle<()>>,
}

impl RunningNode {
    /// Stops serving and following, waits for in-flight requests, and returns
    /// once the store is closed (so `chain verify` can open it), or after 10 s.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        if let Some(f) = self.follower {
            let _ = f.await;
        }
        let ledger = self.ledger;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&ledger) > 1 {
            if std::time::Instant::now() > deadline {
                tracing::warn!(
                    holders = Arc::strong_count(&ledger) - 1,
                    "the store is still in use after stop"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Starts a node from its home: an orderer if the home holds the orderer key,
/// otherwise a follower of `follow` (whose genesis is fetched and kept the
/// first time, and must match afterwards).
pub async fn start(config: NodeConfig) -> Result<RunningNode> {
    let home = config.home;
    let role = match (&config.follow, home.is_orderer()) {
        (Some(url), _) => NodeRole::Follower(url.trim_end_matches('/').to_string()),
        (None, true) => NodeRole::Orderer,
        (None, false) => {
            return Err(Error::Home(format!(
                "{} holds no orderer key; start a party node with --follow ORDERER_URL",
                home.dir().display()
            )))
        }
    };
    let genesis = match &role {
        NodeRole::Orderer => home.genesis()?,
        NodeRole::Follower(url) => {
            let remote = Client::new(url)?.genesis().await?;
            let genesis = if home.has_genesis() {
                let local = home.genesis()?;
                if local.digest() != remote.digest() {
                    return Err(Error::BadGenesis(format!(
                        "{} follows chain {} (genesis {}), but {url} serves genesis {}",
                        home.dir().display(),
                        local.chain_id,
                        local.digest(),
                        remote.digest()
                    )));
                }
                local
            } else {
                home.write_genesis(&remote)?;
                remote
            };
            // The proving key comes with the genesis.
            crate::private::fetch_proving_key(&home, &Client::new(url)?, &genesis).await?;
            genesis
        }
    };
    let ledger = {
        let (home, genesis) = (home.clone(), genesis.clone());
        tokio::task::spawn_blocking(move || open_ledger(&home, &genesis))
            .await
            .map_err(|e| Error::Io(format!("opening the store: {e}")))??
    };
    let ordering: Arc<dyn Ordering> = match &role {
        NodeRole::Orderer => {
            let key = home.orderer_key()?;
            if key.public_key() != genesis.orderer {
                return Err(Error::Home(format!(
                    "the orderer key in {} is not the genesis orderer {}",
                    home.dir().display(),
                    genesis.orderer
                )));
            }
            Arc::new(Solo::start(ledger.clone(), key))
        }
        NodeRole::Follower(url) => Arc::new(Forward {
            orderer: Client::new(url)?,
            runtime: tokio::runtime::Handle::current(),
        }),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::Io(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener.local_addr().map_err(|e| Error::Io(e.to_string()))?;
    let (shutdown, mut stop_rx) = watch::channel(false);
    let provider = if home.has_identity() {
        let (home, timeout, skew, queries) = (
            home.clone(),
            config.receipt_timeout,
            genesis.ledger_genesis().params.max_clock_skew_ms,
            config.queries,
        );
        Some(Arc::new(
            tokio::task::spawn_blocking(move || Provider::open(home, timeout, skew, queries))
                .await
                .map_err(|e| Error::Io(format!("opening the delivery service: {e}")))??,
        ))
    } else {
        None
    };
    let state = Arc::new(AppState {
        ledger: ledger.clone(),
        ordering,
        checker: liutong_ledger::Checker::start(ledger.rules().clone()),
        genesis: genesis.clone(),
        following: match &role {
            NodeRole::Follower(u) => Some(u.clone()),
            NodeRole::Orderer => None,
        },
        stopping: shutdown.subscribe(),
        provider: provider.clone(),
        home: home.clone(),
        audit: Arc::new(crate::audit::sql::LedgerTables::new()),
        queries: config.queries,
        limiter: crate::serve::QueryLimiter::new(&config.queries),
    });
    let _reaper = provider.map(|p| tokio::spawn(p.reap(state.clone())));
    // The audit service's Arrow tables, built once now rather than on the first query.
    let warm = state.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = warm.audit.warm(&warm.ledger) {
            tracing::warn!(error = %e, "building the audit tables");
        }
    });
    let app = api::router(state);
    let mut server_stop = shutdown.subscribe();
    let server = tokio::spawn(async move {
        let graceful = async move {
            let _ = server_stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(graceful).await {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    let follower = match &role {
        NodeRole::Follower(url) => {
            let (client, ledger) = (Client::new(url)?, ledger.clone());
            Some(tokio::spawn(async move {
                tokio::select! {
                    _ = follow(client, ledger) => {}
                    _ = stop_rx.wait_for(|s| *s) => {}
                }
            }))
        }
        NodeRole::Orderer => None,
    };
    Ok(RunningNode {
        url: format!("http://{addr}"),
        addr,
        ledger,
        genesis,
        role,
        shutdown,
        server,
        follower,
    })
}

/// Pulls blocks from the orderer forever, checking and applying each. A
/// refused block is logged and retried later; our state stays as it was.
pub async fn follow(orderer: Client, ledger: Arc<Ledger>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let from = ledger.height() + 1;
        match orderer.blocks(from, 25_000).await {
            Ok(blocks) => {
                let ledger2 = ledger.clone();
                let result = tokio::task::spawn_blocking(move || -> liutong_ledger::Result<usize> {
                    let mut n = 0;
                    for b in &blocks {
                        ledger2.import_block(b)?;
                        n += 1;
                    }
                    Ok(n)
                })
                .await;
                match result {
                    Ok(Ok(_)) => {
                        backoff = Duration::from_millis(100);
                        continue;
                    }
                    Ok(Err(e)) => tracing::warn!(code = e.code(), error = %e, "refused a block from the orderer"),
                    Err(e) => tracing::error!(error = %e, "block import panicked"),
                }
            }
            Err(e) => tracing::warn!(code = e.code(), error = %e, "cannot fetch blocks from the orderer"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
