//! Where decoded events go: the boundary between what reads events (`kaudit-ingest`: files and
//! exports, the audit.log tailer) and what stores them (the store itself, or the server's
//! writer thread in front of it). A source pushes each event with its exact bytes, then
//! commits; the sink says when what it holds is durable, and what it stored.

use crate::Event;

/// What storing events did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Appended {
    pub stored: u64,
    /// Skipped: the same (cluster, auditID, request time, stage) is already stored.
    pub duplicates: u64,
}

impl std::ops::AddAssign for Appended {
    fn add_assign(&mut self, o: Appended) {
        self.stored += o.stored;
        self.duplicates += o.duplicates;
    }
}

/// A destination for decoded events (see the module documentation).
pub trait Sink {
    /// The largest event (its JSON, in bytes) the sink takes; a source skips and reports
    /// larger ones.
    fn max_event(&self) -> usize;

    /// Says, before the first push, that the input can be read again after a crash (regular
    /// files, not a pipe): the sink may then make events durable in larger units (the store
    /// loads in bulk, without its write-ahead log), since reading the same input again adds
    /// exactly what a crash lost.
    fn rereadable(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// Adds one event: `raw` is its JSON exactly as received, `event` the same parsed. An
    /// error means it was refused or storing failed; what was committed before stays.
    fn push(&mut self, raw: &str, event: &Event<'_>) -> Result<(), String>;

    /// Events pushed since the last commit.
    fn pending(&self) -> usize;

    /// Makes what was pushed since the last commit durable and returns what was stored (after
    /// [`Sink::rereadable`]: what was handed on, durable once the sink's larger unit is).
    fn commit(&mut self) -> Result<Appended, String>;
}
