//! What happens to alerts after detection.
//!
//! - [`log`]: the alert log, `<data>/alerts/log/*.jsonl`: every alert stored once
//!   (deduplicated on cluster, rule, auditID and group), fsync'd, in order, with a sequence
//!   number; queried by `kaudit alerts` and `/api/v1/alerts`.
//! - [`throttle`]: at most N notifications per group and window, then a summary.
//! - [`sink`]: JSON webhook, Slack-compatible webhook, syslog, file/stdout.
//! - [`deliver`]: one thread per sink following the log from its own saved cursor, with
//!   retries and backoff, so an unreachable sink only falls behind: it never slows
//!   detection or ingestion, and never loses an alert.

pub mod deliver;
pub mod log;
pub mod query;
pub mod sink;
pub mod throttle;

pub use deliver::{Delivery, SinkStats};
pub use log::{AlertLog, LogReader, StoredAlert};
pub use sink::{Item, SinkConfig, SinkKind};
pub use throttle::{Summary, Throttle, ThrottleConfig};
