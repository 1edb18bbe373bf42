//! Getting audit events into the store.
//!
//! [`import`] reads files a user names (audit.log lines, EventLists, arrays, single events;
//! plain or gzip), puts rotated `audit.log` sets in the order kube-apiserver wrote them, and
//! appends in batches (one fsync each). Every skipped record is reported with its file and
//! line. The webhook receiver and the tailer (issue 4) will write through the same store API.

pub mod batch;
pub mod import;
pub mod rotation;
pub mod tail;
pub mod webhook;
