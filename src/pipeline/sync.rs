//! `run --sync`: after a run that read its whole source without a failure,
//! delete the documents the sinks hold that the source no longer has
//! (LangChain's `full` cleanup), guarded against deleting by mistake.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use super::{NodeError, PipelineError};
use crate::sink::DocumentStore;

/// The largest share of held documents `--sync` deletes without `--force`.
pub const DEFAULT_MAX_DELETE: f64 = 0.1;

/// What a sync needs: the ids the source gave, and the sinks' documents.
pub(super) struct SyncPlan {
    pub seen: Arc<Mutex<HashSet<String>>>,
    pub stores: Vec<Box<dyn DocumentStore>>,
    /// Delete more than this share of the held documents only with `force`.
    pub max_delete: f64,
    pub force: bool,
}

fn refused(message: String) -> PipelineError {
    PipelineError::Run(NodeError::Usage(format!("--sync: {message}")))
}

impl SyncPlan {
    /// Deletes, from every sink, the documents the source did not give;
    /// returns how many documents that was (counted in the first sink).
    /// Refuses after a run that dead-lettered records (the source was not
    /// read in full) and when the share to delete is over `max_delete`.
    pub(super) fn delete_vanished(&self, dead_lettered: u64) -> Result<u64, PipelineError> {
        if dead_lettered > 0 {
            return Err(refused(format!(
                "nothing deleted: {dead_lettered} record(s) were dead-lettered, so the source was not read in full"
            )));
        }
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let mut deleted = None;
        for store in &self.stores {
            let held = store.documents().map_err(PipelineError::run)?;
            let mut vanished: Vec<String> = held.difference(&seen).cloned().collect();
            vanished.sort();
            let share = vanished.len() as f64 / held.len().max(1) as f64;
            if share > self.max_delete && !self.force {
                return Err(refused(format!(
                    "nothing deleted: {} of {} documents are not in the source ({:.0} %, more than --sync-max-delete {:.0} %); pass --force to delete them",
                    vanished.len(),
                    held.len(),
                    share * 100.0,
                    self.max_delete * 100.0
                )));
            }
            store.delete(&vanished).map_err(PipelineError::run)?;
            deleted.get_or_insert(vanished.len() as u64);
        }
        Ok(deleted.unwrap_or(0))
    }
}
