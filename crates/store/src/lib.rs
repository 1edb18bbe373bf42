//! kaudit's data directory: the embedded, tamper-evident store.
//!
//! ```text
//! kaudit-data/
//!   keys/          signing.key (PKCS#8, 0600), signing.pub (SPKI PEM), origin
//!   wal/           <first leaf>.wal: framed, checksummed records, fsync'd per batch
//!   segments/      <first>-<last>.parquet: sealed, immutable, standard Parquet
//!   manifest.json  the segment list and tree state at the seal boundary (an index)
//!   checkpoints.jsonl  signed tree heads (C2SP checkpoint notes), one per line
//!   retention.jsonl    signed records of what retention removed
//! ```
//! Every stored event is a leaf of an RFC 6962 Merkle tree over its exact stored bytes
//! ([`StoredRecord`]); [`verify`] recomputes the tree from the data and checks every checkpoint.
//! The format is documented in `docs/store-format.md`; the files are this crate's business.
//!
//! Writing goes through [`Store`] (one process at a time); reading, by anyone, through a
//! [`Snapshot`]: the sealed segments with their metadata, then the WAL tail, consistent even
//! while a writer seals or applies retention. [`follow::Follower`], [`verify`] and
//! [`proof`] read through it too.

mod batch;
mod dedup;
mod error;
pub mod follow;
mod layout;
mod loader;
mod manifest;
pub mod merkle;
pub mod note;
mod pread;
pub mod proof;
mod record;
mod row;
mod segment;
mod snapshot;
mod store;
#[cfg(test)]
mod testing;
pub mod verify;
mod wal;

pub use batch::Batch;
pub use error::{Error, Result};
pub use kaudit_model::sink::Appended;
pub use loader::Loader;
pub use manifest::SegmentMeta;
pub use record::{StoredRecord, max_event};
pub use segment::{RowGroupTerms, col};
pub use snapshot::{Records, Snapshot};
pub use store::{Incoming, Options, Recovery, Store};
pub use wal::MAX_RECORD;
