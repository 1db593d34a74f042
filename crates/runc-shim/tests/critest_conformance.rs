//! Kubernetes' CRI conformance suite (`critest`, cri-tools v1.37.0) with our shim as
//! containerd's runtime handler `ctrd`, and the daemon's own Go shim as handler `runc` for
//! reference, per daemon (1.6, 2.1, 2.4 by default; `CTRD_TEST_DAEMONS` narrows them). The
//! full suite also runs ours as the drop-in `containerd-shim-runc-v2` behind handler `runc`.
//!
//! Each daemon and shim gets a fresh CRI daemon whose image pulls go to one private registry
//! on 127.0.0.1, filled offline with every image critest asks for
//! (`ctrd_testbed::critest::CritestRegistry`). Specs that cannot run on this machine are
//! skipped by one list, `critest-skips.txt` beside this file, the same for both shims. The
//! test fails when a spec passes on the Go shim and fails on ours; specs failing on both are
//! reported in the table.
//!
//! By default a representative focus runs (runtime info, pods, images, containers, exec,
//! logs, stats, streaming, host ports, security context): about a minute per daemon, plus a
//! minute or two to build and push the images once. The whole suite runs with
//! `CTRD_CRITEST=full` (3 to 4 minutes per daemon and shim on 2 cores; see the README).
//! `CTRD_CRITEST_FOCUS=REGEX` runs only matching specs, and `CTRD_CRITEST_ARGS` adds critest
//! arguments (such as `-ginkgo.sleep-on-failure=60s`). critest's own output and JUnit report
//! stay in `target/tmp/critest/containerd-VERSION/SHIM/`.
//!
//! critest binds host ports 12000 to 12003 (port mapping and host-network specs), so the
//! daemons run one after the other, never in parallel.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ctrd_testbed::cri::PodNetwork;
use ctrd_testbed::critest::{Critest, CritestArgs, CritestRegistry, Outcome, SpecResult};
use ctrd_testbed::{CriDaemon, CriDaemonOptions, CriShim, Daemon};
use libtest_mimic::{Arguments, Failed, Trial};
use regex::Regex;

/// The skip list: one spec a line, `[@DAEMONS ]REGEX -- REASON`.
const SKIPS: &str = include_str!("critest-skips.txt");

/// The default run's focus: one or two specs of each group (and execSync with timeout, which
/// guards the test bed's pause image: a sandbox with a `sleep` of its own fails it).
const REPRESENTATIVE: &[&str] = &[
    "Runtime info .* should return version info",
    "PodSandbox .* should support stopping PodSandbox",
    "Image Manager public image with tag should be pulled and removed",
    "Image Manager listImage should get exactly 3 repoTags",
    "Container runtime .* should support execSync \\[",
    "Container runtime .* should support execSync with timeout",
    "Container runtime .* should support starting container with log",
    "Container runtime .* should support listing stats for started containers \\[",
    "Streaming .* should support exec with tty=true and stdin=true",
    "Networking .* should support port mapping with host port and container port",
    "Multiple Containers .* should support container exec",
    "Security Context NoNewPrivs should not allow privilege escalation when true",
    "Security Context bucket runtime should support RunAsUser$",
];

/// The shims compared, the reference first: the Go shim and ours as handler `ctrd`, and in
/// the full suite also ours as the drop-in `containerd-shim-runc-v2` (handler `runc`, with
/// runtime options, which containerd 1.6 hands only to `io.containerd.runc.*` types).
fn shims() -> Vec<CriShim> {
    let mut shims = vec![CriShim::Go, CriShim::OursAsHandler];
    if full() {
        shims.push(CriShim::OursAsRunc);
    }
    shims
}

/// One line of the skip list.
struct Skip {
    /// The daemons it applies to (`None`: all).
    daemons: Option<Vec<String>>,
    pattern: String,
    regex: Regex,
    reason: String,
}

impl Skip {
    fn applies_to(&self, daemon: Daemon) -> bool {
        self.daemons
            .as_ref()
            .is_none_or(|d| d.iter().any(|v| v == daemon.version()))
    }
}

fn skip_list() -> Result<Vec<Skip>, String> {
    let mut skips = Vec::new();
    for (n, line) in SKIPS.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (daemons, rest) = match line.strip_prefix('@') {
            Some(rest) => {
                let (list, rest) = rest.split_once(' ').unwrap_or((rest, ""));
                (
                    Some(list.split(',').map(str::to_owned).collect()),
                    rest.trim(),
                )
            }
            None => (None, line),
        };
        let (pattern, reason) = rest
            .split_once(" -- ")
            .ok_or_else(|| format!("critest-skips.txt:{}: no ` -- REASON`", n + 1))?;
        let regex =
            Regex::new(pattern.trim()).map_err(|e| format!("critest-skips.txt:{}: {e}", n + 1))?;
        skips.push(Skip {
            daemons,
            pattern: pattern.trim().to_owned(),
            regex,
            reason: reason.trim().to_owned(),
        });
    }
    Ok(skips)
}

/// Whether the full suite runs (`CTRD_CRITEST=full`).
fn full() -> bool {
    std::env::var("CTRD_CRITEST").is_ok_and(|v| v == "full")
}

/// The specs to run: `CTRD_CRITEST_FOCUS` (a regular expression) when set, else every spec
/// with `CTRD_CRITEST=full`, else [`REPRESENTATIVE`].
fn focus() -> Vec<String> {
    match std::env::var("CTRD_CRITEST_FOCUS") {
        Ok(focus) if !focus.is_empty() => vec![focus],
        _ if full() => Vec::new(),
        _ => REPRESENTATIVE.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// The registry, started by the first daemon's run and kept for the others.
type SharedRegistry = Arc<Mutex<Option<CritestRegistry>>>;

fn run_daemon(daemon: Daemon, registry: &SharedRegistry) -> Result<(), Failed> {
    let critest = Critest::find().map_err(|e| e.to_string())?;
    let skips = skip_list()?;
    let mut slot = registry.lock().unwrap_or_else(|p| p.into_inner());
    if slot.is_none() {
        let started = Instant::now();
        *slot = Some(CritestRegistry::start().map_err(|e| e.to_string())?);
        eprintln!(
            "critest images built and pushed in {:.1?}",
            started.elapsed()
        );
    }
    let Some(registry) = slot.as_ref() else {
        return Err("no registry".into());
    };
    let args = CritestArgs {
        focus: focus(),
        skip: skips
            .iter()
            .filter(|s| s.applies_to(daemon))
            .map(|s| s.pattern.clone())
            .collect(),
        flake_attempts: 1,
        timeout: Duration::from_secs(if full() { 3 * 3600 } else { 900 }),
        extra: std::env::var("CTRD_CRITEST_ARGS")
            .map(|a| a.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
    };
    let focus = args
        .focus
        .iter()
        .map(|f| Regex::new(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("focus: {e}"))?;
    let mut results: Vec<(CriShim, Vec<SpecResult>, Duration)> = Vec::new();
    for shim in shims() {
        let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("critest")
            .join(format!("containerd-{}", daemon.version()))
            .join(shim.name());
        let _ = std::fs::remove_dir_all(&out_dir);
        let started = Instant::now();
        let options = CriDaemonOptions {
            registry_config_path: Some(registry.certs_d().to_path_buf()),
            pod_network: PodNetwork::Routed,
            ..CriDaemonOptions::default()
        };
        let bed = CriDaemon::start_with(daemon, shim, options).map_err(|e| e.to_string())?;
        let socket = bed.containerd().grpc_address();
        let mut specs = critest
            .run(&socket, shim.handler(), &args, &out_dir)
            .map_err(|e| e.to_string())?;
        // A focused run reports only its focus (the rest is "skipped" by ginkgo).
        if !focus.is_empty() {
            specs.retain(|s| {
                matches!(s.outcome, Outcome::Failed(_)) || focus.iter().any(|f| f.is_match(&s.name))
            });
        }
        drop(bed);
        results.push((shim, specs, started.elapsed()));
    }
    report(daemon, &skips, &results)
}

/// Prints the table for one daemon; fails when a spec passes on the Go shim (the first
/// results) and fails on one of ours (the others).
fn report(
    daemon: Daemon,
    skips: &[Skip],
    results: &[(CriShim, Vec<SpecResult>, Duration)],
) -> Result<(), Failed> {
    let reason_of = |name: &str, message: &str| {
        skips
            .iter()
            .find(|s| s.applies_to(daemon) && s.regex.is_match(name))
            .map_or_else(
                || format!("by the spec: {message}"),
                |s| format!("listed: {}", s.reason),
            )
    };
    let mut out = format!(
        "\ncritest on containerd {} ({}):\n",
        daemon.version(),
        if full() {
            "full suite"
        } else {
            "representative focus"
        }
    );
    out.push_str("| shim | passed | skipped | failed | time |\n|---|---|---|---|---|\n");
    for (shim, specs, took) in results {
        let count = |f: fn(&Outcome) -> bool| specs.iter().filter(|s| f(&s.outcome)).count();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.0?} |\n",
            shim.name(),
            count(|o| *o == Outcome::Passed),
            count(|o| matches!(o, Outcome::Skipped(_))),
            count(|o| matches!(o, Outcome::Failed(_))),
            took
        ));
    }
    // Skipped specs, once per reason (the reference's list; both shims share the skip list).
    let mut reasons: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut by_shim: Vec<BTreeMap<&str, &Outcome>> = Vec::new();
    for (i, (_, specs, _)) in results.iter().enumerate() {
        by_shim.push(
            specs
                .iter()
                .map(|s| (s.name.as_str(), &s.outcome))
                .collect(),
        );
        if i == 0 {
            for spec in specs {
                if let Outcome::Skipped(message) = &spec.outcome {
                    reasons
                        .entry(reason_of(&spec.name, message))
                        .or_default()
                        .push(&spec.name);
                }
            }
        }
    }
    if !reasons.is_empty() {
        out.push_str("skipped:\n");
        for (reason, names) in &reasons {
            out.push_str(&format!("  {} spec(s), {reason}\n", names.len()));
            for name in names {
                out.push_str(&format!("    - {name}\n"));
            }
        }
    }
    let go = &by_shim[0];
    let mut regressions = Vec::new();
    for ((shim, _, _), ours) in results.iter().zip(&by_shim).skip(1) {
        let mut on_both = Vec::new();
        let mut only_go = Vec::new();
        let mut skipped_here = Vec::new();
        for (name, outcome) in ours {
            let reference = go.get(name);
            match (outcome, reference) {
                (Outcome::Failed(why), Some(Outcome::Passed)) => {
                    regressions.push(format!("{}: {name}: {why}", shim.name()))
                }
                (Outcome::Failed(why), Some(Outcome::Failed(_))) => {
                    on_both.push(format!("{name}: {why}"))
                }
                (Outcome::Passed, Some(Outcome::Failed(why))) => {
                    only_go.push(format!("{name}: {why}"))
                }
                // What the daemon reports for a handler (such as its features) can make a
                // spec skip itself on one handler only: shown, not failed.
                (Outcome::Skipped(why), Some(Outcome::Passed)) => {
                    skipped_here.push(format!("{name}: {why}"))
                }
                _ => {}
            }
        }
        for (title, list) in [
            ("failed on both the Go shim and", &on_both),
            ("failed only on the Go shim, passed on", &only_go),
            (
                "passed on the Go shim, skipped by the spec itself on",
                &skipped_here,
            ),
        ] {
            if !list.is_empty() {
                out.push_str(&format!("{title} {}:\n", shim.name()));
                for line in list {
                    out.push_str(&format!("  - {line}\n"));
                }
            }
        }
    }
    if !regressions.is_empty() {
        out.push_str("FAILED ON OURS, PASSED ON THE GO SHIM:\n");
        for line in &regressions {
            out.push_str(&format!("  - {line}\n"));
        }
    }
    eprintln!("{out}");
    if regressions.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} spec(s) pass on the Go shim and fail on ours (critest's output under {}/critest)",
            regressions.len(),
            env!("CARGO_TARGET_TMPDIR")
        )
        .into())
    }
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    // critest binds fixed host ports: one daemon at a time.
    args.test_threads = Some(1);
    let registry: SharedRegistry = Arc::new(Mutex::new(None));
    let trials = Daemon::selected()
        .into_iter()
        .map(|daemon| {
            let registry = Arc::clone(&registry);
            Trial::test(
                format!(
                    "critest_on_containerd_{}",
                    daemon.version().replace('.', "_")
                ),
                move || run_daemon(daemon, &registry),
            )
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    drop(registry.lock().map(|mut r| r.take()));
    conclusion.exit_code()
}
