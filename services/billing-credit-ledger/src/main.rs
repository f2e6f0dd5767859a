//! `billing-credit-ledger`: the service and its operator commands.

mod audit;
mod cli;
mod keys;
mod serve;
mod sweep;
mod token;

use std::io::IsTerminal;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command, LogFormat};
use tracing_subscriber::EnvFilter;

/// The allocator: a request allocates and frees many small buffers (JSON, SQL rows),
/// and glibc's malloc took about a tenth of the service's CPU under load (perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let command = match cli.command {
        Some(command) => command,
        // No command: serve, as `serve` would with the same global options.
        None => Cli::parse_from(std::env::args_os().chain(["serve".into()])).command.expect("serve was given"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match command {
            Command::Serve(args) => serve::run(&args).await,
            Command::Migrate(args) => {
                let store = serve::open_store(&args).await?;
                // With several hosts and no primary among them, the store opens down and
                // migrates once one appears: that is no success for this command.
                store.ping().await.context("no database to migrate")?;
                println!("migrations applied to {}", serve::redact(&args.db.database_url));
                Ok(())
            }
            Command::Token(args) => token::run(&args),
            Command::Replay(args) => audit::replay(&args).await,
            Command::Verify(args) => audit::verify(&args.db, args.site).await,
            Command::Export(args) => audit::export(&args).await,
        }
    })
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a person at a terminal: a file, a pipe or a log collector
    // would keep them as noise. NO_COLOR (no-color.org) turns them off at a terminal too.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).init(),
        LogFormat::Text => builder.init(),
    }
}
