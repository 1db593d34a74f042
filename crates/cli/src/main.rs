//! `ctrd`: a containerd command-line tool on `ctrd-client`, for people and scripts.
//!
//! ```text
//! ctrd images import busybox.tar
//! ctrd run --rm docker.io/library/busybox:latest hello echo hello
//! ctrd run -d docker.io/library/busybox:latest web sleep 1000
//! ctrd exec -t web sh
//! ctrd ps --json
//! ctrd rm -f web
//! ```
//!
//! Arguments follow `ctr`'s order; `run` and `exec` leave with the process's exit status;
//! progress goes to stderr, data to stdout; `--json` makes every listing JSON.

mod args;
mod containers;
mod error;
mod events;
mod images;
mod io;
mod logs;
mod run;
mod snapshots;
mod table;

use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use ctrd_client::{Client, ConnectOptions};

use args::{Cli, Command};
use error::Error;

async fn dispatch(cli: Cli) -> Result<i32, Error> {
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "ctrd", &mut std::io::stdout());
        return Ok(0);
    }
    let options = ConnectOptions {
        connect_timeout: Duration::from_secs(cli.timeout.clamp(1, 30)),
        call_timeout: Some(Duration::from_secs(cli.timeout.max(1))),
    };
    let client = Client::connect_with(&cli.address, options)
        .await?
        .try_with_namespace(&cli.namespace)?;
    match cli.command {
        Command::Images(command) => images::images(&client, command, cli.json).await,
        Command::Run(r) => run::run(&client, r).await,
        Command::Ps => containers::ps(&client, cli.json).await,
        Command::Exec(e) => run::exec(&client, e).await,
        Command::Logs(l) => logs::logs(&client, l).await,
        Command::Kill(k) => containers::kill(&client, k).await,
        Command::Rm(r) => containers::rm(&client, r).await,
        Command::Events(e) => events::events(&client, &e.filters, cli.json).await,
        Command::Snapshots(s) => snapshots::snapshots(&client, s, cli.json).await,
        Command::Version => {
            let server = client.server_version().await?;
            if cli.json {
                table::json(&serde_json::json!({
                    "client": env!("CARGO_PKG_VERSION"),
                    "server": server,
                }));
            } else {
                println!("Client:\n  Version: {}", env!("CARGO_PKG_VERSION"));
                println!(
                    "\nServer:\n  Version: {}\n  Revision: {}",
                    server.version, server.revision
                );
            }
            Ok(0)
        }
        Command::Completions { .. } => Ok(0),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ctrd: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(cli));
    // A read of our stdin may still be blocked; it must not hold the exit.
    runtime.shutdown_background();
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(255)),
        Err(e) => {
            eprintln!("ctrd: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
