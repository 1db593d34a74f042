//! Performing the [`Mount`]s a snapshotter returns, as containerd and shims do, including
//! overlay mounts whose options are longer than the page mount(2) accepts.

use std::path::{Component, Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::{Error, Mount, Result};

/// mount(2) copies at most one page of filesystem data.
const PAGE: usize = 4096;

/// Mounts `mounts` in order onto `target` (each at its own `target` below it). On failure
/// nothing stays mounted.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<()> {
    for m in mounts {
        let at = target.join(m.target.trim_start_matches('/'));
        if let Err(e) = mount_one(m, &at) {
            unmount_all(target);
            return Err(e);
        }
    }
    Ok(())
}

/// Unmounts everything stacked on `target`.
pub fn unmount_all(target: &Path) {
    for _ in 0..64 {
        if umount2(target, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
}

fn mount_one(m: &Mount, at: &Path) -> Result<()> {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for option in &m.options {
        match option.as_str() {
            "ro" => flags.insert(MsFlags::MS_RDONLY),
            "rw" => flags.remove(MsFlags::MS_RDONLY),
            "bind" => flags.insert(MsFlags::MS_BIND),
            "rbind" => flags.insert(MsFlags::MS_BIND | MsFlags::MS_REC),
            "nosuid" => flags.insert(MsFlags::MS_NOSUID),
            "nodev" => flags.insert(MsFlags::MS_NODEV),
            "noexec" => flags.insert(MsFlags::MS_NOEXEC),
            other => data.push(other.to_owned()),
        }
    }
    let io = |e: nix::Error| Error::io("mounting", at, std::io::Error::from(e));
    if flags.contains(MsFlags::MS_BIND) {
        mount(
            Some(m.source.as_str()),
            at,
            None::<&str>,
            flags,
            None::<&str>,
        )
        .map_err(io)?;
        if flags.contains(MsFlags::MS_RDONLY) {
            mount(
                None::<&str>,
                at,
                None::<&str>,
                flags | MsFlags::MS_REMOUNT,
                None::<&str>,
            )
            .map_err(io)?;
        }
        return Ok(());
    }
    let joined = data.join(",");
    if m.kind != "overlay" || joined.len() < PAGE {
        let data = (!joined.is_empty()).then_some(joined.as_str());
        return mount(
            Some(m.source.as_str()),
            at,
            Some(m.kind.as_str()),
            flags,
            data,
        )
        .map_err(io);
    }
    let (dir, relative) = compact_overlay_options(&data);
    let at = std::path::absolute(at).map_err(|e| Error::io("resolving", at, e))?;
    let source = m.source.clone();
    // The working directory is per process; a thread that unshares its filesystem context
    // can change it without touching the rest of the process.
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<()> {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)
                    .map_err(|e| Error::io("unsharing the cwd for", &at, e.into()))?;
                std::env::set_current_dir(&dir).map_err(|e| Error::io("entering", &dir, e))?;
                mount(
                    Some(source.as_str()),
                    &at,
                    Some("overlay"),
                    flags,
                    Some(relative.join(",").as_str()),
                )
                .map_err(|e| Error::io("mounting", &at, e.into()))
            })
            .join()
            .unwrap_or_else(|_| {
                Err(Error::io(
                    "mounting",
                    &at,
                    std::io::Error::other("mount thread panicked"),
                ))
            })
    })
}

/// Rewrites overlay options so their paths are relative to the deepest folder they share;
/// returns that folder and the options.
pub fn compact_overlay_options(options: &[String]) -> (PathBuf, Vec<String>) {
    let mut paths: Vec<&str> = Vec::new();
    for option in options {
        if let Some((key, value)) = option.split_once('=') {
            match key {
                "lowerdir" => paths.extend(value.split(':')),
                "upperdir" | "workdir" => paths.push(value),
                _ => {}
            }
        }
    }
    let common = common_dir(&paths);
    let strip = |p: &str| -> String {
        Path::new(p)
            .strip_prefix(&common)
            .map_or_else(|_| p.to_owned(), |r| r.to_string_lossy().into_owned())
    };
    let rewritten = options
        .iter()
        .map(|option| match option.split_once('=') {
            Some(("lowerdir", value)) => format!(
                "lowerdir={}",
                value.split(':').map(strip).collect::<Vec<_>>().join(":")
            ),
            Some((key @ ("upperdir" | "workdir"), value)) => format!("{key}={}", strip(value)),
            _ => option.clone(),
        })
        .collect();
    (common, rewritten)
}

/// The deepest folder that holds every one of `paths` (all absolute) strictly below it.
fn common_dir(paths: &[&str]) -> PathBuf {
    let mut common: Option<Vec<Component<'_>>> = None;
    for path in paths {
        // A path's own last component cannot be part of the shared folder.
        let parent: Vec<Component<'_>> = Path::new(path)
            .parent()
            .map(|p| p.components().collect())
            .unwrap_or_default();
        common = Some(match common {
            None => parent,
            Some(c) => c
                .iter()
                .zip(parent.iter())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| *a)
                .collect(),
        });
    }
    common
        .map(|c| c.iter().collect())
        .unwrap_or_else(|| PathBuf::from("/"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::compact_overlay_options;

    #[test]
    fn overlay_paths_become_relative_to_their_shared_folder() {
        let (dir, options) = compact_overlay_options(&[
            "index=off".into(),
            "workdir=/var/s/snapshots/9/work".into(),
            "upperdir=/var/s/snapshots/9/fs".into(),
            "lowerdir=/var/s/snapshots/8/fs:/var/s/snapshots/1/fs".into(),
        ]);
        assert_eq!(dir, Path::new("/var/s/snapshots"));
        assert_eq!(
            options,
            [
                "index=off",
                "workdir=9/work",
                "upperdir=9/fs",
                "lowerdir=8/fs:1/fs"
            ]
        );
    }
}
