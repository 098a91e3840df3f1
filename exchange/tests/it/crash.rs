//! Crash safety: a child process commits transactions in a loop and is
//! killed with SIGKILL at random moments. After every kill, every
//! transaction it acknowledged is in the store, and chain verify passes.
//! `LIUTONG_CRASH_KILLS=200 cargo test crash` runs a longer campaign.

use liutong_core::Digest;
use liutong_exchange::home::Home;
use liutong_exchange::node::open_ledger;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn acknowledged_transactions_survive_sigkill() {
    let kills: usize = std::env::var("LIUTONG_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().expect("temp dir");
    let home = Home::new(dir.path().join("crash"));
    let mut acked: Vec<Digest> = Vec::new();
    for round in 0..kills {
        let mut child = Command::new(env!("CARGO_BIN_EXE_liutong"))
            .arg("--home")
            .arg(home.dir())
            .args(["debug", "crash-writer"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the writer starts");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            let mut r = std::io::BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    // Only whole lines count: a torn line was never fully acknowledged.
                    Ok(_) if line.ends_with(b"\n") => {
                        let _ = tx.send(String::from_utf8_lossy(&line).trim().to_string());
                    }
                    Ok(_) => break,
                }
            }
        });
        let ready = rx.recv_timeout(Duration::from_secs(60)).expect("the writer gets ready");
        assert!(ready.starts_with("ready"), "{ready}");
        std::thread::sleep(Duration::from_millis(rand::random::<u64>() % 250));
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        reader.join().expect("reader");
        let before = acked.len();
        for line in rx.try_iter() {
            if let Some(id) = line.strip_prefix("ack ") {
                acked.push(id.parse().expect("tx id"));
            }
        }
        let genesis = home.genesis().expect("genesis");
        let ledger = open_ledger(&home, &genesis).expect("the store reopens after SIGKILL");
        for id in &acked {
            ledger
                .tx(id)
                .unwrap_or_else(|e| panic!("round {round}: acknowledged transaction {id} is lost: {e}"));
        }
        if round % 5 == 4 || round + 1 == kills {
            let report = ledger.verify_chain().expect("verify runs");
            assert!(report.ok(), "round {round}: {:?}", report.problems);
        }
        eprintln!(
            "round {round}: {} new acknowledged, {} total, height {}",
            acked.len() - before,
            acked.len(),
            ledger.height()
        );
    }
    assert!(
        !acked.is_empty(),
        "the writer acknowledged nothing; the test tested nothing"
    );
}
