//! The benchmark's results: one typed struct, written as `target/bench/results.json` and
//! printed as tables. A figure that could not be measured is NaN (`null` in the JSON).

use serde::Serialize;

use super::median;

/// A figure for both shims.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Pair {
    /// Our shim.
    pub ours: f64,
    /// Debian's Go shim.
    pub go: f64,
}

impl Pair {
    /// The medians of our samples and the Go shim's.
    pub fn median_of([ours, go]: [Vec<f64>; 2]) -> Pair {
        Pair {
            ours: median(ours),
            go: median(go),
        }
    }

    /// A pair of nothing measured (a skipped figure).
    pub fn unmeasured() -> Pair {
        Pair {
            ours: f64::NAN,
            go: f64::NAN,
        }
    }
}

/// A figure for both shims and for plain runc.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WithRunc {
    /// Our shim.
    pub ours: f64,
    /// Debian's Go shim.
    pub go: f64,
    /// `runc run` alone.
    pub runc: f64,
}

/// A Stats figure: our shim reading the cgroup files, the Go shim, and our shim running
/// `runc events --stats` per call.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StatsFigure {
    /// Our shim (cgroup files read in-process).
    pub ours: f64,
    /// Debian's Go shim.
    pub go: f64,
    /// Our shim with a runc process per call.
    pub runc_per_call: f64,
}

/// What of a latency no runc shim can avoid.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Floor {
    /// `ctr` and containerd's own work: the same call through a shim that runs no runc.
    pub no_runc_shim: f64,
    /// The runc commands a shim must run, timed directly.
    pub runc_steps: f64,
}

/// The footprint of one shim's processes with some containers idle.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Idle {
    /// How many shim processes serve the containers.
    pub shims: usize,
    /// Proportional set size per shim, KiB.
    pub pss_kib: u64,
    /// Resident set size per shim, KiB.
    pub rss_kib: u64,
    /// Threads per shim.
    pub threads: f64,
    /// CPU time per shim from its start to the measurement (its boot, the container's Create
    /// and Start, and the idle seconds after), all threads, ms: what a start costs the shim
    /// itself, which a loaded machine does not inflate as it does latencies.
    pub cpu_ms: f64,
}

/// [`Idle`] with 10 and with 50 containers, per shim.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct IdleFigures {
    /// Our shim, 10 containers.
    pub ours_10: Idle,
    /// The Go shim, 10 containers.
    pub go_10: Idle,
    /// Our shim, 50 containers.
    pub ours_50: Idle,
    /// The Go shim, 50 containers.
    pub go_50: Idle,
}

/// Sizes of the two shim binaries.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Bytes {
    /// Our shim (release build).
    pub ours: u64,
    /// Debian's Go shim.
    pub go: u64,
}

/// Every figure of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// The containerd version run (`1.6`, `2.1`).
    pub daemon: &'static str,
    /// Samples per latency figure.
    pub runs: usize,
    /// Start latency (median ms).
    pub start_ms: WithRunc,
    /// What of the start latency no runc shim avoids.
    pub start_floor_ms: Floor,
    /// Exec latency (median ms).
    pub exec_ms: Pair,
    /// What of the exec latency no runc shim avoids.
    pub exec_floor_ms: Floor,
    /// Stats latency for one container through containerd (median ms).
    pub stats_ms: StatsFigure,
    /// Shim CPU per Stats call, children included (µs).
    pub stats_cpu_us: StatsFigure,
    /// `Tasks.Get` latency on the same target (median ms): the round trip through containerd
    /// to the shim with trivial work in the shim, what of the Stats latency no shim avoids.
    pub stats_get_ms: Pair,
    /// Idle footprint.
    pub idle: IdleFigures,
    /// Stdout throughput (MiB/s); NaN when skipped with `--quick`.
    pub stdout_mib_s: Pair,
    /// 50 concurrent starts (median ms).
    pub concurrent_50_ms: Pair,
    /// Binary sizes.
    pub binary_bytes: Bytes,
}

impl Results {
    /// Every figure by its JSON path.
    fn figures(&self) -> Vec<(String, f64)> {
        let mut all = vec![
            ("start_ms.ours".to_owned(), self.start_ms.ours),
            ("start_ms.go".to_owned(), self.start_ms.go),
            ("start_ms.runc".to_owned(), self.start_ms.runc),
            ("exec_ms.ours".to_owned(), self.exec_ms.ours),
            ("exec_ms.go".to_owned(), self.exec_ms.go),
            ("stdout_mib_s.ours".to_owned(), self.stdout_mib_s.ours),
            ("stdout_mib_s.go".to_owned(), self.stdout_mib_s.go),
            (
                "concurrent_50_ms.ours".to_owned(),
                self.concurrent_50_ms.ours,
            ),
            ("concurrent_50_ms.go".to_owned(), self.concurrent_50_ms.go),
            (
                "binary_bytes.ours".to_owned(),
                self.binary_bytes.ours as f64,
            ),
            ("binary_bytes.go".to_owned(), self.binary_bytes.go as f64),
        ];
        for (name, figure) in [
            ("stats_ms", self.stats_ms),
            ("stats_cpu_us", self.stats_cpu_us),
        ] {
            all.push((format!("{name}.ours"), figure.ours));
            all.push((format!("{name}.go"), figure.go));
            all.push((format!("{name}.runc_per_call"), figure.runc_per_call));
        }
        for (name, floor) in [
            ("start_floor_ms", self.start_floor_ms),
            ("exec_floor_ms", self.exec_floor_ms),
        ] {
            all.push((format!("{name}.no_runc_shim"), floor.no_runc_shim));
            all.push((format!("{name}.runc_steps"), floor.runc_steps));
        }
        let idle = &self.idle;
        for (name, idle) in [
            ("ours_10", idle.ours_10),
            ("go_10", idle.go_10),
            ("ours_50", idle.ours_50),
            ("go_50", idle.go_50),
        ] {
            all.push((format!("idle.{name}.shims"), idle.shims as f64));
            all.push((format!("idle.{name}.pss_kib"), idle.pss_kib as f64));
            all.push((format!("idle.{name}.rss_kib"), idle.rss_kib as f64));
            all.push((format!("idle.{name}.threads"), idle.threads));
            all.push((format!("idle.{name}.cpu_ms"), idle.cpu_ms));
        }
        all
    }

    /// The figures that hold no positive number.
    pub fn unmeasured(&self) -> Vec<String> {
        self.figures()
            .into_iter()
            .filter(|(_, v)| !(*v > 0.0 && v.is_finite()))
            .map(|(name, _)| name)
            .collect()
    }

    /// Prints the figures with their ratios to the Go shim, then where each latency goes.
    pub fn print(&self) {
        let row = |name: &str, ours: f64, go: f64, floor: Option<f64>, unit: &str| {
            let floor = floor.map_or("-".to_owned(), |v| format!("{v:.1}"));
            println!(
                "| {name:<34} | {ours:>10.1} | {go:>10.1} | {floor:>10} | {:>6.2}x | {unit}",
                ours / go
            );
        };
        println!(
            "\n| figure                             |       ours |     Go shim|  plain runc| ours/Go | unit"
        );
        println!(
            "|------------------------------------|-----------:|-----------:|-----------:|--------:|-----"
        );
        let start = self.start_ms;
        row(
            "start latency (median)",
            start.ours,
            start.go,
            Some(start.runc),
            "ms",
        );
        row(
            "exec latency (median)",
            self.exec_ms.ours,
            self.exec_ms.go,
            None,
            "ms",
        );
        let mib = |kib: u64| kib as f64 / 1024.0;
        for (n, o, g) in [
            (10, self.idle.ours_10, self.idle.go_10),
            (50, self.idle.ours_50, self.idle.go_50),
        ] {
            row(
                &format!("idle PSS per shim, {n} containers"),
                mib(o.pss_kib),
                mib(g.pss_kib),
                None,
                "MiB",
            );
            row(
                &format!("idle RSS per shim, {n} containers"),
                mib(o.rss_kib),
                mib(g.rss_kib),
                None,
                "MiB",
            );
            row(
                &format!("threads per shim, {n} containers"),
                o.threads,
                g.threads,
                None,
                "",
            );
            row(
                &format!("shim CPU, boot to idle, {n} ctrs"),
                o.cpu_ms,
                g.cpu_ms,
                None,
                "ms",
            );
        }
        row(
            "stdout throughput (1 GiB)",
            self.stdout_mib_s.ours,
            self.stdout_mib_s.go,
            None,
            "MiB/s",
        );
        row(
            "50 concurrent starts",
            self.concurrent_50_ms.ours,
            self.concurrent_50_ms.go,
            None,
            "ms",
        );
        let bytes_mib = |b: u64| b as f64 / 1048576.0;
        row(
            "binary size",
            bytes_mib(self.binary_bytes.ours),
            bytes_mib(self.binary_bytes.go),
            None,
            "MiB",
        );

        print_stats(self.stats_ms, self.stats_cpu_us, self.stats_get_ms);

        // Where each latency goes: what no runc shim can avoid, and the shims' own shares.
        println!("\n| where a latency goes (medians, ms)                 |  start |   exec |");
        println!("|----------------------------------------------------|-------:|-------:|");
        let split = |floor: Floor, ours: f64, go: f64| {
            let (ctr, runc) = (floor.no_runc_shim, floor.runc_steps);
            [
                ctr,
                runc,
                ctr + runc,
                (ctr + runc) / go,
                ours - ctr - runc,
                go - ctr - runc,
            ]
        };
        let start = split(self.start_floor_ms, start.ours, start.go);
        let exec = split(self.exec_floor_ms, self.exec_ms.ours, self.exec_ms.go);
        for (i, name) in [
            "ctr, containerd and a minimal shim (no runc)",
            "runc's own commands, run directly",
            "lowest a shim driving runc can reach (sum)",
            "  that lowest, as a ratio to the Go shim",
            "our shim's own share (latency - sum)",
            "the Go shim's own share (latency - sum)",
        ]
        .iter()
        .enumerate()
        {
            println!("| {name:<50} | {:>6.2} | {:>6.2} |", start[i], exec[i]);
        }
    }
}

/// Prints the Stats figures three ways (the cgroup files, the Go shim, a runc process per
/// call) with their ratios to the Go shim.
pub fn print_stats(stats_ms: StatsFigure, cpu_us: StatsFigure, get_ms: Pair) {
    println!(
        "\n| Stats, one container (Tasks.Metrics)   | ours, files |    Go shim | ours, runc/call | files/Go | runc/Go"
    );
    println!(
        "|----------------------------------------|------------:|-----------:|----------------:|---------:|-------:"
    );
    for (name, f, unit) in [
        ("latency (median)", stats_ms, "ms"),
        ("shim CPU per call (children included)", cpu_us, "µs"),
    ] {
        println!(
            "| {:<38} | {:>11.3} | {:>10.3} | {:>15.3} | {:>7.2}x | {:>5.2}x  {unit}",
            name,
            f.ours,
            f.go,
            f.runc_per_call,
            f.ours / f.go,
            f.runc_per_call / f.go
        );
    }
    println!(
        "| {:<38} | {:>11.3} | {:>10.3} | {:>15} | {:>7.2}x |          ms",
        "Tasks.Get on the same task (the floor)",
        get_ms.ours,
        get_ms.go,
        "-",
        get_ms.ours / get_ms.go
    );
    let (ours, go) = (stats_ms.ours - get_ms.ours, stats_ms.go - get_ms.go);
    println!(
        "| {:<38} | {:>11.3} | {:>10.3} | {:>15} | {:>7.2}x |          ms",
        "Stats latency above that floor",
        ours,
        go,
        "-",
        ours / go
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results() -> Results {
        let pair = Pair { ours: 1.0, go: 2.0 };
        let floor = Floor {
            no_runc_shim: 1.0,
            runc_steps: 1.0,
        };
        let idle = Idle {
            shims: 1,
            pss_kib: 1,
            rss_kib: 1,
            threads: 1.0,
            cpu_ms: 1.0,
        };
        Results {
            daemon: "1.6",
            runs: 3,
            start_ms: WithRunc {
                ours: 1.0,
                go: 2.0,
                runc: 0.5,
            },
            start_floor_ms: floor,
            exec_ms: pair,
            exec_floor_ms: floor,
            stats_ms: StatsFigure {
                ours: 0.3,
                go: 1.0,
                runc_per_call: 5.0,
            },
            stats_cpu_us: StatsFigure {
                ours: 100.0,
                go: 300.0,
                runc_per_call: 3000.0,
            },
            stats_get_ms: pair,
            idle: IdleFigures {
                ours_10: idle,
                go_10: idle,
                ours_50: idle,
                go_50: idle,
            },
            stdout_mib_s: pair,
            concurrent_50_ms: pair,
            binary_bytes: Bytes { ours: 1, go: 1 },
        }
    }

    #[test]
    fn json_keeps_the_figure_paths_and_unmeasured_names_them() {
        let mut r = results();
        assert!(r.unmeasured().is_empty());
        r.stdout_mib_s = Pair::unmeasured();
        r.idle.go_50.shims = 0;
        assert_eq!(
            r.unmeasured(),
            ["stdout_mib_s.ours", "stdout_mib_s.go", "idle.go_50.shims"]
        );
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["start_ms"]["runc"], 0.5);
        assert_eq!(json["stats_ms"]["runc_per_call"], 5.0);
        assert_eq!(json["idle"]["ours_10"]["pss_kib"], 1);
        assert!(json["stdout_mib_s"]["ours"].is_null(), "NaN is null");
    }
}
