//! The shim's own OOM score, as the Go shim sets it: one above containerd's (at most 1000),
//! so that under memory pressure the kernel kills a shim before containerd, and the shim's
//! containers (which start from the shim's score unless their spec sets one) along with it.

use std::path::Path;

/// The kernel's highest `oom_score_adj`.
const MAX: i32 = 1000;

/// The score a shim whose parent has `parent` gets.
pub fn for_parent(parent: i32) -> i32 {
    parent.saturating_add(1).min(MAX)
}

fn read(pid: &str) -> std::io::Result<i32> {
    let path = Path::new("/proc").join(pid).join("oom_score_adj");
    let text = std::fs::read_to_string(&path)?;
    text.trim().parse().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} holds {text:?}", path.display()),
        )
    })
}

/// Sets this process's score from its parent's (containerd, for the `start` action); the
/// serving shim it launches inherits it.
pub fn follow_parent() -> std::io::Result<i32> {
    let parent = read(&nix::unistd::getppid().to_string())?;
    let score = for_parent(parent);
    if read("self")? != score {
        std::fs::write("/proc/self/oom_score_adj", score.to_string())?;
    }
    Ok(score)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_above_the_parent_at_most_the_maximum() {
        assert_eq!(for_parent(0), 1);
        assert_eq!(for_parent(-999), -998);
        assert_eq!(for_parent(300), 301);
        assert_eq!(for_parent(999), 1000);
        assert_eq!(for_parent(1000), 1000);
    }
}
