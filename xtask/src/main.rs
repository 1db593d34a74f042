//! Developer entry points. Run `cargo xtask --help`.

mod amend;
mod bench;
mod fuzz;
mod lock;
mod pinned;
mod regen;
mod suite;
mod tidy;
mod vendor;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Developer tasks of the ctrd workspace.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Fetch the pinned upstream protos, verify their hashes and compile them into the
    /// checked-in descriptor sets under proto/descriptors.
    Vendor {
        /// Re-pin proto/vendor.lock to the versions published now.
        #[arg(long)]
        update: bool,
        /// Take the files from a local containerd source tree instead of Debian.
        #[arg(long, value_name = "DIR")]
        from: Option<PathBuf>,
        /// Only check that the descriptor sets are what the fetched protos compile to.
        #[arg(long, conflicts_with = "update")]
        check: bool,
    },
    /// Regenerate generated/ from the checked-in descriptor sets (offline).
    Regen {
        /// Only check that generated/ is current; fail with the command to run if not.
        #[arg(long)]
        check: bool,
    },
    /// Install the test bed, then run formatting, lint, drift and every test.
    Test {
        /// Also fetch containerd 1.7 and run the tests against it.
        #[arg(long = "with-1.7")]
        with_1_7: bool,
    },
    /// Install the test bed, then run a real container under a private containerd.
    Demo,
    /// Run the cargo-fuzz targets under fuzz/, seeded from fuzz/corpus.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Only this target (see `cargo fuzz list` in fuzz/).
        target: Option<String>,
    },
    /// Measure our runc shim against Debian's Go shim and plain runc, side by side.
    Bench {
        /// Samples per latency figure.
        #[arg(long, default_value_t = 30)]
        runs: usize,
        /// containerd to run: 1.6, 1.7, 2.1 or 2.4.
        #[arg(long, default_value = "1.6")]
        daemon: String,
        /// Skip the 1 GiB throughput figure.
        #[arg(long)]
        quick: bool,
        /// Only these groups of figures (comma-separated): shim, stats, log-driver,
        /// snapshotter, kubelet, client. All by default.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
}

/// Errors of the developer tasks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("{path}: {error}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// The lock file is malformed.
    #[error("{path}: {message}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The pinned versions are no longer published and differ from what is.
    #[error("{0}")]
    Unpublished(String),
    /// The checked-in generated code is stale.
    #[error("{0}")]
    Drift(String),
    /// The generator failed.
    #[error("generator: {0}")]
    Codegen(ctrd_codegen::Error),
    /// Anything else, with its explanation.
    #[error("{0}")]
    Message(String),
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: &Path, error: std::io::Error) -> Error {
        Error::Io {
            path: path.to_owned(),
            error,
        }
    }
}

/// Exit status for "the pinned upstream version is gone": CI reports it without failing.
const EXIT_UNPUBLISHED: u8 = 3;

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Vendor {
            update,
            from,
            check,
        } => vendor::run(&vendor::Options {
            update,
            from,
            check,
        }),
        Task::Regen { check } => regen::run(if check {
            regen::Mode::Check
        } else {
            regen::Mode::Write
        }),
        Task::Test { with_1_7 } => suite::test(with_1_7),
        Task::Demo => suite::demo(),
        Task::Fuzz { seconds, target } => fuzz::run(&fuzz::Options { seconds, target }).map(drop),
        Task::Bench {
            runs,
            daemon,
            quick,
            only,
        } => match ctrd_testbed::Daemon::ALL
            .into_iter()
            .find(|d| d.version() == daemon)
        {
            Some(daemon) => bench::run(&bench::Options {
                runs,
                daemon,
                quick,
                only,
            }),
            None => Err(Error::Message(format!(
                "unknown daemon {daemon}: use 1.6, 1.7, 2.1 or 2.4"
            ))),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ Error::Unpublished(_)) => {
            eprintln!("xtask: {e}");
            ExitCode::from(EXIT_UNPUBLISHED)
        }
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
