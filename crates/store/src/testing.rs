//! What the store's unit tests share: small numbered events, appended as one batch, and a
//! store of sealed segments of 50 events each.

use crate::{Incoming, Options, Store};
use kaudit_model::Event;
use std::path::Path;

/// Event `i`: audit ID `i` (zero-padded), user `u{i}`, all in the same second.
pub(crate) fn event(i: u64) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{i:08}-0000-0000-0000-000000000000","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{{"username":"u{i}"}},"requestReceivedTimestamp":"2026-01-01T00:00:00.000000Z","stageTimestamp":"2026-01-01T00:00:00.000000Z"}}"#
    )
}

/// Appends events `from..from + n` to `s` in one batch.
pub(crate) fn append(s: &mut Store, from: u64, n: u64) {
    let raws: Vec<String> = (from..from + n).map(event).collect();
    let evs: Vec<Event<'_>> = raws
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    let inc: Vec<Incoming<'_>> = raws
        .iter()
        .zip(&evs)
        .map(|(r, e)| Incoming::new(1, "c", r, e))
        .collect();
    s.append(&inc).unwrap();
}

/// An open store at `dir` that seals every 50 events, holding `batches` sealed batches of 50.
pub(crate) fn sealed_by_50(dir: &Path, batches: u64) -> Store {
    let opts = Options {
        seal_rows: 50,
        ..Options::default()
    };
    let mut s = Store::open(dir, opts).unwrap();
    for i in 0..batches {
        append(&mut s, i * 50, 50);
    }
    s.poll_seals(true).unwrap();
    s
}
