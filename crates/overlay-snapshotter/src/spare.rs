//! The folder of the next active snapshot, made ahead of time.
//!
//! Making a snapshot's folders (the snapshot's own, `fs` and `work`) is three `mkdir`s, and
//! under a steady stream of durable commits each one can wait a millisecond or more for the
//! filesystem's journal. A background thread makes the next active snapshot's folders
//! after each `Prepare` takes the last ones, so a `Prepare` usually only renames them into
//! place. They wait in `ROOT/spare/`, outside the snapshots' folder; `Cleanup` removes any
//! there but the current one (left by a crash, or by a process that stopped).

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use ctrd_snapshots::{Error, Kind, Result};

/// A spare folder layout for an active snapshot, and the thread that makes the next.
#[derive(Debug)]
pub(crate) struct Spare {
    dir: PathBuf,
    ready: Arc<Mutex<Option<PathBuf>>>,
    /// Wakes the maker; dropping it ends the thread.
    wake: Mutex<Sender<()>>,
}

impl Spare {
    /// Starts the maker for folders in `dir` (made if missing). It holds `folders` shared
    /// while it makes one, as every call that makes folders does.
    pub(crate) fn start(dir: PathBuf, folders: Arc<RwLock<()>>) -> Result<Spare> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::io("creating", &dir, e))?;
        let ready = Arc::new(Mutex::new(None));
        let (wake, woken) = channel::<()>();
        let maker = {
            let dir = dir.clone();
            let ready = Arc::clone(&ready);
            move || {
                let counter = AtomicU64::new(0);
                while woken.recv().is_ok() {
                    let _shared = folders.read().unwrap_or_else(PoisonError::into_inner);
                    if ready
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .is_some()
                    {
                        continue;
                    }
                    // Made without holding `ready`, so a Prepare never waits for it: one
                    // that comes meanwhile makes its own folders.
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let path = dir.join(format!("{}-{n}", std::process::id()));
                    match crate::overlay::make_layout(&path, Kind::Active) {
                        Ok(()) => {
                            *ready.lock().unwrap_or_else(PoisonError::into_inner) = Some(path);
                        }
                        Err(e) => {
                            // Prepare makes its own folders then; Cleanup takes this.
                            tracing::warn!(error = %e.full_message(), "making a spare folder");
                        }
                    }
                }
            }
        };
        std::thread::Builder::new()
            .name("spare-folders".into())
            .spawn(maker)
            .map_err(|e| Error::io("starting a thread for", &dir, e))?;
        let spare = Spare {
            dir,
            ready,
            wake: Mutex::new(wake),
        };
        spare.make_next();
        Ok(spare)
    }

    /// The folder where spares wait.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the spare, if one is ready, and asks for the next.
    pub(crate) fn take(&self) -> Option<PathBuf> {
        let taken = self
            .ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.make_next();
        taken
    }

    /// The spare that is ready, which `Cleanup` keeps.
    pub(crate) fn current(&self) -> Option<PathBuf> {
        self.ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn make_next(&self) {
        // The maker is gone only if it panicked; Prepare then makes its own folders.
        let _ = self
            .wake
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(());
    }
}
