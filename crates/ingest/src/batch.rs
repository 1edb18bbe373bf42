//! An owned batch of events on its way to the store: the raw JSON of each event, kept in one
//! arena, with what deduplication needs and the segment columns taken from the parsed event
//! (so the store does not parse it again). Owned, so it can cross to the thread that appends.

use kaudit_model::{Event, Stage};
use kaudit_store::{Incoming, Row, RowOf, Rows};

/// One event's place in the arena and its dedup fields.
#[derive(Clone, Copy, Debug)]
struct Item {
    raw: (usize, usize),
    audit_id: (usize, usize),
    stage: Option<Stage>,
    time: Option<i64>,
    /// Its row in `rows`, if it fitted.
    row: Option<u32>,
}

/// Events for one cluster, received at one moment.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub cluster: String,
    /// When they were received (microseconds since the epoch).
    pub received: i64,
    arena: String,
    items: Vec<Item>,
    rows: Rows,
}

impl Batch {
    pub fn new(cluster: &str, received: i64) -> Batch {
        Batch {
            cluster: cluster.to_string(),
            received,
            ..Default::default()
        }
    }

    /// Adds an event: `raw` is its JSON exactly as received, `e` the same parsed.
    pub fn push(&mut self, raw: &str, e: &Event<'_>) {
        let a = self.arena.len();
        self.arena.push_str(raw);
        let b = self.arena.len();
        self.arena.push_str(e.audit_id.as_str());
        let row = self.rows.push(&Row::from_event(e));
        self.items.push(Item {
            row,
            raw: (a, b),
            audit_id: (b, self.arena.len()),
            stage: e.stage,
            time: e.request_received_timestamp.map(|t| t.micros()),
        });
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Bytes of event JSON held.
    pub fn bytes(&self) -> usize {
        self.arena.len()
    }

    pub fn clear(&mut self) {
        self.arena.clear();
        self.items.clear();
        self.rows.clear();
    }

    /// The events as the store takes them.
    pub fn incoming(&self) -> Vec<Incoming<'_>> {
        self.items
            .iter()
            .map(|it| Incoming {
                received: self.received,
                cluster: &self.cluster,
                raw: &self.arena[it.raw.0..it.raw.1],
                audit_id: &self.arena[it.audit_id.0..it.audit_id.1],
                stage: it.stage,
                time: it.time,
                row: it.row.map(|i| RowOf::Rows(&self.rows, i)),
            })
            .collect()
    }
}
