//! Splitting a Parquet backfill over machines (`--shard K/N`) and resuming
//! it (`--resume`): the unit of work is one row group; a row group is
//! recorded as finished once every batch read from it was acknowledged.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::{AckHandler, SourceError};
use crate::batch::{AckOutcome, Position};

/// Shard `index` of `count` (0-based): row groups whose ordinal is ≡ index mod count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    /// `K/N` with 0 ≤ K < N.
    fn from_str(s: &str) -> Result<Self, String> {
        let (k, n) = s.split_once('/').ok_or("expected K/N, e.g. 0/4")?;
        let index: usize = k
            .trim()
            .parse()
            .map_err(|_| format!("`{k}` is not a number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("`{n}` is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!("need 0 ≤ K < N, got {index}/{count}"));
        }
        Ok(Shard { index, count })
    }
}

/// How a bounded run is split and resumed.
#[derive(Debug, Clone, Default)]
pub struct Backfill {
    pub shard: Option<Shard>,
    /// Where finished row groups are recorded.
    pub state_file: Option<PathBuf>,
    /// Skip the row groups the state file lists.
    pub resume: bool,
}

impl Backfill {
    pub fn is_default(&self) -> bool {
        self.shard.is_none() && self.state_file.is_none() && !self.resume
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, Hash, Clone)]
pub(crate) struct FinishedRowGroup {
    pub file: PathBuf,
    pub row_group: usize,
}

/// The row groups a previous run finished.
pub(crate) fn finished_row_groups(path: &Path) -> Result<HashSet<FinishedRowGroup>, SourceError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(source) => {
            return Err(SourceError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut done = HashSet::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // A torn last line (crash while appending) is simply not finished.
        if let Ok(entry) = serde_json::from_str::<FinishedRowGroup>(&line) {
            done.insert(entry);
        }
    }
    Ok(done)
}

type RowGroupKey = (Arc<PathBuf>, usize);

/// Counts in-flight batches per row group and records finished ones in the
/// state file, in read order: a row group is recorded only when it and every
/// row group read before it are finished, so a failed batch pins the record
/// where it is (nothing at or after it is recorded).
pub(crate) struct RowGroupTracker {
    outstanding: HashMap<RowGroupKey, usize>,
    fully_read: HashSet<RowGroupKey>,
    /// Row groups not yet recorded, in read order, with "finished".
    unrecorded: VecDeque<(RowGroupKey, bool)>,
    state: File,
    path: PathBuf,
}

impl RowGroupTracker {
    /// Opens the state file: appended to when resuming, started afresh otherwise.
    pub(crate) fn open(path: &Path, resume: bool) -> Result<Self, SourceError> {
        let err = |source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let state = OpenOptions::new()
            .create(true)
            .append(resume)
            .write(true)
            .truncate(!resume)
            .open(path)
            .map_err(err)?;
        Ok(RowGroupTracker {
            outstanding: HashMap::new(),
            fully_read: HashSet::new(),
            unrecorded: VecDeque::new(),
            state,
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn batch_read(&mut self, file: &Arc<PathBuf>, row_group: usize) {
        let key = (file.clone(), row_group);
        self.note_read_order(&key);
        *self.outstanding.entry(key).or_default() += 1;
    }

    fn note_read_order(&mut self, key: &RowGroupKey) {
        if self.unrecorded.back().is_none_or(|(last, _)| last != key) {
            self.unrecorded.push_back((key.clone(), false));
        }
    }

    pub(crate) fn row_group_read(&mut self, file: &Arc<PathBuf>, row_group: usize) {
        let key = (file.clone(), row_group);
        self.note_read_order(&key);
        if self.outstanding.get(&key).copied().unwrap_or(0) == 0 {
            self.finish(&key);
        } else {
            self.fully_read.insert(key);
        }
    }

    fn batch_done(&mut self, file: &Arc<PathBuf>, row_group: usize) {
        let key = (file.clone(), row_group);
        let Some(count) = self.outstanding.get_mut(&key) else {
            return;
        };
        *count -= 1;
        if *count == 0 && self.fully_read.remove(&key) {
            self.finish(&key);
        }
    }

    fn finish(&mut self, key: &RowGroupKey) {
        self.outstanding.remove(key);
        if let Some(entry) = self.unrecorded.iter_mut().find(|(k, _)| k == key) {
            entry.1 = true;
        }
    }

    /// Appends the finished prefix of the read order to the state file.
    fn write_finished(&mut self) -> std::io::Result<()> {
        let mut lines = Vec::new();
        while self
            .unrecorded
            .front()
            .is_some_and(|(_, finished)| *finished)
        {
            let ((file, row_group), _) = self.unrecorded.pop_front().expect("front exists");
            let entry = FinishedRowGroup {
                file: file.to_path_buf(),
                row_group,
            };
            serde_json::to_writer(&mut lines, &entry).expect("paths serialize");
            lines.push(b'\n');
        }
        if lines.is_empty() {
            return Ok(());
        }
        self.state.write_all(&lines)?;
        self.state.sync_data()
    }
}

/// The ack handler of a tracked Parquet run.
pub(crate) struct RowGroupProgress(pub Arc<Mutex<RowGroupTracker>>);

impl AckHandler for RowGroupProgress {
    fn on_outcome(&self, outcome: &AckOutcome) {
        if let (
            true,
            Position::Parquet {
                file, row_group, ..
            },
        ) = (outcome.delivered, &outcome.position)
        {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .batch_done(file, *row_group);
        }
    }

    fn flush(&self, _last: bool) {
        let mut tracker = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = tracker.write_finished() {
            tracing::error!(state = %tracker.path.display(), error = %e, "cannot record finished row groups");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_reject_nonsense() {
        assert_eq!(
            "1/4".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 4 }
        );
        assert!("4/4".parse::<Shard>().is_err());
        assert!("x/2".parse::<Shard>().is_err());
        assert!("3".parse::<Shard>().is_err());
    }

    #[test]
    fn a_row_group_is_finished_only_after_it_was_read_and_every_batch_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s/state.jsonl");
        let file = Arc::new(PathBuf::from("a.parquet"));
        let mut tracker = RowGroupTracker::open(&state, false).unwrap();
        tracker.batch_read(&file, 0);
        tracker.batch_read(&file, 0);
        tracker.batch_done(&file, 0);
        tracker.row_group_read(&file, 0);
        tracker.write_finished().unwrap();
        assert!(
            finished_row_groups(&state).unwrap().is_empty(),
            "one batch is still in flight"
        );
        tracker.batch_done(&file, 0);
        tracker.write_finished().unwrap();
        let done = finished_row_groups(&state).unwrap();
        assert!(done.contains(&FinishedRowGroup {
            file: "a.parquet".into(),
            row_group: 0
        }));
    }

    #[test]
    fn a_row_group_after_an_unfinished_one_is_not_recorded_until_that_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.jsonl");
        let file = Arc::new(PathBuf::from("a.parquet"));
        let mut tracker = RowGroupTracker::open(&state, false).unwrap();
        tracker.batch_read(&file, 0);
        tracker.row_group_read(&file, 0);
        tracker.batch_read(&file, 1);
        tracker.row_group_read(&file, 1);
        tracker.batch_done(&file, 1);
        tracker.write_finished().unwrap();
        assert!(
            finished_row_groups(&state).unwrap().is_empty(),
            "row group 0 is in flight (or failed): 1 must wait"
        );
        tracker.batch_done(&file, 0);
        tracker.write_finished().unwrap();
        let done = finished_row_groups(&state).unwrap();
        assert_eq!(done.len(), 2);
    }
}
