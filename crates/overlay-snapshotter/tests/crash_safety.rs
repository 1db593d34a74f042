//! kill -9 of the snapshotter at random points of a prepare/commit/remove/view stream: after
//! every kill the store and the folders agree (each snapshot the store knows has its folder,
//! parents exist), `Cleanup` reclaims every orphan, and what survived still works.
//!
//! `CTRD_CRASH_KILLS` sets the number of kills (default 200); `CTRD_CRASH_SEED` replays a
//! run (the seed is printed).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::Snapshots;
use common::proxy::binary;
use ctrd_api::containerd::services::snapshots::v1 as api;
use ctrd_client::Client;
use ctrd_snapshots::{Filter, Kind, MetaStore};
use ctrd_testbed::SnapshotterProcess;

/// A small deterministic generator (xorshift64*), so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What the snapshotter lists: key → (kind, parent).
type Listing = BTreeMap<String, (i32, String)>;

async fn listing(client: &mut Snapshots) -> Result<Listing, tonic::Status> {
    let mut stream = client
        .list(api::ListSnapshotsRequest::default())
        .await?
        .into_inner();
    let mut all = Listing::new();
    while let Some(batch) = stream.message().await? {
        for info in batch.info {
            all.insert(info.name, (info.kind, info.parent));
        }
    }
    Ok(all)
}

/// Random calls until one fails (the process died).
async fn stream(
    mut client: Snapshots,
    mut rng: Rng,
    mut counter: u64,
) -> Result<(), tonic::Status> {
    loop {
        let all = listing(&mut client).await?;
        let committed: Vec<&String> = all
            .iter()
            .filter(|(_, (kind, _))| *kind == api::Kind::Committed as i32)
            .map(|(k, _)| k)
            .collect();
        let active: Vec<&String> = all
            .iter()
            .filter(|(_, (kind, _))| *kind == api::Kind::Active as i32)
            .map(|(k, _)| k)
            .collect();
        let parents: BTreeSet<&String> = all.values().map(|(_, p)| p).collect();
        let leaves: Vec<&String> = all.keys().filter(|k| !parents.contains(k)).collect();
        counter += 1;
        let pick = |rng: &mut Rng, from: &[&String]| -> String {
            from.get(rng.below(from.len() as u64) as usize)
                .map(|s| (*s).clone())
                .unwrap_or_default()
        };
        // Keep the population bounded: remove more when there are many.
        let op = if all.len() > 40 { 3 } else { rng.below(4) };
        let result = match op {
            0 | 1 => {
                let parent = if rng.below(3) == 0 {
                    String::new()
                } else {
                    pick(&mut rng, &committed)
                };
                let key = format!("k{counter}");
                let request = api::PrepareSnapshotRequest {
                    key,
                    parent,
                    ..Default::default()
                };
                if op == 0 {
                    client.prepare(request).await.map(drop)
                } else {
                    let parent = request.parent.clone();
                    client
                        .view(api::ViewSnapshotRequest {
                            key: request.key,
                            parent,
                            ..Default::default()
                        })
                        .await
                        .map(drop)
                }
            }
            2 if !active.is_empty() => {
                let key = pick(&mut rng, &active);
                client
                    .commit(api::CommitSnapshotRequest {
                        name: format!("c{counter}"),
                        key,
                        ..Default::default()
                    })
                    .await
                    .map(drop)
            }
            _ if !leaves.is_empty() => {
                let key = pick(&mut rng, &leaves);
                client
                    .remove(api::RemoveSnapshotRequest {
                        key,
                        ..Default::default()
                    })
                    .await
                    .map(drop)
            }
            _ => Ok(()),
        };
        match result {
            Ok(()) => {}
            // Refusals are fine (a view of nothing, say); a dead process is the end.
            Err(s) if s.code() == tonic::Code::Unavailable || s.code() == tonic::Code::Unknown => {
                return Err(s);
            }
            Err(s) if s.code() == tonic::Code::Internal => {
                panic!("internal error from the snapshotter: {}", s.message())
            }
            Err(_) => {}
        }
    }
}

/// With the process dead: every snapshot the store knows has its folder (active ones their
/// work folder), every parent exists. Returns the folders the store does not know.
fn check_store_and_folders(root: &Path) -> Vec<String> {
    let store = MetaStore::open(&root.join("metadata.redb")).expect("open the store after a kill");
    let ids = store.ids().expect("ids");
    let mut keys = BTreeSet::new();
    store
        .walk(&Filter::all(), &mut |info| {
            keys.insert(info.name.clone());
            if let Some(parent) = &info.parent {
                let parent_info = store.stat(parent).expect("a parent exists");
                assert_eq!(parent_info.kind, Kind::Committed, "parents are committed");
            }
            Ok(())
        })
        .expect("walk");
    assert_eq!(keys.len(), ids.len(), "one id per snapshot");
    for (id, key) in &ids {
        assert!(keys.contains(key), "id {id} names a snapshot the store has");
        let folder = root.join("snapshots").join(id.to_string());
        assert!(
            folder.join("fs").is_dir(),
            "{key}: {} missing",
            folder.display()
        );
        if store.get(key).expect("get").kind == Kind::Active {
            assert!(folder.join("work").is_dir(), "{key}: no work folder");
        }
    }
    std::fs::read_dir(root.join("snapshots"))
        .expect("list the snapshots folder")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.parse::<u64>().is_ok_and(|id| ids.contains_key(&id)))
        .collect()
}

async fn connect(process: &SnapshotterProcess) -> Snapshots {
    Client::connect(process.address())
        .await
        .expect("connect")
        .with_namespace("default")
        .snapshots()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_leaves_store_and_folders_in_agreement() {
    let kills: u64 = std::env::var("CTRD_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let seed: u64 = std::env::var("CTRD_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("crash test: {kills} kills, CTRD_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let mut process = SnapshotterProcess::start(binary(), &[]).unwrap_or_else(|e| panic!("{e}"));
    let root = process.root();
    let mut orphans_seen = BTreeSet::new();
    let mut timing = [Duration::ZERO; 2];
    let mut interrupted = 0;
    for round in 0..kills {
        let t0 = std::time::Instant::now();
        if round > 0 {
            process
                .restart()
                .unwrap_or_else(|e| panic!("restart {round}: {e}"));
        }
        timing[0] += t0.elapsed();
        let client = connect(&process).await;
        let calls = tokio::spawn(stream(client, Rng(rng.next() | 1), round * 1000));
        tokio::time::sleep(Duration::from_micros(rng.below(30_000))).await;
        process.kill();
        if calls.await.expect("stream task").is_err() {
            interrupted += 1;
        }
        let t1 = std::time::Instant::now();
        orphans_seen.extend(check_store_and_folders(&root));
        timing[1] += t1.elapsed();
    }
    // After the last kill: Cleanup reclaims every orphan and the rest still works.
    process.restart().expect("restart");
    let mut client = connect(&process).await;
    client
        .cleanup(api::CleanupRequest::default())
        .await
        .expect("cleanup");
    let mut all = listing(&mut client).await.expect("list");
    let survivors = all.len();
    for (key, (kind, _)) in &all {
        if *kind != api::Kind::Committed as i32 {
            let mounts = client
                .mounts(api::MountsRequest {
                    key: key.clone(),
                    ..Default::default()
                })
                .await
                .expect("mounts of a survivor")
                .into_inner()
                .mounts;
            for m in mounts.iter().flat_map(|m| &m.options) {
                for dir in m
                    .strip_prefix("lowerdir=")
                    .into_iter()
                    .flat_map(|v| v.split(':'))
                {
                    assert!(Path::new(dir).is_dir(), "{key}: lower {dir} exists");
                }
            }
        }
    }
    // Remove everything, leaves first.
    while !all.is_empty() {
        let parents: BTreeSet<String> = all.values().map(|(_, p)| p.clone()).collect();
        for key in all.keys().filter(|k| !parents.contains(*k)) {
            client
                .remove(api::RemoveSnapshotRequest {
                    key: key.clone(),
                    ..Default::default()
                })
                .await
                .expect("remove a survivor");
        }
        all = listing(&mut client).await.expect("list");
    }
    let status = process.stop().expect("a running process");
    assert!(
        status.success(),
        "SIGTERM ends the snapshotter cleanly ({status})"
    );
    assert!(
        !process.address().exists(),
        "the socket is removed on SIGTERM"
    );
    assert!(
        check_store_and_folders(&root).is_empty(),
        "Cleanup reclaimed every orphan"
    );
    let left = std::fs::read_dir(root.join("snapshots"))
        .expect("list")
        .count();
    assert_eq!(left, 0, "nothing left after removing everything");
    eprintln!(
        "crash test: {kills} kills ({interrupted} mid-call), {} orphan folders left by kills \
         and reclaimed by Cleanup, {survivors} snapshots survived and were removed \
         (restarts {:?}, checks {:?})",
        orphans_seen.len(),
        timing[0],
        timing[1]
    );
}
