//! `cargo xtask regen`: rewrite `generated/` from the checked-in descriptor sets, or check it is
//! current. Offline: it reads `proto/descriptors/` and `proto/extra/`, never upstream files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::pinned::{EXTRA_DIR, SOURCES};
use crate::{Error, lock, repo_root};

/// The command that rewrites the generated crate, named in headers and drift messages.
pub const COMMAND: &str = "cargo xtask regen";
/// Where the generated crate lives, relative to the repository root.
pub const OUTPUT_DIR: &str = "generated/api";

/// Whether to write the generated files or only compare them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Rewrite files that differ and remove stale ones.
    Write,
    /// Fail, naming the command to run, if anything differs.
    Check,
}

/// Generates the bindings and writes or checks them in `generated/`.
pub fn run(mode: Mode) -> Result<(), Error> {
    let root = repo_root();
    let files = generate(&root)?;
    sync(&files, &root.join(OUTPUT_DIR), mode)
}

/// Writes `files` into `out_dir` (removing files it should not hold), or checks that it holds
/// exactly them.
fn sync(files: &[ctrd_codegen::OutputFile], out_dir: &Path, mode: Mode) -> Result<(), Error> {
    let existing: BTreeSet<PathBuf> = walk(out_dir)?.into_iter().collect();
    let produced: BTreeSet<PathBuf> = files.iter().map(|f| f.path.clone()).collect();

    let mut drift = Vec::new();
    for file in files {
        let path = out_dir.join(&file.path);
        let current = std::fs::read_to_string(&path).ok();
        if current.as_deref() == Some(file.contents.as_str()) {
            continue;
        }
        match mode {
            Mode::Check => drift.push(format!(
                "{} {}",
                if current.is_some() {
                    "differs:"
                } else {
                    "missing:"
                },
                file.path.display()
            )),
            Mode::Write => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                }
                std::fs::write(&path, &file.contents).map_err(|e| Error::io(&path, e))?;
                println!("regen: wrote {OUTPUT_DIR}/{}", file.path.display());
            }
        }
    }
    for stale in existing.difference(&produced) {
        match mode {
            Mode::Check => drift.push(format!("stale: {}", stale.display())),
            Mode::Write => {
                let path = out_dir.join(stale);
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                println!("regen: removed {OUTPUT_DIR}/{}", stale.display());
            }
        }
    }
    if !drift.is_empty() {
        return Err(Error::Drift(format!(
            "{OUTPUT_DIR} is not what the generator produces now:\n  {}\nrun `{COMMAND}` and commit the result",
            drift.join("\n  ")
        )));
    }
    if mode == Mode::Check {
        println!("regen: {OUTPUT_DIR} is up to date ({} files)", files.len());
    }
    Ok(())
}

/// Runs the generator over the pinned descriptor sets (with [`crate::amend`]'s fields) and the
/// extra protos.
pub fn generate(root: &Path) -> Result<Vec<ctrd_codegen::OutputFile>, Error> {
    let descriptor_sets = SOURCES
        .iter()
        .map(|source| crate::amend::amend(&source.read_descriptors(root)?))
        .collect::<Result<Vec<_>, _>>()?;
    let extra = root.join(EXTRA_DIR);
    let files = lock::find_protos(&extra)?
        .into_iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let input = ctrd_codegen::Input {
        descriptor_sets,
        includes: vec![extra],
        files,
        command: COMMAND.to_owned(),
    };
    ctrd_codegen::generate(&input).map_err(Error::Codegen)
}

/// Every file below `dir`, relative to it.
fn walk(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    fn visit(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let path = entry.path();
            if path.is_dir() {
                visit(base, &path, out)?;
            } else if let Ok(rel) = path.strip_prefix(base) {
                out.push(rel.to_owned());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    if dir.is_dir() {
        visit(dir, dir, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checked-in bindings are what the generator produces from the checked-in descriptor
    /// sets; needs no network and no vendored file, so it runs everywhere.
    #[test]
    fn generated_code_is_current() {
        if let Err(e) = run(Mode::Check) {
            panic!("{e}");
        }
    }

    /// An edited, a missing and a stray file each make the check fail, naming the command.
    #[test]
    fn check_names_the_command_when_output_drifts() {
        let files = vec![
            ctrd_codegen::OutputFile {
                path: "src/lib.rs".into(),
                contents: "pub mod a;\n".into(),
            },
            ctrd_codegen::OutputFile {
                path: "src/a.rs".into(),
                contents: "pub struct A;\n".into(),
            },
        ];
        let dir = tempfile::tempdir().expect("tempdir");
        sync(&files, dir.path(), Mode::Write).expect("write");
        sync(&files, dir.path(), Mode::Check).expect("fresh output checks clean");

        std::fs::write(dir.path().join("src/a.rs"), "pub struct B;\n").expect("edit");
        std::fs::write(dir.path().join("src/stray.rs"), "").expect("stray");
        let Err(Error::Drift(message)) = sync(&files, dir.path(), Mode::Check) else {
            panic!("an edited file must fail the check");
        };
        assert!(message.contains("differs: src/a.rs"), "{message}");
        assert!(message.contains("stale: src/stray.rs"), "{message}");
        assert!(message.contains("run `cargo xtask regen`"), "{message}");

        sync(&files, dir.path(), Mode::Write).expect("rewrite");
        assert!(
            !dir.path().join("src/stray.rs").exists(),
            "stale files are removed"
        );
        sync(&files, dir.path(), Mode::Check).expect("clean again");
    }

    /// Generating twice gives the same bytes.
    #[test]
    fn output_is_deterministic() {
        let root = repo_root();
        let first = generate(&root).unwrap_or_else(|e| panic!("{e}"));
        let second = generate(&root).unwrap_or_else(|e| panic!("{e}"));
        assert!(first == second, "two runs of the generator differ");
    }
}
