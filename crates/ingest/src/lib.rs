//! Getting audit events in: the sources, each writing decoded events into a
//! [`kaudit_model::sink::Sink`] (the store, or the server's writer in front of it), never
//! committing a position before the sink says what it holds is durable.
//!
//! - [`input`]: the one reader of what users name (files, plain or gzip, or `-` for standard
//!   input; audit logs or cloud exports);
//! - [`import`]: files into a sink, rotated `audit.log` sets in the order kube-apiserver wrote
//!   them ([`rotation`]), every skipped record reported with its file and line;
//! - [`tail`]: follows a live `audit.log` through rotation, copy-truncate and restarts;
//! - [`webhook`]: the audit webhook's body protocol (no HTTP).
//!
//! Nothing here depends on the store: no Arrow, no Parquet.

pub mod import;
pub mod input;
pub mod rotation;
pub mod tail;
pub mod webhook;
