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
//! ([`record`]); [`verify`] recomputes the tree from the data and checks every checkpoint.
//! The format is documented in `docs/store-format.md`.

pub mod dedup;
pub mod follow;
pub mod manifest;
pub mod merkle;
pub mod note;
pub mod proof;
pub mod record;
pub mod row;
pub mod segment;
mod store;
pub mod verify;
pub mod wal;

pub use row::{Row, RowOf, Rows};
pub use store::{Appended, CheckpointLine, Incoming, Layout, Options, Recovery, Store, now_micros};
