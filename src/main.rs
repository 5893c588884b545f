//! The `rustydb` binary.

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use rustydb::config::{Config, ServeArgs};
use rustydb::server::{Server, tls};

#[derive(Parser)]
#[command(
    name = "rustydb",
    version,
    about = "RustyDB Server: REST, WebSocket and GraphQL over an embedded database"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API on one port.
    Serve(ServeArgs),
}

fn main() -> ExitCode {
    let process_start = Instant::now();
    let Cli { command } = Cli::parse();
    let Command::Serve(args) = command;
    let config = match Config::resolve(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let log = rustydb::telemetry::init(config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, log, process_start)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    config: Config,
    log: rustydb::telemetry::LogControl,
    process_start: Instant,
) -> rustydb::error::Result<()> {
    let data_dir = config.data_dir.clone();
    let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    let address = listener.local_addr()?;
    let server = Server::start(config, log, process_start).await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        address = %format!("{scheme}://{address}"),
        data_dir = %data_dir.display(),
        "rustydb listening"
    );
    match tls {
        Some(acceptor) => {
            let listener = tls::TlsListener::new(listener, acceptor)?;
            server.serve(listener, shutdown_signal()).await
        }
        None => server.serve(listener, shutdown_signal()).await,
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
