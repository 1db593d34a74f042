//! The cases, and [`run`].

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use ctrd_api::containerd::services::snapshots::v1 as api;
use ctrd_api::containerd::types::Mount;
use tonic::{Code, Status};

use super::calls::{
    commit, commit_labelled, commit_onto, list, mounts, prepare, prepare_labelled, remove, stat,
    update, usage, view,
};
use super::{Mounted, Target};
use crate::{Error, Result};

/// One conformance case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    /// Its name (also the prefix of the keys it uses).
    pub name: &'static str,
    /// Whether it mounts the snapshots to read and write files: it needs root then, and
    /// the filesystem the snapshotter's mounts use (overlayfs for an overlay snapshotter).
    pub mounts: bool,
    /// What it checks.
    pub checks: &'static str,
    /// Whether it commits snapshots onto another parent (`CommitSnapshotRequest.parent`,
    /// "rebase"). Through a containerd older than 2.2, which drops that field, [`run`] does
    /// not run it and answers [`Error::NotApplicable`].
    pub rebase: bool,
}

/// Every case, in the order they are best run.
pub const CASES: &[Case] = &[
    Case {
        name: "basic_chain",
        mounts: true,
        checks: "prepare, commit and view chains; stat of active, committed and view \
                 snapshots; files of a parent seen through its child; views read-only; \
                 a parent cannot be removed before its children; the active key is gone \
                 after commit",
        rebase: false,
    },
    Case {
        name: "file_changes_carry_across_layers",
        mounts: true,
        checks: "files changed, deleted, renamed and chowned in a lower layer, and a \
                 directory replaced by an opaque one, look the same three layers up",
        rebase: false,
    },
    Case {
        name: "permissions_and_owners",
        mounts: true,
        checks: "a new snapshot's root is 0755; modes (0711, 1777, 0640) survive commit; a \
                 layer's root keeps its parent root's owner; a lower file renames",
        rebase: false,
    },
    Case {
        name: "labels_and_update",
        mounts: false,
        checks: "labels kept from prepare and commit; update of labels.KEY, removal of one \
                 label and replacement of all with labels",
        rebase: false,
    },
    Case {
        name: "list_with_filters",
        mounts: true,
        checks: "List with name==, parent==, kind== and labels filters, `,` (and), several \
                 filters (or) and ~= regular expressions",
        rebase: false,
    },
    Case {
        name: "usage_of_active_and_committed",
        mounts: true,
        checks: "Usage of an active snapshot counts its files; a committed one reports the \
                 same; a view holds nothing of its own",
        rebase: false,
    },
    Case {
        name: "bad_input_gets_the_right_code",
        mounts: false,
        checks: "missing parents (NotFound), active parents (FailedPrecondition), existing \
                 keys (AlreadyExists), unknown keys on every call (NotFound), labels over \
                 4 KiB, updates of other fields and malformed filters (InvalidArgument); \
                 failed calls leave nothing",
        rebase: false,
    },
    Case {
        name: "commit_and_remove_twice",
        mounts: false,
        checks: "a second Commit of the same key and a second Remove answer NotFound",
        rebase: false,
    },
    Case {
        name: "commit_onto_a_parent",
        mounts: true,
        checks: "layers prepared without a parent (one labelled with its parent's chain id, as \
                 parallel unpack does) commit onto a committed parent: Stat shows it, a view \
                 shows the parent's files under the layers', the parent cannot be removed \
                 first; onto a missing parent NotFound, onto an active one \
                 FailedPrecondition, both leaving the layer active; a layer prepared on a \
                 parent commits onto that one, never onto another (InvalidArgument directly; \
                 containerd's metadata layer keeps the prepare's parent without asking)",
        rebase: true,
    },
    Case {
        name: "layers_128",
        mounts: true,
        checks: "128 layers (Target::with_layers to change) stack, each file visible from \
                 the top; their overlay options exceed a page and still mount",
        rebase: false,
    },
];

/// Runs `case` against `target`, then checks that nothing of it is left (after `Cleanup`,
/// or containerd's garbage collection through containerd). The error names the case and
/// the first check that failed; [`Error::NotApplicable`] (nothing ran) for a [`Case::rebase`]
/// case through a containerd that does not pass the commit's parent on.
pub async fn run(target: &Target, case: &Case) -> Result<()> {
    let failed = |check: String| Error::Conformance {
        case: case.name,
        check,
    };
    if case.mounts && !nix::unistd::geteuid().is_root() {
        return Err(failed(
            "this case mounts the snapshots it makes: run it as root".into(),
        ));
    }
    if case.rebase && !target.commit_carries_parent() {
        return Err(Error::NotApplicable {
            case: case.name,
            reason: format!(
                "containerd {} drops CommitSnapshotRequest.parent (rebase), which 2.2 added",
                target.containerd_version().unwrap_or_default()
            ),
        });
    }
    let t = target;
    let result = match case.name {
        "basic_chain" => basic_chain(t).await,
        "file_changes_carry_across_layers" => file_changes_carry_across_layers(t).await,
        "permissions_and_owners" => permissions_and_owners(t).await,
        "labels_and_update" => labels_and_update(t).await,
        "list_with_filters" => list_with_filters(t).await,
        "usage_of_active_and_committed" => usage_of_active_and_committed(t).await,
        "bad_input_gets_the_right_code" => bad_input_gets_the_right_code(t).await,
        "commit_and_remove_twice" => commit_and_remove_twice(t).await,
        "commit_onto_a_parent" => commit_onto_a_parent(t).await,
        "layers_128" => layers(t, t.layers()).await,
        other => Err(format!("no case is named {other:?}")),
    };
    result.map_err(failed)?;
    nothing_left(t).await.map_err(failed)
}

/// A check's outcome: what failed, in words.
type Check<T = ()> = std::result::Result<T, String>;

/// Fails with the message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err(format!($($message)+));
        }
    };
}

/// Fails unless `left == right`, showing both.
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($message:tt)+) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            return Err(format!("{}: {left:?} != {right:?}", format!($($message)+)));
        }
    }};
}

fn ok<T>(result: std::result::Result<T, Status>, what: &str) -> Check<T> {
    result.map_err(|s| format!("{what}: {:?} {}", s.code(), s.message()))
}

fn io<T>(result: std::io::Result<T>, what: &str) -> Check<T> {
    result.map_err(|e| format!("{what}: {e}"))
}

fn code<T: std::fmt::Debug>(
    result: std::result::Result<T, Status>,
    want: Code,
    what: &str,
) -> Check {
    match result {
        Ok(v) => Err(format!("{what}: succeeded ({v:?}), wanted {want:?}")),
        Err(s) => {
            ensure_eq!(s.code(), want, "{what} ({})", s.message());
            ensure!(!s.message().is_empty(), "{what}: an empty error message");
            Ok(())
        }
    }
}

fn mount(m: &[Mount], what: &str) -> Check<Mounted> {
    Mounted::new(m).map_err(|e| format!("mounting {what} ({m:?}): {}", e.full_message()))
}

fn write(path: &Path, content: &str) -> Check {
    io(
        fs::write(path, content),
        &format!("writing {}", path.display()),
    )
}

fn read(path: &Path) -> Check<String> {
    io(
        fs::read_to_string(path),
        &format!("reading {}", path.display()),
    )
}

/// Prepares `key` on `parent`, lets `change` change its files, and commits it as `name`.
async fn layer(
    t: &Target,
    name: &str,
    key: &str,
    parent: &str,
    change: impl FnOnce(&Path) -> Check,
) -> Check {
    let m = ok(prepare(t, key, parent).await, key)?;
    {
        let mounted = mount(&m, key)?;
        change(mounted.path())?;
    }
    ok(commit(t, name, key).await, name)
}

/// Every snapshot folder is gone once the snapshots are (containerd removes from its proxy
/// lazily, in garbage collection; Cleanup reclaims the folders).
async fn nothing_left(t: &Target) -> Check {
    let entries = |folder: &Path| -> Vec<String> {
        fs::read_dir(folder)
            .map(|d| {
                d.filter_map(std::result::Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        ok(t.collect_garbage().await, "collecting garbage (Cleanup)")?;
        let Some(folder) = t.folders() else {
            return Ok(());
        };
        let left = entries(folder);
        if left.is_empty() {
            return Ok(());
        }
        ensure!(
            t.through_containerd_daemon() && Instant::now() < deadline,
            "left on disk in {}: {left:?}",
            folder.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn basic_chain(t: &Target) -> Check {
    layer(t, "basic-c1", "basic-1", "", |root| {
        write(&root.join("a.txt"), "one")?;
        io(fs::create_dir(root.join("dir")), "mkdir")
    })
    .await?;
    let info = ok(stat(t, "basic-c1").await, "stat committed")?;
    ensure_eq!(
        info.kind,
        api::Kind::Committed as i32,
        "kind of a committed snapshot"
    );
    ensure_eq!(info.parent, "", "parent of a first layer");

    let m = ok(
        prepare(t, "basic-2", "basic-c1").await,
        "prepare on a parent",
    )?;
    let info = ok(stat(t, "basic-2").await, "stat active")?;
    ensure_eq!(
        info.kind,
        api::Kind::Active as i32,
        "kind of an active snapshot"
    );
    ensure_eq!(info.parent, "basic-c1", "parent of an active snapshot");
    ensure_eq!(
        ok(mounts(t, "basic-2").await, "mounts")?,
        m,
        "Mounts and Prepare agree"
    );
    {
        let mounted = mount(&m, "basic-2")?;
        ensure_eq!(
            read(&mounted.path().join("a.txt"))?,
            "one",
            "a parent's file"
        );
        write(&mounted.path().join("b.txt"), "two")?;
    }
    ok(commit(t, "basic-c2", "basic-2").await, "commit")?;
    code(
        stat(t, "basic-2").await,
        Code::NotFound,
        "the active key after commit",
    )?;

    let v = ok(view(t, "basic-v", "basic-c2").await, "view")?;
    let info = ok(stat(t, "basic-v").await, "stat view")?;
    ensure_eq!(info.kind, api::Kind::View as i32, "kind of a view");
    {
        let mounted = mount(&v, "basic-v")?;
        ensure_eq!(
            read(&mounted.path().join("a.txt"))?,
            "one",
            "the grandparent's file"
        );
        ensure_eq!(
            read(&mounted.path().join("b.txt"))?,
            "two",
            "the parent's file"
        );
        let err = fs::write(mounted.path().join("c.txt"), "x").err();
        ensure_eq!(
            err.and_then(|e| e.raw_os_error()),
            Some(nix::libc::EROFS),
            "writing into a view (it is read-only)"
        );
    }
    code(
        remove(t, "basic-c1").await,
        Code::FailedPrecondition,
        "removing a parent",
    )?;
    for key in ["basic-v", "basic-c2", "basic-c1"] {
        ok(remove(t, key).await, key)?;
    }
    code(
        stat(t, "basic-c1").await,
        Code::NotFound,
        "stat after remove",
    )
}

async fn file_changes_carry_across_layers(t: &Target) -> Check {
    layer(t, "carry-c1", "carry-1", "", |root| {
        for name in ["keep", "gone", "moved-from", "owned"] {
            write(&root.join(name), name)?;
        }
        io(fs::create_dir_all(root.join("dir/sub")), "mkdir")?;
        write(&root.join("dir/sub/deep"), "deep")
    })
    .await?;
    layer(t, "carry-c2", "carry-2", "carry-c1", |root| {
        io(fs::remove_file(root.join("gone")), "delete a lower file")?;
        io(
            fs::rename(root.join("moved-from"), root.join("moved-to")),
            "rename a lower file",
        )?;
        io(
            std::os::unix::fs::chown(root.join("owned"), Some(1234), Some(5678)),
            "chown a lower file",
        )?;
        io(
            fs::remove_dir_all(root.join("dir")),
            "delete a lower folder",
        )?;
        io(fs::create_dir(root.join("dir")), "make it again")?;
        write(&root.join("dir/new"), "new")
    })
    .await?;
    layer(t, "carry-c3", "carry-3", "carry-c2", |root| {
        write(&root.join("keep"), "changed in 3")
    })
    .await?;
    let v = ok(view(t, "carry-v", "carry-c3").await, "view")?;
    {
        let mounted = mount(&v, "carry-v")?;
        let root = mounted.path();
        ensure_eq!(
            read(&root.join("keep"))?,
            "changed in 3",
            "a file changed above"
        );
        ensure!(
            !root.join("gone").exists(),
            "a file deleted below came back"
        );
        ensure!(
            !root.join("moved-from").exists(),
            "a renamed file is still at its old name"
        );
        ensure_eq!(
            read(&root.join("moved-to"))?,
            "moved-from",
            "a renamed file"
        );
        let owned = io(fs::metadata(root.join("owned")), "stat owned")?;
        ensure_eq!(
            (owned.uid(), owned.gid()),
            (1234, 5678),
            "owner of a chowned file"
        );
        ensure!(
            !root.join("dir/sub").exists(),
            "an opaque directory shows what was below it"
        );
        ensure_eq!(
            read(&root.join("dir/new"))?,
            "new",
            "a file in the opaque directory"
        );
    }
    for key in ["carry-v", "carry-c3", "carry-c2", "carry-c1"] {
        ok(remove(t, key).await, key)?;
    }
    Ok(())
}

fn mode_of(path: &Path) -> Check<u32> {
    Ok(io(fs::metadata(path), &format!("stat {}", path.display()))?
        .permissions()
        .mode()
        & 0o7777)
}

async fn permissions_and_owners(t: &Target) -> Check {
    let m = ok(prepare(t, "perm-1", "").await, "prepare")?;
    {
        let mounted = mount(&m, "perm-1")?;
        let root = mounted.path();
        ensure_eq!(mode_of(root)?, 0o755, "mode of a new snapshot's root");
        let set = |p: &Path, mode: u32| {
            io(
                fs::set_permissions(p, fs::Permissions::from_mode(mode)),
                "chmod",
            )
        };
        io(fs::create_dir(root.join("private")), "mkdir")?;
        set(&root.join("private"), 0o711)?;
        io(fs::create_dir(root.join("sticky")), "mkdir")?;
        set(&root.join("sticky"), 0o1777)?;
        write(&root.join("secret"), "s")?;
        set(&root.join("secret"), 0o640)?;
        io(
            std::os::unix::fs::chown(root, Some(1000), Some(1001)),
            "chown the root",
        )?;
    }
    ok(commit(t, "perm-c1", "perm-1").await, "commit")?;
    let m = ok(prepare(t, "perm-2", "perm-c1").await, "prepare on it")?;
    {
        let mounted = mount(&m, "perm-2")?;
        let root = mounted.path();
        ensure_eq!(
            mode_of(&root.join("private"))?,
            0o711,
            "mode of a 0711 folder"
        );
        ensure_eq!(
            mode_of(&root.join("sticky"))?,
            0o1777,
            "mode of a sticky folder"
        );
        ensure_eq!(mode_of(&root.join("secret"))?, 0o640, "mode of a 0640 file");
        let meta = io(fs::metadata(root), "stat the root")?;
        ensure_eq!(
            (meta.uid(), meta.gid()),
            (1000, 1001),
            "owner of a layer's root (its parent root's)"
        );
        // Rename across layers: the lower file moves up.
        io(
            fs::rename(root.join("secret"), root.join("renamed")),
            "rename a lower file",
        )?;
        ensure_eq!(read(&root.join("renamed"))?, "s", "a renamed lower file");
    }
    for key in ["perm-2", "perm-c1"] {
        ok(remove(t, key).await, key)?;
    }
    Ok(())
}

fn label<'a>(info: &'a api::Info, key: &str) -> Option<&'a str> {
    info.labels.get(key).map(String::as_str)
}

async fn labels_and_update(t: &Target) -> Check {
    let pairs = [("a", "1"), ("containerd.io/snapshot/x", "y")];
    ok(
        prepare_labelled(t, "lab-1", "", &pairs).await,
        "prepare with labels",
    )?;
    let info = ok(stat(t, "lab-1").await, "stat")?;
    ensure_eq!(label(&info, "a"), Some("1"), "a label given to Prepare");
    let info = ok(
        update(t, "lab-1", &[("b", "2")], &["labels.b"]).await,
        "update one",
    )?;
    ensure_eq!(label(&info, "a"), Some("1"), "a label not in the update");
    ensure_eq!(label(&info, "b"), Some("2"), "the label updated");
    let info = ok(update(t, "lab-1", &[], &["labels.a"]).await, "remove one")?;
    ensure_eq!(label(&info, "a"), None, "a label updated to nothing");
    let info = ok(
        update(t, "lab-1", &[("c", "3")], &["labels"]).await,
        "replace all",
    )?;
    ensure_eq!(label(&info, "c"), Some("3"), "a label from replacing all");
    ensure_eq!(label(&info, "b"), None, "a label replaced");
    let stated = ok(stat(t, "lab-1").await, "stat after update")?;
    ensure_eq!(
        stated.labels,
        info.labels,
        "labels from Stat and from Update"
    );
    ok(
        commit_labelled(t, "lab-c1", "lab-1", &[("committed", "yes")]).await,
        "commit with labels",
    )?;
    let info = ok(stat(t, "lab-c1").await, "stat committed")?;
    ensure_eq!(
        label(&info, "committed"),
        Some("yes"),
        "a label given to Commit"
    );
    ok(remove(t, "lab-c1").await, "remove")
}

async fn list_with_filters(t: &Target) -> Check {
    layer(t, "lf-base", "lf-base-a", "", |_| Ok(())).await?;
    ok(
        prepare_labelled(t, "lf-a", "lf-base", &[("team", "x")]).await,
        "prepare",
    )?;
    ok(view(t, "lf-v", "lf-base").await, "view")?;
    let mine = |names: Vec<String>| -> Vec<String> {
        names.into_iter().filter(|n| n.starts_with("lf-")).collect()
    };
    let cases: &[(&[&str], &[&str])] = &[
        (&[], &["lf-a", "lf-base", "lf-v"]),
        (&["name==lf-base"], &["lf-base"]),
        (&["parent==lf-base"], &["lf-a", "lf-v"]),
        (&["kind==view,parent==lf-base"], &["lf-v"]),
        (&["labels.team==x"], &["lf-a"]),
        (
            &["labels.\"team\"==x", "kind==committed"],
            &["lf-a", "lf-base"],
        ),
        (&["name~=\"^lf-(a|v)$\""], &["lf-a", "lf-v"]),
    ];
    for (filters, want) in cases {
        let got = mine(ok(list(t, filters).await, &format!("list {filters:?}"))?);
        ensure_eq!(got, *want, "List with {filters:?}");
    }
    for key in ["lf-a", "lf-v", "lf-base"] {
        ok(remove(t, key).await, key)?;
    }
    Ok(())
}

async fn usage_of_active_and_committed(t: &Target) -> Check {
    let m = ok(prepare(t, "use-1", "").await, "prepare")?;
    {
        let mounted = mount(&m, "use-1")?;
        write(&mounted.path().join("big"), &"x".repeat(1 << 20))?;
        write(&mounted.path().join("small"), "x")?;
    }
    let (size, inodes) = ok(usage(t, "use-1").await, "usage of active")?;
    ensure!(size >= 1 << 20, "usage of 1 MiB written: size {size}");
    ensure!(
        inodes >= 3,
        "usage of two files and a root: {inodes} inodes"
    );
    ok(commit(t, "use-c1", "use-1").await, "commit")?;
    let committed = ok(usage(t, "use-c1").await, "usage of committed")?;
    ensure_eq!(committed, (size, inodes), "usage after commit");
    ok(view(t, "use-v", "use-c1").await, "view")?;
    let (vsize, _) = ok(usage(t, "use-v").await, "usage of a view")?;
    ensure!(
        vsize < 1 << 20,
        "a view holds nothing of its own, yet uses {vsize} bytes"
    );
    for key in ["use-v", "use-c1"] {
        ok(remove(t, key).await, key)?;
    }
    Ok(())
}

async fn bad_input_gets_the_right_code(t: &Target) -> Check {
    code(
        prepare(t, "bad-1", "no-such").await,
        Code::NotFound,
        "missing parent",
    )?;
    code(
        view(t, "bad-1", "no-such").await,
        Code::NotFound,
        "view of a missing parent",
    )?;
    ok(prepare(t, "bad-active", "").await, "prepare")?;
    code(
        prepare(t, "bad-2", "bad-active").await,
        Code::FailedPrecondition,
        "an active parent",
    )?;
    code(
        prepare(t, "bad-active", "").await,
        Code::AlreadyExists,
        "existing key",
    )?;
    code(
        commit(t, "c", "no-such").await,
        Code::NotFound,
        "commit of a missing key",
    )?;
    code(stat(t, "no-such").await, Code::NotFound, "stat")?;
    code(mounts(t, "no-such").await, Code::NotFound, "mounts")?;
    code(usage(t, "no-such").await, Code::NotFound, "usage")?;
    code(remove(t, "no-such").await, Code::NotFound, "remove")?;
    code(
        update(t, "no-such", &[], &[]).await,
        Code::NotFound,
        "update",
    )?;
    let big = "v".repeat(4097);
    code(
        prepare_labelled(t, "bad-3", "", &[("big", &big)]).await,
        Code::InvalidArgument,
        "a label over 4 KiB",
    )?;
    code(
        update(t, "bad-active", &[("big", &big)], &["labels.big"]).await,
        Code::InvalidArgument,
        "updating to a label over 4 KiB",
    )?;
    code(
        update(t, "bad-active", &[], &["parent"]).await,
        Code::InvalidArgument,
        "updating the parent",
    )?;
    let mut malformed = vec!["name==", "name=x", "labels.\"open"];
    if !t.through_containerd_daemon() {
        // containerd's own filter code takes a bad regular expression as matching nothing.
        malformed.push("name~=\"(\"");
    }
    for filter in malformed {
        match list(t, &[filter]).await {
            Err(s) if s.code() == Code::InvalidArgument => {}
            // containerd 1.6 parses the filter itself and returns its error from inside the
            // stream without a code; the message still says "invalid argument".
            Err(s)
                if t.through_containerd_daemon()
                    && s.code() == Code::Unknown
                    && s.message().ends_with("invalid argument") => {}
            other => {
                return Err(format!(
                    "filter {filter:?}: {other:?}, wanted InvalidArgument"
                ));
            }
        }
    }
    ensure_eq!(
        ok(list(t, &["name~=^bad-"]).await, "list")?,
        ["bad-active"],
        "what is left after the failed calls"
    );
    ok(remove(t, "bad-active").await, "remove")
}

async fn commit_and_remove_twice(t: &Target) -> Check {
    ok(prepare(t, "twice-1", "").await, "prepare")?;
    ok(commit(t, "twice-c1", "twice-1").await, "commit")?;
    code(
        commit(t, "twice-c2", "twice-1").await,
        Code::NotFound,
        "commit again",
    )?;
    ok(remove(t, "twice-c1").await, "remove")?;
    code(remove(t, "twice-c1").await, Code::NotFound, "remove again")
}

/// The label containerd's unpacker gives a layer it prepares before its parent is committed
/// (parallel unpack): the parent's chain id.
const PARENT_CHAIN_LABEL: &str = "containerd.io/snapshot/parent-chain-id";

/// Fails unless `key` is an active snapshot on `parent` (empty for none) and `name` does
/// not exist: what a refused commit must leave.
async fn still_active(t: &Target, key: &str, parent: &str, name: &str, what: &str) -> Check {
    let info = ok(stat(t, key).await, &format!("stat after {what}"))?;
    ensure_eq!(
        (info.kind, info.parent.as_str()),
        (api::Kind::Active as i32, parent),
        "kind and parent of {key} after {what}"
    );
    code(
        stat(t, name).await,
        Code::NotFound,
        &format!("{name} after {what}"),
    )
}

async fn commit_onto_a_parent(t: &Target) -> Check {
    layer(t, "rebase-p", "rebase-p-a", "", |root| {
        write(&root.join("base"), "p")?;
        write(&root.join("both"), "p")
    })
    .await?;
    // Prepared before its parent is known, as containerd's parallel unpack prepares a layer.
    let m = ok(
        prepare_labelled(t, "rebase-1", "", &[(PARENT_CHAIN_LABEL, "rebase-p")]).await,
        "prepare without a parent",
    )?;
    {
        let mounted = mount(&m, "rebase-1")?;
        write(&mounted.path().join("both"), "layer 1")?;
        write(&mounted.path().join("one"), "1")?;
    }
    code(
        commit_onto(t, "rebase-c1", "rebase-1", "rebase-missing").await,
        Code::NotFound,
        "commit onto a missing parent",
    )?;
    still_active(
        t,
        "rebase-1",
        "",
        "rebase-c1",
        "a commit onto a missing parent",
    )
    .await?;
    ok(prepare(t, "rebase-active", "").await, "prepare")?;
    code(
        commit_onto(t, "rebase-c1", "rebase-1", "rebase-active").await,
        Code::FailedPrecondition,
        "commit onto an active snapshot",
    )?;
    still_active(
        t,
        "rebase-1",
        "",
        "rebase-c1",
        "a commit onto an active snapshot",
    )
    .await?;

    ok(
        commit_onto(t, "rebase-c1", "rebase-1", "rebase-p").await,
        "commit onto a parent",
    )?;
    let info = ok(stat(t, "rebase-c1").await, "stat the rebased layer")?;
    ensure_eq!(
        (info.kind, info.parent.as_str()),
        (api::Kind::Committed as i32, "rebase-p"),
        "kind and parent of a layer committed onto a parent"
    );
    code(
        stat(t, "rebase-1").await,
        Code::NotFound,
        "the active key after commit",
    )?;
    // A second one, without the label, onto the first.
    let m = ok(prepare(t, "rebase-2", "").await, "prepare without a parent")?;
    {
        let mounted = mount(&m, "rebase-2")?;
        write(&mounted.path().join("two"), "2")?;
    }
    ok(
        commit_onto(t, "rebase-c2", "rebase-2", "rebase-c1").await,
        "commit onto a rebased layer",
    )?;
    let v = ok(view(t, "rebase-v", "rebase-c2").await, "view")?;
    {
        let mounted = mount(&v, "rebase-v")?;
        let root = mounted.path();
        for (file, want) in [
            ("base", "p"),
            ("both", "layer 1"),
            ("one", "1"),
            ("two", "2"),
        ] {
            ensure_eq!(
                read(&root.join(file))?,
                want,
                "{file} seen through a view of the rebased layers"
            );
        }
    }
    code(
        remove(t, "rebase-p").await,
        Code::FailedPrecondition,
        "removing the parent of a rebased layer",
    )?;

    // Prepared on a parent: committed onto that one, never onto another.
    ok(
        prepare(t, "rebase-3", "rebase-p").await,
        "prepare on a parent",
    )?;
    let other = commit_onto(t, "rebase-c3", "rebase-3", "rebase-c1").await;
    if t.through_containerd_daemon() {
        // containerd's metadata layer sends the parent on only for a snapshot it holds
        // without one; otherwise it commits onto the prepare's parent and succeeds.
        ok(other, "commit onto another parent, through containerd")?;
    } else {
        code(
            other,
            Code::InvalidArgument,
            "commit onto a parent other than the prepare's",
        )?;
        still_active(
            t,
            "rebase-3",
            "rebase-p",
            "rebase-c3",
            "a commit onto another parent",
        )
        .await?;
        ok(
            commit_onto(t, "rebase-c3", "rebase-3", "rebase-p").await,
            "commit onto the prepare's own parent",
        )?;
    }
    let info = ok(stat(t, "rebase-c3").await, "stat")?;
    ensure_eq!(info.parent, "rebase-p", "parent of a layer prepared on one");
    for key in [
        "rebase-v",
        "rebase-c3",
        "rebase-c2",
        "rebase-c1",
        "rebase-active",
        "rebase-p",
    ] {
        ok(remove(t, key).await, key)?;
    }
    Ok(())
}

async fn layers(t: &Target, count: usize) -> Check {
    let mut parent = String::new();
    for i in 0..count {
        let name = format!("deep-c{i}");
        let key = format!("deep-{i}");
        layer(t, &name, &key, &parent, |root| {
            write(&root.join(format!("layer-{i}")), &i.to_string())
        })
        .await?;
        parent = name;
    }
    let m = ok(
        prepare(t, "deep-top", &parent).await,
        "prepare on the deepest layer",
    )?;
    let longest = m
        .iter()
        .flat_map(|m| &m.options)
        .map(String::len)
        .max()
        .unwrap_or(0);
    if count >= 128 && m.iter().any(|m| m.r#type == "overlay") {
        ensure!(
            longest > 4096,
            "{count} layers should make a lowerdir over a page, the longest option is {longest}"
        );
    }
    {
        let mounted = mount(&m, "deep-top")?;
        for i in 0..count {
            ensure_eq!(
                read(&mounted.path().join(format!("layer-{i}")))?,
                i.to_string(),
                "layer {i}'s file from the top"
            );
        }
    }
    ok(remove(t, "deep-top").await, "remove top")?;
    for i in (0..count).rev() {
        ok(remove(t, &format!("deep-c{i}")).await, "remove layer")?;
    }
    Ok(())
}
