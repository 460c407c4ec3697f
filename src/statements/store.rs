//! Where finished results live while the daemon can serve pages of them.
//!
//! Rows are kept as their JSON text (see `crate::row`). All held results share one memory
//! bound (`results.memory`): rows beyond it go to a private spill file per result (mode 0600,
//! in a 0700 directory under the runtime dir), one row per line, with a sparse index (the byte
//! offset of every [`INDEX_EVERY`]th row) so a page costs one seek and a short scan, and the
//! index stays small (a 1M-row result needs 4k offsets). A result starts spilling at the first
//! row that does not fit, so every result is a resident prefix plus a spilled suffix.
//! Results are dropped `results.keep` after they were stored (their spill file with them);
//! what is dropped is no longer held here and must come from Snowflake's result cache.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::row::Row;
use crate::snowflake::ResultColumn;

/// One index entry per this many spilled rows.
const INDEX_EVERY: usize = 256;

/// Why the store could not hold or serve a result.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot write the result spill file {path}: {source}")]
    Spill {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the result spill file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A page of a held result.
#[derive(Debug, Clone)]
pub struct Page {
    pub columns: Vec<ResultColumn>,
    pub rows: Vec<Row>,
    /// Rows the held result has in all.
    pub total_rows: u64,
    /// The held rows are the whole result (not a prefix cut by `max_rows`).
    pub complete: bool,
}

/// Held results, by statement id.
pub struct ResultStore {
    dir: PathBuf,
    memory_limit: usize,
    keep: Duration,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    results: HashMap<String, Held>,
    resident_bytes: usize,
    next_file: u64,
}

struct Held {
    columns: Vec<ResultColumn>,
    resident: Vec<Row>,
    resident_bytes: usize,
    spill: Option<Spill>,
    complete: bool,
    stored_at: Instant,
}

struct Spill {
    path: PathBuf,
    rows: usize,
    /// Byte offset of rows 0, INDEX_EVERY, 2·INDEX_EVERY, … of the spilled part.
    index: Vec<u64>,
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Held {
    fn total_rows(&self) -> usize {
        self.resident.len() + self.spill.as_ref().map_or(0, |s| s.rows)
    }
}

impl ResultStore {
    /// A store spilling into `dir` (created 0700 when first needed).
    pub fn new(dir: PathBuf, memory_limit: usize, keep: Duration) -> Self {
        Self {
            dir,
            memory_limit,
            keep,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Holds `rows` as the result of statement `id`, replacing what was held for it.
    /// `complete` says whether the rows are the whole result. Returns whether rows went to a
    /// spill file.
    pub fn insert(
        &self,
        id: &str,
        columns: Vec<ResultColumn>,
        rows: Vec<Row>,
        complete: bool,
    ) -> Result<bool, StoreError> {
        self.remove(id);
        let mut rows = rows.into_iter();
        let mut resident = Vec::new();
        let mut resident_bytes = 0;
        let mut spill_from = None;
        {
            let mut inner = self.lock();
            for row in rows.by_ref() {
                let size = row_size(&row);
                if inner.resident_bytes + size > self.memory_limit {
                    spill_from = Some(row);
                    break;
                }
                inner.resident_bytes += size;
                resident_bytes += size;
                resident.push(row);
            }
            inner.next_file += 1;
        }
        // The file is written outside the lock: other pages stay servable meanwhile.
        let spill = match spill_from {
            Some(first) => {
                let number = self.lock().next_file;
                match self.write_spill(id, number, std::iter::once(first).chain(rows)) {
                    Ok(spill) => Some(spill),
                    Err(e) => {
                        self.lock().resident_bytes -= resident_bytes;
                        return Err(e);
                    }
                }
            }
            None => None,
        };
        let spilled = spill.is_some();
        let held = Held {
            columns,
            resident,
            resident_bytes,
            spill,
            complete,
            stored_at: Instant::now(),
        };
        if let Some(old) = self.lock().results.insert(id.to_string(), held) {
            // A concurrent insert for the same id: the later one wins.
            self.lock().resident_bytes -= old.resident_bytes;
        }
        Ok(spilled)
    }

    fn write_spill(
        &self,
        id: &str,
        number: u64,
        rows: impl Iterator<Item = Row>,
    ) -> Result<Spill, StoreError> {
        let path = self.dir.join(format!(
            "{}-{number}.ndjson",
            id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
        ));
        let error = |source| StoreError::Spill {
            path: path.display().to_string(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(error)?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(error)?;
        // From here on the file is removed if anything fails.
        let mut spill = Spill {
            path: path.clone(),
            rows: 0,
            index: Vec::new(),
        };
        let mut writer = BufWriter::new(file);
        let mut offset = 0u64;
        for row in rows {
            if spill.rows.is_multiple_of(INDEX_EVERY) {
                spill.index.push(offset);
            }
            // JSON text never contains a raw newline: one row per line.
            writer.write_all(row.get().as_bytes()).map_err(error)?;
            writer.write_all(b"\n").map_err(error)?;
            offset += row.get().len() as u64 + 1;
            spill.rows += 1;
        }
        writer.flush().map_err(error)?;
        Ok(spill)
    }

    /// Rows `offset..offset + limit` of `id`'s result; `None` when it is not held (never
    /// stored, dropped, or expired).
    pub fn page(&self, id: &str, offset: u64, limit: u64) -> Result<Option<Page>, StoreError> {
        self.expire();
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let (mut page, spill_read) = {
            let inner = self.lock();
            let Some(held) = inner.results.get(id) else {
                return Ok(None);
            };
            let total = held.total_rows();
            let end = offset.saturating_add(limit).min(total);
            let from_memory: Vec<Row> = held
                .resident
                .get(offset.min(held.resident.len())..end.min(held.resident.len()))
                .unwrap_or_default()
                .to_vec();
            let spill_read = held.spill.as_ref().and_then(|spill| {
                let start = offset.max(held.resident.len()) - held.resident.len();
                let stop = end.saturating_sub(held.resident.len());
                (stop > start).then(|| {
                    let block = start / INDEX_EVERY;
                    (
                        spill.path.clone(),
                        spill.index[block],
                        start - block * INDEX_EVERY,
                        stop - start,
                    )
                })
            });
            (
                Page {
                    columns: held.columns.clone(),
                    rows: from_memory,
                    total_rows: total as u64,
                    complete: held.complete,
                },
                spill_read,
            )
        };
        if let Some((path, at, skip, take)) = spill_read {
            page.rows.extend(read_spilled(&path, at, skip, take)?);
        }
        Ok(Some(page))
    }

    /// Whether `id`'s result is held.
    pub fn holds(&self, id: &str) -> bool {
        self.expire();
        self.lock().results.contains_key(id)
    }

    /// Drops `id`'s result.
    pub fn remove(&self, id: &str) {
        let mut inner = self.lock();
        if let Some(held) = inner.results.remove(id) {
            inner.resident_bytes -= held.resident_bytes;
        }
    }

    /// Drops results stored longer than `results.keep` ago; returns how many.
    pub fn expire(&self) -> usize {
        let mut inner = self.lock();
        let keep = self.keep;
        let expired: Vec<String> = inner
            .results
            .iter()
            .filter(|(_, held)| held.stored_at.elapsed() >= keep)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            if let Some(held) = inner.results.remove(id) {
                inner.resident_bytes -= held.resident_bytes;
            }
        }
        expired.len()
    }

    /// Bytes of rows held in memory, over every result.
    pub fn resident_bytes(&self) -> usize {
        self.lock().resident_bytes
    }

    /// Drops everything (and every spill file, and the directory if it is empty).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.results.clear();
        inner.resident_bytes = 0;
        let _ = std::fs::remove_dir(&self.dir);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes the spill directories (`<parent>/<pid>`) of daemons that are gone (they crashed
/// before they could clean up); a running daemon's directory is left alone.
pub fn remove_leftovers(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
        let gone = pid > 0
            && unsafe { libc::kill(pid, 0) } == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A row's cost in memory: its text and the box around it.
fn row_size(row: &Row) -> usize {
    row.get().len() + std::mem::size_of::<Row>()
}

fn read_spilled(path: &Path, at: u64, skip: usize, take: usize) -> Result<Vec<Row>, StoreError> {
    let error = |source| StoreError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut file = File::open(path).map_err(error)?;
    file.seek(SeekFrom::Start(at)).map_err(error)?;
    let mut rows = Vec::with_capacity(take);
    for line in BufReader::new(file).lines().skip(skip).take(take) {
        let line = line.map_err(error)?;
        let row = serde_json::value::RawValue::from_string(line).map_err(|e| error(e.into()))?;
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn rows(n: usize) -> Vec<Row> {
        (0..n)
            .map(|i| crate::row::from_values(&[serde_json::json!(i), serde_json::json!("x")]))
            .collect()
    }

    fn numbers(page: &Page) -> Vec<u64> {
        page.rows
            .iter()
            .map(|r| crate::row::values(r)[0].as_u64().unwrap())
            .collect()
    }

    fn spill_files(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_small_result_stays_in_memory_and_pages_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let store = ResultStore::new(dir.path().join("r"), 1 << 20, Duration::from_secs(60));
        store.insert("a", Vec::new(), rows(10), true).unwrap();
        let page = store.page("a", 3, 4).unwrap().unwrap();
        assert_eq!(numbers(&page), vec![3, 4, 5, 6]);
        assert_eq!(page.total_rows, 10);
        assert!(page.complete);
        assert!(spill_files(&dir.path().join("r")).is_empty());
        assert!(store.page("a", 10, 5).unwrap().unwrap().rows.is_empty());
        assert!(store.page("unknown", 0, 5).unwrap().is_none());
    }

    #[test]
    fn rows_beyond_the_memory_bound_spill_to_a_private_file_and_page_across_the_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let spill_dir = dir.path().join("r");
        let one = row_size(&rows(1)[0]);
        // Room for about 100 rows in memory; 10 000 rows in all.
        let store = ResultStore::new(spill_dir.clone(), one * 100, Duration::from_secs(60));
        store.insert("big", Vec::new(), rows(10_000), true).unwrap();
        assert!(store.resident_bytes() <= one * 100);
        let files = spill_files(&spill_dir);
        assert_eq!(files.len(), 1);
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "spill file mode");
        let dir_mode = std::fs::metadata(&spill_dir).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700, "spill directory mode");

        let mut all = Vec::new();
        let mut offset = 0;
        loop {
            let page = store.page("big", offset, 333).unwrap().unwrap();
            if page.rows.is_empty() {
                break;
            }
            offset += page.rows.len() as u64;
            all.extend(numbers(&page));
        }
        assert_eq!(all, (0..10_000).collect::<Vec<u64>>());
        // A second result finds the memory bound used up and spills entirely.
        store.insert("second", Vec::new(), rows(5), false).unwrap();
        assert_eq!(spill_files(&spill_dir).len(), 2);
        let page = store.page("second", 1, 2).unwrap().unwrap();
        assert_eq!(numbers(&page), vec![1, 2]);
        assert!(!page.complete);
        store.remove("big");
        store.remove("second");
        assert!(spill_files(&spill_dir).is_empty(), "spill files removed");
        assert_eq!(store.resident_bytes(), 0);
    }

    #[test]
    fn leftovers_of_dead_daemons_are_removed_and_a_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join(std::process::id().to_string());
        // A pid that cannot be running: above the kernel's maximum.
        let dead = dir.path().join("2147483646");
        for d in [&mine, &dead] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join("q-1-1.ndjson"), "[1]\n").unwrap();
        }
        remove_leftovers(dir.path());
        assert!(mine.exists());
        assert!(!dead.exists());
    }

    #[tokio::test(start_paused = true)]
    async fn results_expire_after_keep_with_their_spill_files() {
        let dir = tempfile::tempdir().unwrap();
        let spill_dir = dir.path().join("r");
        let store = ResultStore::new(spill_dir.clone(), 0, Duration::from_secs(600));
        store.insert("a", Vec::new(), rows(3), true).unwrap();
        tokio::time::advance(Duration::from_secs(599)).await;
        assert!(store.holds("a"));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!store.holds("a"));
        assert!(store.page("a", 0, 1).unwrap().is_none());
        assert!(spill_files(&spill_dir).is_empty());
    }
}
