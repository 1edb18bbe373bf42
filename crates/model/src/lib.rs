//! The Kubernetes audit event model.
//!
//! kube-apiserver writes one [`Event`] per request stage, either as a line of `audit.log` or as an
//! item of an `EventList` POSTed to a webhook. This crate owns:
//!
//! - the types: [`Event`], [`UserInfo`], [`ObjectReference`], [`ResponseStatus`], [`Level`],
//!   [`Stage`], [`MicroTime`]; strings borrow from the input where they can ([`Text`]), and
//!   request/response bodies stay raw JSON, so decoding is one pass with few allocations;
//! - decoding of whatever shape a user hands us ([`decode`]): audit.log JSON lines, an
//!   `EventList`, a JSON array, a single (possibly pretty-printed) event, or a mix; the
//!   original bytes stay beside each parsed event, and every failure names its line and why,
//!   without stopping the rest of the file;
//! - encoding byte-for-byte as kube-apiserver does ([`encode`]);
//! - the managed clouds' export shapes (EKS CloudWatch, GKE Cloud Logging, AKS diagnostic
//!   records), each embedded event handed on as a plain audit event ([`cloud`]).
//!
//! It does no IO beyond the readers it is given, with one exception: [`durable`], the one way
//! every crate replaces a small state file (it sits here because this crate is lowest in the
//! stack). [`units`] parses durations, sizes and times the same way for every command and
//! configuration file, and holds the clock ([`now_micros`]).
//!
//! ```
//! use kaudit_model::{decode, Level};
//! let log = br#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"list","user":{"username":"jane"},"requestReceivedTimestamp":"2026-01-02T03:04:05.123456Z","stageTimestamp":"2026-01-02T03:04:05.130001Z"}
//! {"not":"an event"}
//! "#;
//! let mut levels = vec![];
//! let stats = decode::decode_slice(log, |item| {
//!     if let Ok(rec) = item { levels.push(rec.event.level) }
//!     std::ops::ControlFlow::Continue(())
//! });
//! assert_eq!(levels, vec![Some(Level::Metadata)]);
//! assert_eq!((stats.events, stats.skipped()), (1, 1));
//! ```

mod event;
pub mod text;
mod time;

pub mod cloud;
pub mod decode;
pub mod durable;
pub mod encode;
pub mod net;
pub mod sink;
pub mod units;

pub use event::{
    Annotations, Event, Extra, Level, ObjectReference, ResponseStatus, Stage, StageSet, UserInfo,
};
pub use text::Text;
pub use time::MicroTime;
pub use units::now_micros;
