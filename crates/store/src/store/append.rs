//! Appending: a batch (or a group of batches) is deduplicated, framed into the WAL with one
//! write and one fsync, hashed into the tree and added to the live segment; or, in a bulk
//! load, one event at a time straight into the segment being built.

use kaudit_model::sink::Appended;
use kaudit_model::{Event, Stage};

use super::Store;
use super::live::live_push;
use crate::dedup::stage_bit;
use crate::error::{Error, Result};
use crate::merkle::{leaf_hash, record_hash};
use crate::record::{MAX_CLUSTER, StoredRecord};
use crate::row::{Row, RowOf};
use crate::wal;

/// Why a bulk load cannot go on after its segment failed.
const BULK_LOST: &str = "the segment being built without the write-ahead log failed: the \
                         events loaded since the last sealed segment are not stored; load them \
                         again";

/// Why an event cannot be stored at all: an over-long cluster name or event.
fn refusal(inc: &Incoming<'_>) -> Option<Error> {
    if inc.cluster.len() > MAX_CLUSTER {
        return Some(Error::Refused(format!(
            "cluster name longer than {MAX_CLUSTER} bytes"
        )));
    }
    let len = inc.record().encoded_len();
    (len > wal::MAX_RECORD).then(|| {
        Error::Refused(format!(
            "event {:?} is {len} bytes, above the {} byte limit",
            inc.audit_id,
            wal::MAX_RECORD
        ))
    })
}

/// One event to store.
pub struct Incoming<'a> {
    /// When it was received (microseconds since the epoch).
    pub received: i64,
    pub cluster: &'a str,
    /// The event's JSON exactly as received.
    pub raw: &'a str,
    /// Its `auditID`, `stage` and `requestReceivedTimestamp` (for deduplication).
    pub audit_id: &'a str,
    pub stage: Option<Stage>,
    pub time: Option<i64>,
    /// Its segment columns, taken from the parsed event (without, the store parses `raw`
    /// again to get them).
    pub row: Option<RowOf<'a>>,
}

impl<'a> Incoming<'a> {
    /// What the store keeps of it (a leaf's content).
    pub(super) fn record(&self) -> StoredRecord<'a> {
        StoredRecord {
            received: self.received,
            cluster: self.cluster,
            event: self.raw,
        }
    }

    /// Its row: the one it carries, or parsed from `raw` into `slot`.
    pub(super) fn take_row<'s>(
        &'s self,
        slot: &'s mut Option<Event<'a>>,
    ) -> std::result::Result<Row<'s>, serde_json::Error> {
        match self.row {
            Some(r) => Ok(r.get()),
            None => Ok(Row::from_event(
                slot.insert(serde_json::from_str(self.raw)?),
            )),
        }
    }

    /// The incoming form of a parsed event.
    pub fn new(received: i64, cluster: &'a str, raw: &'a str, e: &'a Event<'a>) -> Incoming<'a> {
        Incoming {
            received,
            cluster,
            raw,
            audit_id: e.audit_id.as_str(),
            stage: e.stage,
            time: e.request_received_timestamp.map(|t| t.micros()),
            row: Some(RowOf::Event(e)),
        }
    }
}

impl Store {
    /// Stores a batch durably: one write and one fsync for the whole batch. Events already
    /// stored (same cluster, auditID, request time and stage) are skipped. On error nothing
    /// of the batch is kept.
    pub fn append(&mut self, batch: &[Incoming<'_>]) -> Result<Appended> {
        self.append_group(&[batch])
            .pop()
            .expect("one result per batch")
    }

    /// Stores several batches with one write and one fsync (group commit), in order. Each
    /// batch gets its own result: one refused (an over-long cluster name or event) keeps
    /// nothing of itself and does not affect the others; a failed write fails them all,
    /// keeping nothing. Events repeated across the batches are stored once.
    pub fn append_group(&mut self, batches: &[&[Incoming<'_>]]) -> Vec<Result<Appended>> {
        let bulk = self.bulk.is_some();
        if bulk && let Some(e) = self.broken.as_ref() {
            return batches.iter().map(|_| Err(e.clone())).collect();
        }
        let mut frames = std::mem::take(&mut self.scratch);
        frames.clear();
        let mut results = Vec::with_capacity(batches.len());
        let mut leaves = Vec::new();
        let mut undo: Vec<(u64, u8)> = Vec::new();
        // (batch, event, flags) of each record written, in leaf order.
        let mut written: Vec<(usize, usize, u8)> = Vec::new();
        for (bi, batch) in batches.iter().enumerate() {
            let marks = (frames.len(), leaves.len(), undo.len(), written.len());
            let mut out = Appended::default();
            let mut failed = None;
            for (ii, inc) in batch.iter().enumerate() {
                if let Some(e) = refusal(inc) {
                    failed = Some(e);
                    break;
                }
                let mut flags = wal::FIRST;
                match self.seen(inc) {
                    Ok(None) => {}
                    Ok(Some((key, bit, bits))) => {
                        if bits & bit != 0 {
                            out.duplicates += 1;
                            continue;
                        }
                        if bits != 0 {
                            flags = 0;
                        }
                        undo.push((key, self.dedup.current(key)));
                        self.dedup.note(key, bit);
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
                let rec = inc.record();
                if bulk {
                    leaves.push(record_hash(&rec));
                } else {
                    // Encoded straight into its frame: the record is not copied again.
                    let start = wal::begin_frame(&mut frames);
                    rec.encode(&mut frames);
                    leaves.push(leaf_hash(wal::frame_payload(&frames, start)));
                    wal::end_frame(flags, &mut frames, start);
                }
                written.push((bi, ii, flags));
                out.stored += 1;
            }
            match failed {
                None => results.push(Ok(out)),
                Some(e) => {
                    frames.truncate(marks.0);
                    leaves.truncate(marks.1);
                    self.dedup.undo(&undo[marks.2..]);
                    undo.truncate(marks.2);
                    written.truncate(marks.3);
                    results.push(Err(e));
                }
            }
        }
        if !leaves.is_empty()
            && !bulk
            && let Err(e) = self.wal.append_durable(&frames)
        {
            self.dedup.undo(&undo);
            self.scratch = frames;
            let e = Error::io(&self.wal.path, e);
            return results
                .into_iter()
                .map(|r| r.and_then(|_| Err(e.clone())))
                .collect();
        }
        self.scratch = frames;
        let first_leaf = self.frontier.size();
        self.wal_rows += leaves.len() as u64;
        for l in leaves {
            self.frontier.push(l);
        }
        if !self.feed_live(batches, &written, first_leaf) && bulk {
            // The leaves are counted but their segment is gone: nothing more can be stored
            // in this session (what was sealed stays; loading again adds the rest).
            let e = Error::BulkLost(BULK_LOST.to_string());
            self.broken = Some(e.clone());
            return results
                .into_iter()
                .map(|r| r.and_then(|_| Err(e.clone())))
                .collect();
        }
        // What follows is housekeeping: the batches are durable whatever happens to it, so a
        // failure is kept (see `housekeeping_error`), not returned.
        let mut housekeeping = Ok(());
        // (In bulk, checkpoints follow seals instead: see `poll_seals`.)
        if !bulk && self.last_checkpoint.1.elapsed() >= self.opts.checkpoint_every {
            housekeeping = self.checkpoint();
        }
        if housekeeping.is_ok() && self.wal_rows >= self.opts.seal_rows {
            housekeeping = self.rotate();
        }
        self.housekeeping_error = housekeeping.err();
        let _ = self.poll_seals(false);
        results
    }

    /// Switches to loading in bulk, for input that is kept elsewhere and can be loaded again
    /// (the files `kaudit import` reads): appends then skip the write-ahead log (its write,
    /// checksum and fsync) and go straight into the segment being built. An event is durable
    /// once its segment is sealed (every `seal_rows` events, and by [`Store::seal`] and
    /// [`Store::close`]), not when its append returns: a crash loses the unsealed ones and
    /// never a sealed one, and loading the same input again adds exactly those
    /// (deduplication skips the rest). Checkpoints are signed over sealed events only, so
    /// `kaudit verify` holds at every moment. What the WAL holds is sealed first.
    pub fn begin_bulk(&mut self) -> Result<()> {
        if self.bulk.is_some() {
            return Ok(());
        }
        self.seal()?;
        if self.live.is_none() {
            self.start_live();
        }
        match &self.live {
            Some(l) if l.first == self.frontier.size() && self.wal_rows == 0 => {}
            _ => return Err(Error::SealerStopped),
        }
        self.bulk = Some(self.frontier.size());
        Ok(())
    }

    /// Loads one event in bulk (after [`Store::begin_bulk`]): deduplicated, hashed and added
    /// to the segment being built at once, with none of a batch's bookkeeping. Returns whether
    /// it was stored (`false`: a duplicate). After an error nothing more can be loaded in
    /// this session (see [`Store::begin_bulk`]), except for a refused event (an over-long
    /// cluster name or event), which leaves the store as it was.
    pub fn push_bulk(&mut self, inc: &Incoming<'_>) -> Result<bool> {
        if self.bulk.is_none() {
            return Err(Error::Invalid("not loading in bulk".into()));
        }
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        if let Some(e) = refusal(inc) {
            return Err(e);
        }
        // Its row, before anything changes: an event without one that does not parse is
        // refused like an over-long one.
        let mut parsed = None;
        let row = inc.take_row(&mut parsed).map_err(|e| {
            Error::Refused(format!(
                "event {:?} is not an audit event: {e}",
                inc.audit_id
            ))
        })?;
        let mut first = true;
        if let Some((key, bit, bits)) = self.seen(inc)? {
            if bits & bit != 0 {
                return Ok(false);
            }
            first = bits == 0;
            self.dedup.note(key, bit);
        }
        let rec = inc.record();
        let leaf = self.frontier.size();
        self.frontier.push(record_hash(&rec));
        self.wal_rows += 1;
        let sent = match self.live.as_mut() {
            Some(live) => live_push(live, &self.sealer, leaf, &rec, &row, first),
            None => Err(()),
        };
        match sent {
            Ok(page) => {
                if self.wal_rows >= self.opts.seal_rows {
                    self.housekeeping_error = self.rotate().err();
                    let _ = self.poll_seals(false);
                } else if page {
                    let _ = self.poll_seals(false);
                }
            }
            Err(()) => {
                let e = Error::BulkLost(BULK_LOST.to_string());
                self.broken = Some(e.clone());
                return Err(e);
            }
        }
        Ok(true)
    }

    /// The dedup state of an event with an audit ID: (key, its stage's bit, the stages stored).
    fn seen(&mut self, inc: &Incoming<'_>) -> Result<Option<(u64, u8, u8)>> {
        if inc.audit_id.is_empty() {
            return Ok(None);
        }
        let key = self.dedup.key(inc.cluster, inc.audit_id, inc.time);
        let bit = stage_bit(inc.stage);
        let bits = self.dedup.lookup(key, inc.time, bit, &self.segments_dir)?;
        Ok(Some((key, bit, bits)))
    }
}
