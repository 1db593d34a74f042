//! Overlay mounts whose options exceed the page mount(2) copies (long lowerdir chains, such
//! as 128 image layers): the paths are made relative to the deepest folder they share, and
//! the mount is made from a thread whose working directory is that folder.

use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};

/// mount(2) copies at most one page of filesystem data.
pub(crate) const PAGE: usize = 4096;

/// Mounts the overlay `data` (its options without flags) on `target` from a thread that
/// unshares its filesystem context and enters the paths' shared folder, so the process's
/// other threads keep their working directory.
pub(crate) fn mount_long_overlay(
    source: &str,
    target: &Path,
    flags: MsFlags,
    data: &[String],
) -> Result<(), String> {
    let (dir, relative) = relative_overlay_options(data);
    let relative = relative.join(",");
    if relative.len() >= PAGE {
        return Err(format!(
            "overlay options are {} bytes even with paths relative to {}, over the {PAGE} byte page",
            relative.len(),
            dir.display()
        ));
    }
    let target = std::path::absolute(target).map_err(|e| format!("resolving the target: {e}"))?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)
                    .map_err(|e| format!("unsharing the working directory: {e}"))?;
                nix::unistd::chdir(&dir).map_err(|e| format!("entering {}: {e}", dir.display()))?;
                mount(
                    Some(source),
                    &target,
                    Some("overlay"),
                    flags,
                    Some(relative.as_str()),
                )
                .map_err(|e| e.to_string())
            })
            .join()
            .unwrap_or_else(|_| Err("the mounting thread panicked".into()))
    })
}

/// The deepest folder holding every `lowerdir`, `upperdir` and `workdir` path, and the
/// options with those paths made relative to it.
pub(crate) fn relative_overlay_options(options: &[String]) -> (PathBuf, Vec<String>) {
    let mut paths: Vec<&Path> = Vec::new();
    for option in options {
        match option.split_once('=') {
            Some(("lowerdir", value)) => paths.extend(value.split(':').map(Path::new)),
            Some(("upperdir" | "workdir", value)) => paths.push(Path::new(value)),
            _ => {}
        }
    }
    let mut common: Option<PathBuf> = None;
    for path in &paths {
        // A path's own last component cannot be part of the shared folder.
        let parent = path.parent().unwrap_or(Path::new("/"));
        common = Some(match common {
            None => parent.to_path_buf(),
            Some(c) => c
                .components()
                .zip(parent.components())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect(),
        });
    }
    let common = common.unwrap_or_else(|| PathBuf::from("/"));
    let strip = |p: &str| {
        Path::new(p)
            .strip_prefix(&common)
            .map_or_else(|_| p.to_owned(), |r| r.to_string_lossy().into_owned())
    };
    let relative = options
        .iter()
        .map(|option| match option.split_once('=') {
            Some(("lowerdir", value)) => {
                let dirs: Vec<String> = value.split(':').map(strip).collect();
                format!("lowerdir={}", dirs.join(":"))
            }
            Some((key @ ("upperdir" | "workdir"), value)) => format!("{key}={}", strip(value)),
            _ => option.clone(),
        })
        .collect();
    (common, relative)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::relative_overlay_options;

    #[test]
    fn long_overlay_options_become_relative_to_their_shared_folder() {
        let lower: Vec<String> = (0..128)
            .map(|i| format!("/var/lib/containerd/snapshots/{i}/fs"))
            .collect();
        let (dir, options) = relative_overlay_options(&[
            "index=off".into(),
            "workdir=/var/lib/containerd/snapshots/200/work".into(),
            "upperdir=/var/lib/containerd/snapshots/200/fs".into(),
            format!("lowerdir={}", lower.join(":")),
        ]);
        assert_eq!(dir, Path::new("/var/lib/containerd/snapshots"));
        assert_eq!(options[0], "index=off");
        assert_eq!(options[1], "workdir=200/work");
        assert_eq!(options[2], "upperdir=200/fs");
        assert!(options[3].starts_with("lowerdir=0/fs:1/fs:2/fs"));
        assert!(options.join(",").len() < 4096, "fits in a page now");
    }
}
