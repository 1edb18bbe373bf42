//! The segment of the WAL file being appended to, built while appending: rows are added
//! after each durable append and full pages go to the sealing thread, so sealing is a footer
//! and a rename. If it fails on the way, the WAL file is read back instead.

use super::Store;
use super::append::Incoming;
use super::seal::{Msg, Sealer};
use crate::record::StoredRecord;
use crate::row::Row;
use crate::segment::{self, RowGroupTerms};
use crate::wal;

/// The segment of the WAL file being appended to, built while appending.
pub(super) struct Live {
    pub first: u64,
    builder: segment::Builder,
}

/// Adds one stored event (leaf `leaf`) to a live segment and hands a full page to the sealing
/// thread; returns whether it did (a page ends every few thousand rows). Fails if the sealing
/// thread has stopped.
pub(super) fn live_push(
    live: &mut Live,
    sealer: &Sealer,
    leaf: u64,
    rec: &StoredRecord<'_>,
    row: &Row<'_>,
    first: bool,
) -> std::result::Result<bool, ()> {
    live.builder.push(leaf, rec, row, first);
    let Some((batch, end_group)) = live.builder.take_page() else {
        return Ok(false);
    };
    let page = Msg::Page {
        first: live.first,
        batch,
        end_group,
    };
    sealer.send(page).map(|_| true).map_err(|_| ())
}

impl Store {
    /// Starts building the segment of the current WAL file while appending, if the file is
    /// empty (one this process did not fill from its start is read back when sealed).
    pub(super) fn start_live(&mut self) {
        self.live = None;
        if self.wal_rows != 0 {
            return;
        }
        let first = self.bulk.unwrap_or(self.wal.first);
        let open = Msg::Open {
            first,
            tmp: self
                .layout
                .segments()
                .join(format!("{first:020}-live.parquet.tmp")),
            origin: self.keys.origin.clone(),
            group_rows: self.opts.row_group_rows,
        };
        if self.sealer.send(open).is_ok() {
            self.live = Some(Live {
                first,
                builder: segment::Builder::with_group_rows(self.opts.row_group_rows),
            });
        }
    }

    /// Adds the records just made durable (`written`, from leaf `first_leaf` on) to the
    /// live segment, and hands its full pages to the sealing thread. Returns whether the live
    /// segment holds them (there was one, and it did not fail).
    pub(super) fn feed_live(
        &mut self,
        batches: &[&[Incoming<'_>]],
        written: &[(usize, usize, u8)],
        first_leaf: u64,
    ) -> bool {
        let Some(live) = self.live.as_mut() else {
            return false;
        };
        debug_assert_eq!(live.first + live.builder.total_rows(), first_leaf);
        let mut ok = true;
        for (k, &(bi, ii, flags)) in written.iter().enumerate() {
            let inc = &batches[bi][ii];
            let leaf = first_leaf + k as u64;
            let mut parsed = None;
            let Ok(row) = inc.take_row(&mut parsed) else {
                ok = false;
                break;
            };
            let first = flags & wal::FIRST != 0;
            if live_push(live, &self.sealer, leaf, &inc.record(), &row, first).is_err() {
                ok = false;
                break;
            }
        }
        if !ok {
            // Sealing reads this WAL file back instead.
            let first = live.first;
            self.live = None;
            let _ = self.sealer.send(Msg::Abort { first });
        }
        ok
    }

    /// Ends the live segment of the WAL file starting at `first`: its last page goes to the
    /// sealing thread; returns its row groups' term sets (`None` if there is no live segment).
    pub(super) fn finish_live(&mut self, first: u64) -> Option<Vec<RowGroupTerms>> {
        let mut live = self.live.take()?;
        debug_assert_eq!(live.first, first);
        let (batch, terms) = live.builder.finish();
        if let Some(batch) = batch {
            let page = Msg::Page {
                first,
                batch,
                end_group: true,
            };
            if self.sealer.send(page).is_err() {
                return None;
            }
        }
        Some(terms)
    }
}
