//! The pinned upstream sources and their checked-in descriptor sets.
//!
//! Each source has a lock (which upstream files, from where, with which hashes), a folder the
//! vendor step fetches them into (git-ignored), and a descriptor set compiled from them that is
//! checked in. `cargo xtask vendor` is the only step that reads upstream files; `cargo xtask
//! regen` works from the descriptor sets alone, so it and its drift test run offline.
//!
//! Adding a source is one more entry in [`SOURCES`] with its own lock file (Kubernetes' CRI
//! `api.proto` is the second); vendor, regen and the drift checks pick it up.

use std::path::Path;

use crate::Error;

/// One pinned upstream source.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    /// Short name, used in messages.
    pub name: &'static str,
    /// Its lock file, relative to the repository root.
    pub lock: &'static str,
    /// Where `cargo xtask vendor` puts its files, relative to the repository root.
    pub upstream: &'static str,
    /// Its checked-in descriptor set, relative to the repository root.
    pub descriptors: &'static str,
}

/// Every pinned source, in the order their descriptor sets are read.
pub const SOURCES: &[Source] = &[
    Source {
        name: "containerd",
        lock: "proto/vendor.lock",
        upstream: "proto/upstream",
        descriptors: "proto/descriptors/containerd.binpb",
    },
    Source {
        name: "Kubernetes CRI",
        lock: "proto/cri.lock",
        upstream: "proto/upstream-cri",
        descriptors: "proto/descriptors/cri.binpb",
    },
];

/// Protos we wrote ourselves, for imports no package carries; compiled at every regen.
pub const EXTRA_DIR: &str = "proto/extra";

/// The command that rewrites the descriptor sets from freshly fetched files.
pub const VENDOR_COMMAND: &str = "cargo xtask vendor";

impl Source {
    /// Reads the checked-in descriptor set.
    pub fn read_descriptors(&self, root: &Path) -> Result<Vec<u8>, Error> {
        let path = root.join(self.descriptors);
        std::fs::read(&path).map_err(|e| Error::io(&path, e))
    }

    /// Compiles the vendored files named by `paths` (import paths under [`Source::upstream`])
    /// into a descriptor set.
    pub fn compile(&self, root: &Path, paths: &[String]) -> Result<Vec<u8>, Error> {
        let includes = [root.join(self.upstream), root.join(EXTRA_DIR)];
        ctrd_codegen::compile_pinned(&includes, paths).map_err(Error::Codegen)
    }

    /// Writes `compiled` as the checked-in descriptor set, or in check mode fails, naming the
    /// command to run, when the checked-in one differs.
    pub fn sync_descriptors(&self, root: &Path, compiled: &[u8], check: bool) -> Result<(), Error> {
        let path = root.join(self.descriptors);
        let current = std::fs::read(&path).ok();
        if current.as_deref() == Some(compiled) {
            println!("vendor: {} is up to date", self.descriptors);
            return Ok(());
        }
        if check {
            return Err(Error::Drift(format!(
                "{} is not what the vendored {} protos compile to ({}): run `{VENDOR_COMMAND}` \
                 and `cargo xtask regen`, and commit the result",
                self.descriptors,
                self.name,
                if current.is_some() {
                    "differs"
                } else {
                    "missing"
                },
            )));
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&path, compiled).map_err(|e| Error::io(&path, e))?;
        println!("vendor: wrote {}", self.descriptors);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::Lock;
    use crate::repo_root;

    /// Each checked-in descriptor set holds exactly the files its lock pins: a re-pin that
    /// forgot to recompile, or a set compiled from other files, fails here, offline.
    #[test]
    fn descriptor_sets_hold_the_pinned_files() {
        let root = repo_root();
        for source in SOURCES {
            let lock = Lock::read(&root.join(source.lock)).unwrap_or_else(|e| panic!("{e}"));
            let set = source
                .read_descriptors(&root)
                .unwrap_or_else(|e| panic!("{e}"));
            let mut held = ctrd_codegen::file_names(&set).unwrap_or_else(|e| panic!("{e}"));
            held.sort();
            let mut pinned: Vec<String> = lock.paths().map(str::to_owned).collect();
            pinned.sort();
            assert_eq!(
                held, pinned,
                "{} does not hold the files {} pins: run `{VENDOR_COMMAND}`",
                source.descriptors, source.lock
            );
        }
    }

    /// Compiling the same protos twice gives the same bytes, and no source comment survives.
    #[test]
    fn compiled_descriptors_are_deterministic_and_schema_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let upstream = dir.path().join("proto/upstream/example");
        std::fs::create_dir_all(&upstream).expect("mkdir");
        std::fs::write(
            upstream.join("a.proto"),
            "syntax = \"proto3\";\npackage example;\n// SECRET-COMMENT\nmessage A { string x = 1; }\n",
        )
        .expect("write");
        let source = Source {
            name: "example",
            lock: "proto/example.lock",
            upstream: "proto/upstream",
            descriptors: "proto/descriptors/example.binpb",
        };
        let paths = vec!["example/a.proto".to_owned()];
        let first = source.compile(dir.path(), &paths).expect("compile");
        let second = source.compile(dir.path(), &paths).expect("compile");
        assert_eq!(first, second, "two compilations differ");
        let needle = b"SECRET-COMMENT";
        assert!(
            !first.windows(needle.len()).any(|w| w == needle),
            "a source comment reached the descriptor set"
        );

        source
            .sync_descriptors(dir.path(), &first, false)
            .expect("write");
        source
            .sync_descriptors(dir.path(), &first, true)
            .expect("fresh set checks clean");
        let other = b"\x0a\x00".to_vec();
        let Err(Error::Drift(message)) = source.sync_descriptors(dir.path(), &other, true) else {
            panic!("a differing set must fail the check");
        };
        assert!(message.contains("run `cargo xtask vendor`"), "{message}");
    }
}
