use clap::Parser;
use liutong_exchange::cli::{run, Cli};
use std::process::ExitCode;

// The node allocates and frees many small buffers across threads (requests,
// transactions, receipts); mimalloc does that at a fraction of glibc's cost.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error [io.error]: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(out) => {
            if json {
                println!("{}", out.json);
            } else {
                println!("{}", out.text);
            }
            if out.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "error": { "code": e.code(), "message": e.to_string() } })
                );
            } else {
                eprintln!("error [{}]: {e}", e.code());
            }
            ExitCode::FAILURE
        }
    }
}
