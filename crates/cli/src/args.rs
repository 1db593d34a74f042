//! The command line: global options and subcommands, in `ctr`'s argument order.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A containerd command-line tool: images, containers, tasks, events and snapshots.
#[derive(Debug, Parser)]
#[command(name = "ctrd", version, about)]
pub struct Cli {
    /// containerd's gRPC socket.
    #[arg(
        long,
        short = 'a',
        global = true,
        env = "CONTAINERD_ADDRESS",
        default_value = "/run/containerd/containerd.sock"
    )]
    pub address: PathBuf,
    /// The namespace to act in.
    #[arg(
        long,
        short = 'n',
        global = true,
        env = "CONTAINERD_NAMESPACE",
        default_value = "default"
    )]
    pub namespace: String,
    /// Print listings and results as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// Seconds each call may take.
    #[arg(long, global = true, default_value_t = 60)]
    pub timeout: u64,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage images.
    #[command(subcommand, alias = "image", alias = "i")]
    Images(Images),
    /// Run a container: `ctrd run [flags] IMAGE ID [COMMAND...]`.
    Run(Run),
    /// List containers and their tasks.
    #[command(alias = "ls")]
    Ps,
    /// Run a command in a running container: `ctrd exec [flags] ID COMMAND...`.
    Exec(Exec),
    /// Print a container's output from the log file its `--log-uri` names (our log driver's
    /// json-file or CRI sink, or a `file://` URI).
    Logs(Logs),
    /// Send a signal to a container's task.
    Kill(Kill),
    /// Remove containers (and their tasks).
    #[command(alias = "delete", alias = "del")]
    Rm(Rm),
    /// Print events as they happen.
    Events(Events),
    /// Inspect snapshots.
    #[command(subcommand, alias = "snapshot")]
    Snapshots(Snapshots),
    /// Print the client's and the daemon's versions.
    Version,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `ctrd images ...`
#[derive(Debug, Subcommand)]
pub enum Images {
    /// Pull an image from a registry (`host[:port]/repository:tag`): HTTPS, or plain HTTP for
    /// this machine's own registries and with `--plain-http`.
    Pull {
        /// Do not unpack the image into the snapshotter.
        #[arg(long)]
        no_unpack: bool,
        /// The snapshotter to unpack into.
        #[arg(long, default_value = "overlayfs")]
        snapshotter: String,
        /// Credentials for the registry (basic auth or its token endpoint).
        #[arg(short, long, value_name = "USER:PASSWORD")]
        user: Option<String>,
        /// A PEM file of CA certificates to trust besides the system's (implies HTTPS).
        #[arg(long, alias = "ca-file", value_name = "FILE")]
        tlscacert: Option<PathBuf>,
        /// A PEM client certificate for registries that want one (with `--tlskey`).
        #[arg(long, value_name = "FILE", requires = "tlskey")]
        tlscert: Option<PathBuf>,
        /// The PEM private key of `--tlscert`.
        #[arg(long, value_name = "FILE", requires = "tlscert")]
        tlskey: Option<PathBuf>,
        /// Accept any server certificate (for test registries only).
        #[arg(short = 'k', long)]
        skip_verify: bool,
        /// How many layers download at once (0: two while unpacking, all otherwise).
        #[arg(long, default_value_t = 0, value_name = "N")]
        max_concurrent_downloads: usize,
        /// Speak plain HTTP to the registry.
        #[arg(long)]
        plain_http: bool,
        /// Fetch in this process rather than through containerd's transfer service (which
        /// 2.x daemons pull with by default, unless TLS options are given: the daemon takes
        /// those only from its own certs.d).
        #[arg(long)]
        local: bool,
        /// The platform to pull from a multi-platform index (`os/arch[/variant]`; default:
        /// this machine's).
        #[arg(long, value_name = "OS/ARCH")]
        platform: Option<String>,
        /// The image reference.
        reference: String,
    },
    /// Import an image archive (OCI layout or `docker save`, as tar).
    Import {
        /// Do not unpack the images into the snapshotter.
        #[arg(long)]
        no_unpack: bool,
        /// The snapshotter to unpack into.
        #[arg(long, default_value = "overlayfs")]
        snapshotter: String,
        /// The name for an image the archive does not name (with `--transfer`: the prefix
        /// bare tags in the archive go after).
        #[arg(long)]
        name: Option<String>,
        /// Import through containerd's transfer service (containerd 2.x) instead of in this
        /// process, which is the default because it is faster.
        #[arg(long)]
        transfer: bool,
        /// The archive.
        file: PathBuf,
    },
    /// List images.
    #[command(alias = "list")]
    Ls {
        /// Print only the names.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Remove images.
    #[command(alias = "remove", alias = "delete")]
    Rm {
        /// The images.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Give an image another name.
    Tag {
        /// The image.
        source: String,
        /// The new name.
        target: String,
    },
}

/// `ctrd run ...`
#[derive(Debug, Args)]
pub struct Run {
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Give the process a terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Start it and return.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// The runtime.
    #[arg(long, default_value = ctrd_client::DEFAULT_RUNTIME)]
    pub runtime: String,
    /// The snapshotter.
    #[arg(long, default_value = ctrd_client::DEFAULT_SNAPSHOTTER)]
    pub snapshotter: String,
    /// Set an environment variable (`KEY=value`).
    #[arg(long)]
    pub env: Vec<String>,
    /// Add a mount (`type=bind,src=/a,dst=/b,options=rbind:ro`).
    #[arg(long)]
    pub mount: Vec<String>,
    /// Where output goes instead of this terminal (`file:///path`, `binary:///path?k=v`).
    #[arg(long)]
    pub log_uri: Option<String>,
    /// Working directory.
    #[arg(long)]
    pub cwd: Option<String>,
    /// Numeric `uid[:gid]`.
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Memory limit in bytes.
    #[arg(long)]
    pub memory_limit: Option<u64>,
    /// CPU limit, in CPUs.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Use the host's network.
    #[arg(long)]
    pub net_host: bool,
    /// The image.
    pub image: String,
    /// The container id.
    pub id: String,
    /// The command (the image's when empty).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `ctrd exec ...`
#[derive(Debug, Args)]
pub struct Exec {
    /// Give the process a terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The exec id (one is made when not given).
    #[arg(long)]
    pub exec_id: Option<String>,
    /// The container id.
    pub id: String,
    /// The command.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `ctrd logs ...`
#[derive(Debug, Args)]
pub struct Logs {
    /// Keep printing new output until the container's task exits.
    #[arg(short, long)]
    pub follow: bool,
    /// The container id.
    pub id: String,
}

/// `ctrd kill ...`
#[derive(Debug, Args)]
pub struct Kill {
    /// The signal, by name (`SIGKILL`, `KILL`) or number.
    #[arg(short, long, default_value = "SIGTERM")]
    pub signal: String,
    /// Signal every process in the container.
    #[arg(long)]
    pub all: bool,
    /// The container id.
    pub id: String,
}

/// `ctrd rm ...`
#[derive(Debug, Args)]
pub struct Rm {
    /// Kill a running task first.
    #[arg(short, long)]
    pub force: bool,
    /// The container ids.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// `ctrd events ...`
#[derive(Debug, Args)]
pub struct Events {
    /// Filters (`topic=="/tasks/exit"`, `namespace==default`); none for all events.
    pub filters: Vec<String>,
}

/// `ctrd snapshots ...`
#[derive(Debug, Subcommand)]
pub enum Snapshots {
    /// List snapshots.
    #[command(alias = "list")]
    Ls {
        /// The snapshotter.
        #[arg(long, default_value = ctrd_client::DEFAULT_SNAPSHOTTER)]
        snapshotter: String,
    },
    /// Disk use of snapshots.
    Usage {
        /// The snapshotter.
        #[arg(long, default_value = ctrd_client::DEFAULT_SNAPSHOTTER)]
        snapshotter: String,
        /// One snapshot (all when not given).
        key: Option<String>,
    },
}
