//! `cargo xtask bench`, snapshotter figures: our overlay snapshotter as a proxy plugin against
//! containerd's built-in overlayfs snapshotter, on the same daemon, interleaved in one run.
//!
//! Figures: prepare+commit+remove cycles per second and `Stat` per second through
//! containerd's Snapshots API; `ctr images import` of a 20-layer image; `Usage` of an active
//! snapshot holding 10 000 files; and the p99 of our metadata store's write transactions
//! (durable commits), measured in-process.
//!
//! On a daemon that unpacks a pull's layers in parallel (2.4), `ctr images pull` of the same
//! 20-layer image from the test bed's registry onto each, with the parallel unpack checked
//! from containerd's snapshot events (see [`parallel_pull`]).
//!
//! Where a `Stat` through containerd goes is split in the same run: `Stat` straight to our
//! snapshotter's socket (our tonic server and store, one gRPC hop, no containerd), and our
//! store's `stat` in-process (no gRPC at all). containerd's share is the rest.
//!
//! The cycles and `Stat` are also measured on a third proxy snapshotter that does almost
//! nothing: `ctrd-snapshots`' `metadata_only` example, its store on a memory filesystem, no
//! folders and no mounts. What it reaches is the most any proxy snapshotter can reach on
//! that daemon (containerd's proxy client and the gRPC hop, with no work behind them), so the
//! gap between it and ours is our own work and the gap between it and the built-in one is
//! the proxy path's.
//! `CTRD_BENCH_STAT_PROFILE=DIR` adds Stat loops under `perf` (CPU time, context switches
//! and syscalls per call of containerd and of our process; call graphs in `DIR`), see
//! `stat_profile.rs`. `CTRD_BENCH_CALL_PROFILE=1` runs ours with `--log-level debug` and
//! sums what its log says it served, per method, per cycle and per import (`call_log.rs`):
//! how many calls, and how long it worked on them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ctrd_api::containerd::services::leases::v1 as leases;
use ctrd_api::containerd::services::snapshots::v1 as api;
use ctrd_client::{Client, TypedEvent};
use ctrd_testbed::{
    Containerd, Daemon, ImageArchive, PARALLEL_UNPACKS, ProxyPlugin, Registry, SnapshotterProcess,
};

use super::call_log::{self, CallLog};
use crate::{Error, repo_root};

/// Our snapshotter's name in the daemon's configuration.
const OURS: &str = "ctrd-overlay";
/// containerd's built-in overlay snapshotter.
const BUILT_IN: &str = "overlayfs";
/// The floor: a proxy snapshotter that keeps only metadata, in a store on a memory
/// filesystem (`ctrd-snapshots`' `metadata_only` example), so that its own work per call is
/// a few tens of microseconds and what it costs is containerd's proxy path.
const FLOOR: &str = "ctrd-metadata-only";
const NAMESPACE: &str = "bench-snapshots";
const LEASE: &str = "bench-snapshots";

fn message(e: impl std::fmt::Display) -> Error {
    Error::Message(e.to_string())
}

/// Runs the snapshotter figures on `daemon` with `runs` samples of each (cycles and stats
/// take 20 calls per sample).
pub fn run(runs: usize, daemon: Daemon) -> Result<(), Error> {
    let binary =
        crate::suite::build_release_bin("ctrd-overlay-snapshotter", "ctrd-overlay-snapshotter")?;
    // Removal as the built-in overlayfs does by default on 2.x (`sync_remove = false`): the
    // folder is renamed in `Remove` and deleted by `Cleanup`, which containerd's collector
    // calls.
    let profile = std::env::var_os("CTRD_BENCH_CALL_PROFILE").is_some_and(|v| v == "1");
    let mut args = vec!["--async-remove"];
    if profile {
        args.extend(["--log-level", "debug"]);
    }
    let snapshotter = SnapshotterProcess::start(&binary, &args).map_err(message)?;
    let mut calls = profile
        .then(|| CallLog::at_end(snapshotter.log_path()))
        .transpose()?;
    let floor_binary = crate::suite::build_release_example_with(
        "ctrd-snapshots",
        "metadata_only",
        &["conformance"],
    )?;
    let memory = tempfile::Builder::new()
        .prefix("ctrd-bench-floor-")
        .tempdir_in("/dev/shm")
        .map_err(|e| Error::io(Path::new("/dev/shm"), e))?;
    let floor_args: &[&str] = if profile {
        &["--log-level", "debug"]
    } else {
        &[]
    };
    let floor =
        SnapshotterProcess::start_on(&floor_binary, &memory.path().join("root"), floor_args)
            .map_err(message)?;
    let mut floor_calls = profile
        .then(|| CallLog::at_end(floor.log_path()))
        .transpose()?;
    let containerd = Containerd::start_with_proxies(
        daemon,
        &[],
        // Configured as the README says: `rebase` declared (2.x only).
        &[
            ProxyPlugin::snapshot(OURS, &snapshotter.address()).rebase(),
            ProxyPlugin::snapshot(FLOOR, &floor.address()),
        ],
    )
    .map_err(message)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(message)?;
    let runs = runs.max(1);
    println!(
        "\nbench: snapshotters on containerd {}: {OURS} (proxy) against {BUILT_IN} (built in)",
        daemon.version()
    );
    let figures = runtime.block_on(api_figures(
        &containerd,
        &snapshotter,
        runs,
        [calls.as_mut(), floor_calls.as_mut()],
    ))?;
    let imports = import_figure(&containerd, runs.min(5), calls.as_mut())?;
    let (p99, store_stat_us) = store_figures(runs * 100)?;

    println!("\n| figure | {OURS} | {BUILT_IN} | ratio (higher is better for us) |");
    println!("|---|---|---|---|");
    let row = |name: &str, ours: f64, built_in: f64, unit: &str, higher_better: bool| {
        let ratio = if higher_better {
            ours / built_in
        } else {
            built_in / ours
        };
        println!("| {name} | {ours:.1} {unit} | {built_in:.1} {unit} | {ratio:.2}x |");
        ratio
    };
    let ratios = [
        row(
            "prepare+commit+remove",
            figures.cycles[0],
            figures.cycles[1],
            "/s",
            true,
        ),
        row("Stat", figures.stats[0], figures.stats[1], "/s", true),
        row("import, 20 layers", imports[0], imports[1], "ms", false),
        row(
            "Usage, 10k files",
            figures.usage[0],
            figures.usage[1],
            "ms",
            false,
        ),
    ];
    println!("| metadata transaction p99 (durable) | {p99:.2} ms | | target < 5 ms |");
    println!(
        "\nThe floor ({FLOOR}: a proxy snapshotter keeping only metadata, in a store on \
         tmpfs): {:.1} cycles/s ({:.2}x of {BUILT_IN}), {:.1} Stat/s ({:.2}x). A cycle \
         through the proxy path costs {:.2} ms more than one of {BUILT_IN}, our own work \
         {:.2} ms more than the floor's.",
        figures.cycles[2],
        figures.cycles[2] / figures.cycles[1],
        figures.stats[2],
        figures.stats[2] / figures.stats[1],
        1e3 / figures.cycles[2] - 1e3 / figures.cycles[1],
        1e3 / figures.cycles[0] - 1e3 / figures.cycles[2],
    );
    println!(
        "\nWhere a Stat goes (ours): {:.0} µs through containerd, {:.0} µs straight to our \
         socket (tonic server + store + one hop), {store_stat_us:.1} µs in our store alone; \
         the built-in one answers in {:.0} µs through containerd.",
        1e6 / figures.stats[0],
        1e6 / figures.stats_direct,
        1e6 / figures.stats[1],
    );
    let json = serde_json::json!({
        "daemon": daemon.version(),
        "cycles_per_s": figures.cycles,
        "stat_per_s": figures.stats,
        "import_20_layers_ms": imports,
        "usage_10k_files_ms": figures.usage,
        "ratios": ratios,
        "store_txn_p99_ms": p99,
        "stat_direct_per_s": figures.stats_direct,
        "floor": FLOOR,
        "store_stat_us": store_stat_us,
    });
    let out = repo_root().join("target/bench-snapshots.json");
    std::fs::write(&out, json.to_string()).map_err(|e| Error::io(&out, e))?;
    println!("bench: snapshotter figures written to {}", out.display());
    parallel_pull(&runtime, &containerd, daemon, runs.min(5))?;
    drop(containerd);
    drop(snapshotter);
    drop(floor);
    Ok(())
}

/// Per snapshotter (ours, the built-in one, the floor): cycles/s, stats/s; usage ms (ours
/// and the built-in one: the floor has no files); and Stat/s straight to our socket.
struct ApiFigures {
    cycles: [f64; 3],
    stats: [f64; 3],
    usage: [f64; 2],
    stats_direct: f64,
}

fn req<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "containerd-lease",
        tonic::metadata::MetadataValue::from_static(LEASE),
    );
    request
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}

async fn api_figures(
    containerd: &Containerd,
    ours: &SnapshotterProcess,
    runs: usize,
    mut calls: [Option<&mut CallLog>; 2],
) -> Result<ApiFigures, Error> {
    let mut direct = Client::connect(ours.address())
        .await
        .map_err(message)?
        .with_namespace(NAMESPACE)
        .snapshots();
    let mut stats_direct = Vec::new();
    // The key our snapshotter holds the committed `stat` snapshot under (containerd's
    // metadata layer names backend keys `NAMESPACE/ID/NAME`), found once it exists.
    let mut direct_key = None;
    let client = Client::connect(containerd.grpc_address())
        .await
        .map_err(message)?
        .with_namespace(NAMESPACE);
    client
        .leases()
        .create(leases::CreateRequest {
            id: LEASE.into(),
            labels: Default::default(),
        })
        .await
        .map_err(message)?;
    let mut snapshots = client.snapshots();
    let names = [OURS, BUILT_IN, FLOOR];
    let mut cycles = [Vec::new(), Vec::new(), Vec::new()];
    let mut stats = [Vec::new(), Vec::new(), Vec::new()];
    let mut usage = [Vec::new(), Vec::new()];
    const CALLS: usize = 20;
    const STATS: usize = 200;
    for name in &names {
        // One committed snapshot to stat.
        snapshots
            .prepare(req(api::PrepareSnapshotRequest {
                snapshotter: (*name).into(),
                key: "stat-a".into(),
                ..Default::default()
            }))
            .await
            .map_err(message)?;
        snapshots
            .commit(req(api::CommitSnapshotRequest {
                snapshotter: (*name).into(),
                name: "stat".into(),
                key: "stat-a".into(),
                ..Default::default()
            }))
            .await
            .map_err(message)?;
        if *name == FLOOR {
            continue;
        }
        // An active snapshot with 10 000 files (both return a bind mount of a folder).
        let mounts = snapshots
            .prepare(req(api::PrepareSnapshotRequest {
                snapshotter: (*name).into(),
                key: "usage".into(),
                ..Default::default()
            }))
            .await
            .map_err(message)?
            .into_inner()
            .mounts;
        let source = mounts
            .first()
            .map(|m| PathBuf::from(&m.source))
            .ok_or_else(|| Error::Message(format!("{name}: no mount for usage")))?;
        fill(&source, 10_000)?;
    }
    for log in calls.iter_mut().flatten() {
        log.mark()?;
    }
    for _ in 0..runs {
        // Interleaved: each sample measures the snapshotters back to back.
        for (i, name) in names.iter().enumerate() {
            let start = Instant::now();
            for n in 0..CALLS {
                let key = format!("cycle-{n}");
                snapshots
                    .prepare(req(api::PrepareSnapshotRequest {
                        snapshotter: (*name).into(),
                        key: key.clone(),
                        ..Default::default()
                    }))
                    .await
                    .map_err(message)?;
                snapshots
                    .commit(req(api::CommitSnapshotRequest {
                        snapshotter: (*name).into(),
                        name: format!("{key}-c"),
                        key,
                        ..Default::default()
                    }))
                    .await
                    .map_err(message)?;
                snapshots
                    .remove(req(api::RemoveSnapshotRequest {
                        snapshotter: (*name).into(),
                        key: format!("cycle-{n}-c"),
                    }))
                    .await
                    .map_err(message)?;
            }
            cycles[i].push(CALLS as f64 / start.elapsed().as_secs_f64());
            let start = Instant::now();
            for _ in 0..STATS {
                snapshots
                    .stat(req(api::StatSnapshotRequest {
                        snapshotter: (*name).into(),
                        key: "stat".into(),
                    }))
                    .await
                    .map_err(message)?;
            }
            stats[i].push(STATS as f64 / start.elapsed().as_secs_f64());
            if i == 0 {
                if direct_key.is_none() {
                    direct_key = Some(backend_key(&mut direct).await?);
                }
                let key = direct_key.clone().unwrap_or_default();
                let start = Instant::now();
                for _ in 0..STATS {
                    direct
                        .stat(api::StatSnapshotRequest {
                            snapshotter: String::new(),
                            key: key.clone(),
                        })
                        .await
                        .map_err(message)?;
                }
                stats_direct.push(STATS as f64 / start.elapsed().as_secs_f64());
            }
            if *name == FLOOR {
                continue;
            }
            let start = Instant::now();
            let answer = snapshots
                .usage(req(api::UsageRequest {
                    snapshotter: (*name).into(),
                    key: "usage".into(),
                }))
                .await
                .map_err(message)?
                .into_inner();
            if let Some(samples) = usage.get_mut(i) {
                samples.push(start.elapsed().as_secs_f64() * 1000.0);
            }
            if answer.inodes < 10_000 {
                return Err(Error::Message(format!(
                    "{name}: usage counted {} inodes of 10 000 files",
                    answer.inodes
                )));
            }
        }
    }
    for (log, whose) in calls.into_iter().zip([OURS, FLOOR]) {
        let Some(log) = log else { continue };
        // Stat and Usage have samples of their own; the rest is the cycles' (containerd's
        // garbage collector's List, Remove and Cleanup included, but for the last sample's).
        let mut cycle_calls = log.since_mark()?;
        cycle_calls.retain(|method, _| method != "Stat" && method != "Usage");
        call_log::print(
            &format!("prepare+commit+remove cycle ({whose})"),
            &cycle_calls,
            runs * CALLS,
        );
    }
    if let Some(dir) = std::env::var_os("CTRD_BENCH_STAT_PROFILE") {
        let ours_pid = ours
            .pid()
            .ok_or_else(|| Error::Message("our snapshotter is not running".into()))?;
        super::stat_profile::run(
            Path::new(&dir),
            &mut snapshots,
            req,
            &names[..2],
            "stat",
            containerd.pid(),
            ours_pid,
        )
        .await?;
    }
    for name in names {
        for key in ["usage", "stat"] {
            if name == FLOOR && key == "usage" {
                continue;
            }
            snapshots
                .remove(req(api::RemoveSnapshotRequest {
                    snapshotter: name.into(),
                    key: key.into(),
                }))
                .await
                .map_err(message)?;
        }
    }
    client
        .leases()
        .delete(leases::DeleteRequest {
            id: LEASE.into(),
            sync: true,
        })
        .await
        .map_err(message)?;
    Ok(ApiFigures {
        cycles: cycles.map(median),
        stats: stats.map(median),
        usage: usage.map(median),
        stats_direct: median(stats_direct),
    })
}

/// The key our snapshotter itself holds the committed `stat` snapshot under.
async fn backend_key(
    direct: &mut api::snapshots_client::SnapshotsClient<ctrd_client::Transport>,
) -> Result<String, Error> {
    let mut stream = direct
        .list(api::ListSnapshotsRequest {
            snapshotter: String::new(),
            filters: vec!["kind==committed".into()],
        })
        .await
        .map_err(message)?
        .into_inner();
    while let Some(batch) = stream.message().await.map_err(message)? {
        if let Some(info) = batch.info.into_iter().find(|i| i.name.ends_with("/stat")) {
            return Ok(info.name);
        }
    }
    Err(Error::Message(
        "our snapshotter lists no committed `stat` snapshot".into(),
    ))
}

/// Writes `count` small files into `dir`, 100 per folder.
fn fill(dir: &Path, count: usize) -> Result<(), Error> {
    for n in 0..count {
        let sub = dir.join(format!("d{}", n / 100));
        if n % 100 == 0 {
            std::fs::create_dir_all(&sub).map_err(|e| Error::io(&sub, e))?;
        }
        let file = sub.join(format!("f{n}"));
        std::fs::write(&file, b"x").map_err(|e| Error::io(&file, e))?;
    }
    Ok(())
}

/// Median milliseconds of `ctr images import` of a 20-layer image, per snapshotter.
fn import_figure(
    containerd: &Containerd,
    runs: usize,
    mut calls: Option<&mut CallLog>,
) -> Result<[f64; 2], Error> {
    let image = twenty_layers()?;
    let archive = image.path();
    let mut samples = [Vec::new(), Vec::new()];
    let mut import_calls: std::collections::BTreeMap<String, call_log::Calls> = Default::default();
    let ctr = |args: &[&str]| -> Result<(), Error> {
        let out = ctr_command(containerd, args)?.output().map_err(message)?;
        succeeded(args, &out)
    };
    for round in 0..runs {
        // Alternate who goes first.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let name = [OURS, BUILT_IN][i];
            if let Some(log) = calls.as_deref_mut() {
                log.mark()?;
            }
            let start = Instant::now();
            ctr(&[
                "images",
                "import",
                "--snapshotter",
                name,
                &archive.to_string_lossy(),
            ])?;
            samples[i].push(start.elapsed().as_secs_f64() * 1000.0);
            if let Some(log) = calls.as_deref_mut()
                && name == OURS
            {
                for (method, c) in log.since_mark()? {
                    let sum = import_calls.entry(method).or_default();
                    sum.count += c.count;
                    sum.work_us += c.work_us;
                    sum.total_us += c.total_us;
                }
            }
            ctr(&["images", "rm", "--sync", image.name()])?;
        }
    }
    if calls.is_some() {
        call_log::print(
            &format!("import of 20 layers ({OURS})"),
            &import_calls,
            runs,
        );
    }
    let [a, b] = samples;
    Ok([median(a), median(b)])
}

/// p99 in milliseconds of our metadata store's write transactions (create, commit, remove),
/// durable as the snapshotter runs them, in a folder beside the build; and the mean
/// microseconds of its `stat` of a committed snapshot.
fn store_figures(cycles: usize) -> Result<(f64, f64), Error> {
    use ctrd_snapshots::{Kind, Labels, MetaStore, Usage};
    let dir = tempfile::Builder::new()
        .prefix("ctrd-bench-store-")
        .tempdir_in(repo_root().join("target"))
        .map_err(|e| Error::io(Path::new("target"), e))?;
    let store = MetaStore::open(&dir.path().join("metadata.redb")).map_err(message)?;
    let mut samples: Vec<Duration> = Vec::with_capacity(cycles * 3);
    for n in 0..cycles {
        let key = format!("k{n}");
        let start = Instant::now();
        let (snapshot, ()) = store
            .create(Kind::Active, &key, None, Labels::new(), |_| Ok(()))
            .map_err(message)?;
        samples.push(start.elapsed());
        let start = Instant::now();
        store
            .commit(
                &key,
                &format!("c{n}"),
                snapshot.id,
                None,
                Labels::new(),
                Usage::default(),
            )
            .map_err(message)?;
        samples.push(start.elapsed());
        let start = Instant::now();
        store.remove(&format!("c{n}")).map_err(message)?;
        samples.push(start.elapsed());
    }
    samples.sort();
    let index = (samples.len() * 99 / 100).min(samples.len().saturating_sub(1));
    let p99 = samples
        .get(index)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
    let labels = Labels::from([(
        "containerd.io/snapshot.ref".to_owned(),
        "sha256:0".repeat(8),
    )]);
    let (snapshot, ()) = store
        .create(Kind::Active, "stat-a", None, labels.clone(), |_| Ok(()))
        .map_err(message)?;
    store
        .commit(
            "stat-a",
            "stat",
            snapshot.id,
            None,
            labels,
            Usage::default(),
        )
        .map_err(message)?;
    const STATS: u32 = 10_000;
    let start = Instant::now();
    for _ in 0..STATS {
        store.stat("stat").map_err(message)?;
    }
    let stat_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(STATS);
    Ok((p99, stat_us))
}

/// The 20-layer image of the pull figure: busybox and 19 layers of 50 small files (the
/// import figure's image).
/// `ctr --namespace NAMESPACE ARGS` for `containerd`, not yet run.
fn ctr_command(
    containerd: &Containerd,
    args: &[impl AsRef<std::ffi::OsStr>],
) -> Result<std::process::Command, Error> {
    let mut command = containerd.ctr().map_err(message)?;
    command.args(["--namespace", NAMESPACE]).args(args);
    Ok(command)
}

/// Ok when `ctr ARGS` succeeded, else its stderr as the error.
fn succeeded(args: &[impl std::fmt::Debug], out: &std::process::Output) -> Result<(), Error> {
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Message(format!(
            "ctr {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

fn twenty_layers() -> Result<ImageArchive, Error> {
    let layers: Vec<Vec<(String, Option<String>)>> = (0..19)
        .map(|i| {
            (0..50)
                .map(|f| (format!("/layer{i}/file{f}"), Some(format!("{i}-{f}"))))
                .collect()
        })
        .collect();
    ImageArchive::layered("docker.io/library/ctrd-bench-20:latest", &layers).map_err(message)
}

/// What one snapshotter's pulls did: median milliseconds, and from containerd's snapshot
/// events of each pull (the fewest over the pulls) the layers prepared without a parent and
/// the most layers open at once (prepared, not yet committed). Both are 1 when a pull unpacks
/// one layer after the other; in parallel every layer is prepared without a parent, and the
/// commits, onto their parents, go in order.
#[derive(Debug, Clone, Copy)]
struct Pulls {
    median_ms: f64,
    parentless: usize,
    in_flight: usize,
}

/// `ctr images pull` of the 20-layer image from the test bed's registry onto ours and onto
/// the built-in, interleaved, `runs` each, on a daemon that unpacks a pull's layers in
/// parallel (2.4: its transfer service runs up to [`PARALLEL_UNPACKS`] unpacks at once onto
/// snapshotters with the `rebase` capability; an import is always unpacked one layer after
/// the other). Each pull must have prepared its upper layers without a parent (parallel
/// mode) or the figure fails. Elsewhere it says why it measured nothing. Printed, and
/// written to `target/bench-snapshots-pull.json`.
fn parallel_pull(
    runtime: &tokio::runtime::Runtime,
    containerd: &Containerd,
    daemon: Daemon,
    runs: usize,
) -> Result<(), Error> {
    let out = repo_root().join("target/bench-snapshots-pull.json");
    let write = |json: serde_json::Value| {
        std::fs::write(&out, json.to_string()).map_err(|e| Error::io(&out, e))
    };
    println!("\n| figure | {OURS} | {BUILT_IN} | ratio (higher is better for us) |");
    println!("|---|---|---|---|");
    // 2.1 (Debian's) has no parallel unpack; 1.x neither.
    if daemon != Daemon::Upstream {
        let reason = format!(
            "not measured: no parallel unpack on this daemon (containerd {})",
            daemon.version()
        );
        println!("| pull, 20 layers, parallel unpack | {reason} | | |");
        return write(serde_json::json!({ "daemon": daemon.version(), "pull": reason }));
    }
    let image = twenty_layers()?;
    let registry = Registry::start().map_err(message)?;
    let reference = registry
        .push(&image.path(), "ctrd/bench-20", "v1")
        .map_err(message)?;
    let [ours, built_in] = runtime.block_on(pull_figure(containerd, &reference, runs.max(1)))?;
    let ratio = built_in.median_ms / ours.median_ms;
    println!(
        "| pull, 20 layers, {PARALLEL_UNPACKS} unpacks at once | {:.1} ms | {:.1} ms | {ratio:.2}x |",
        ours.median_ms, built_in.median_ms
    );
    println!(
        "Parallel unpack, from containerd's snapshot events (fewest over the runs): {OURS} \
         {} of 20 layers prepared without a parent, up to {} open (prepared, not yet \
         committed) at once; {BUILT_IN} {} and {}.",
        ours.parentless, ours.in_flight, built_in.parentless, built_in.in_flight
    );
    write(serde_json::json!({
        "daemon": daemon.version(),
        "runs": runs.max(1),
        "pull_20_layers_ms": [ours.median_ms, built_in.median_ms],
        "ratio": ratio,
        "parentless_prepares": [ours.parentless, built_in.parentless],
        "most_open_at_once": [ours.in_flight, built_in.in_flight],
    }))?;
    println!("bench: pull figures written to {}", out.display());
    Ok(())
}

/// The pulls of [`parallel_pull`], ours first.
async fn pull_figure(
    containerd: &Containerd,
    reference: &str,
    runs: usize,
) -> Result<[Pulls; 2], Error> {
    use futures_util::StreamExt;
    use std::collections::HashSet;

    let client = Client::connect(containerd.grpc_address())
        .await
        .map_err(message)?
        .with_namespace(NAMESPACE);
    let mut events = client.subscribe(&[
        r#"topic=="/snapshot/prepare""#,
        r#"topic=="/snapshot/commit""#,
    ]);
    // containerd starts a subscription's stream only with its first event: prepare and remove
    // probe snapshots until one is seen, so no pull's events are missed.
    let mut snapshots = client.snapshots();
    let mut live = false;
    for n in 0..100 {
        let key = format!("pull-probe-{n}");
        snapshots
            .prepare(api::PrepareSnapshotRequest {
                snapshotter: BUILT_IN.into(),
                key: key.clone(),
                ..Default::default()
            })
            .await
            .map_err(message)?;
        snapshots
            .remove(api::RemoveSnapshotRequest {
                snapshotter: BUILT_IN.into(),
                key,
            })
            .await
            .map_err(message)?;
        if let Ok(event) = tokio::time::timeout(Duration::from_millis(100), events.next()).await {
            event
                .ok_or_else(|| Error::Message("the event stream ended".into()))?
                .map_err(message)?;
            live = true;
            break;
        }
    }
    if !live {
        return Err(Error::Message(
            "no snapshot event from containerd after 100 probes".into(),
        ));
    }
    let ctr = |args: Vec<String>| async move {
        let mut command = ctr_command(containerd, &args)?;
        let out = tokio::task::spawn_blocking(move || command.output())
            .await
            .map_err(message)?
            .map_err(message)?;
        succeeded(&args, &out)
    };
    let args = |list: &[&str]| list.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let names = [OURS, BUILT_IN];
    let mut samples = [Vec::new(), Vec::new()];
    let mut parentless = [usize::MAX; 2];
    let mut in_flight = [usize::MAX; 2];
    for round in 0..runs {
        // Alternate who goes first.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let name = names[i];
            let start = Instant::now();
            ctr(args(&[
                "images",
                "pull",
                "--plain-http",
                "--snapshotter",
                name,
                reference,
            ]))
            .await?;
            samples[i].push(start.elapsed().as_secs_f64() * 1000.0);
            // The pull's unpack snapshots (`extract-...` keys), until the events stop.
            let (mut without_parent, mut active, mut most) = (0, HashSet::new(), 0);
            while let Ok(event) =
                tokio::time::timeout(Duration::from_millis(500), events.next()).await
            {
                let event = event
                    .ok_or_else(|| Error::Message("the event stream ended".into()))?
                    .map_err(message)?;
                if event.namespace != NAMESPACE {
                    continue;
                }
                match event.event {
                    TypedEvent::SnapshotPrepare(e)
                        if e.snapshotter == name && e.key.contains("extract-") =>
                    {
                        if e.parent.is_empty() {
                            without_parent += 1;
                        }
                        active.insert(e.key);
                        most = most.max(active.len());
                    }
                    TypedEvent::SnapshotCommit(e) if e.snapshotter == name => {
                        active.remove(&e.key);
                    }
                    _ => {}
                }
            }
            if without_parent < 2 || most < 2 {
                return Err(Error::Message(format!(
                    "the pull onto {name} did not unpack in parallel: {without_parent} layers \
                     prepared without a parent, at most {most} open at once"
                )));
            }
            parentless[i] = parentless[i].min(without_parent);
            in_flight[i] = in_flight[i].min(most);
            ctr(args(&["images", "rm", "--sync", reference])).await?;
        }
    }
    let [a, b] = samples;
    Ok([
        Pulls {
            median_ms: median(a),
            parentless: parentless[0],
            in_flight: in_flight[0],
        },
        Pulls {
            median_ms: median(b),
            parentless: parentless[1],
            in_flight: in_flight[1],
        },
    ])
}
