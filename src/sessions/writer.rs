//! The state writer: one thread that writes the registry's state file, off the request path.
//!
//! Registry methods change the state in memory, bump a change counter and wake the writer;
//! they never write or fsync themselves. The writer takes a snapshot of everything changed so
//! far, writes it (temp file, fsync, rename), and publishes the counter it wrote, so several
//! changes made while a write is under way cost one further write, not one each. A request
//! whose change must survive a crash awaits [`Progress`] reaching its change before it is
//! answered; touches of `last_used` do not wait. It is a thread rather than a task because
//! fsync blocks; the thread owns the progress sender, so a writer that died is noticed by the
//! waiters instead of hanging them.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tokio::sync::watch;

use super::store::{SavedState, Store};

/// What the writer has done, in change-counter units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// The latest change a write was attempted for.
    pub attempted: u64,
    /// The latest change that is on disk.
    pub written: u64,
}

/// The registry's in-memory state plus the change bookkeeping the writer needs.
#[derive(Debug, Default)]
pub struct Tracked {
    pub saved: SavedState,
    /// Counts every change that should reach the file.
    pub changed: u64,
    /// The latest change a caller may have to wait for (mint, end, context, transaction).
    pub durable: u64,
    /// Per token, the `last_used` most recently handed to the writer (see `Registry::touch`).
    pub uses_written: HashMap<String, u64>,
    closing: bool,
}

impl Tracked {
    /// State as loaded from the file, whose `last_used` values are on disk already.
    pub fn new(saved: SavedState) -> Self {
        let uses_written = saved
            .tokens
            .iter()
            .map(|(name, t)| (name.clone(), t.last_used))
            .collect();
        Self {
            saved,
            uses_written,
            ..Self::default()
        }
    }
}

/// The state shared by the registry and its writer.
#[derive(Debug, Default)]
pub struct Shared {
    tracked: Mutex<Tracked>,
    wake: Condvar,
}

impl Shared {
    pub fn new(tracked: Tracked) -> Self {
        Self {
            tracked: Mutex::new(tracked),
            wake: Condvar::new(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Tracked> {
        self.tracked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a change made under `tracked` and wakes the writer; `durable` marks one a
    /// request may wait for.
    pub fn changed(&self, tracked: &mut Tracked, durable: bool) {
        tracked.changed += 1;
        if durable {
            tracked.durable = tracked.changed;
        }
        self.wake.notify_one();
    }
}

/// The running writer thread.
pub struct Writer {
    progress: watch::Receiver<Progress>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread writing `shared`'s state to `store`.
    pub fn start(shared: Arc<Shared>, store: Store) -> std::io::Result<Self> {
        let (sender, progress) = watch::channel(Progress::default());
        let thread = std::thread::Builder::new()
            .name("state-writer".into())
            .spawn(move || write_loop(&shared, &store, &sender))?;
        Ok(Self {
            progress,
            thread: Some(thread),
        })
    }

    /// Waits until a write covering change `target` was attempted; true if it reached the
    /// disk.
    pub async fn wait_for(&self, target: u64) -> bool {
        let mut progress = self.progress.clone();
        match progress.wait_for(|p| p.attempted >= target).await {
            Ok(p) => p.written >= target,
            // The writer is gone (it panicked): nothing more will be written.
            Err(_) => false,
        }
    }

    /// Lets the writer finish what is queued, then joins it.
    pub fn stop(&mut self, shared: &Shared) {
        shared.lock().closing = true;
        shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_loop(shared: &Shared, store: &Store, progress: &watch::Sender<Progress>) {
    let mut done = 0;
    loop {
        let (snapshot, change) = {
            let mut tracked = shared.lock();
            while tracked.changed == done && !tracked.closing {
                tracked = shared.wake.wait(tracked).unwrap_or_else(|e| e.into_inner());
            }
            if tracked.changed == done {
                return;
            }
            (tracked.saved.clone(), tracked.changed)
        };
        let saved = store.save(&snapshot);
        if let Err(e) = &saved {
            // The next change rewrites everything, so nothing is retried here; the waiters of
            // this change are told it did not reach the disk.
            tracing::error!(path = %store.path().display(), error = %e, "cannot save token contexts");
        }
        progress.send_modify(|p| {
            p.attempted = change;
            if saved.is_ok() {
                p.written = change;
            }
        });
        done = change;
    }
}
