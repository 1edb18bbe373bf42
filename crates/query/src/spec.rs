//! What a query asks for ([`Query`]) and what running it read ([`Scanned`]).

use crate::filter::{Field, Filter};

/// What to fetch.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// Rows matching any of these (each a conjunction of terms); none: every row.
    pub filters: Vec<Filter>,
    /// Every stage event, not one per request.
    pub stages: bool,
    /// Only this cluster.
    pub cluster: Option<String>,
    /// Also fetch the stored event JSON.
    pub with_event: bool,
    /// Only the most recent this many requests are returned (all are counted).
    pub limit: Option<usize>,
}

impl Query {
    /// A query for one filter.
    pub fn new(filter: Filter) -> Query {
        Query {
            filters: vec![filter],
            ..Default::default()
        }
    }
}

/// Statistics of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scanned {
    pub segments: usize,
    pub row_groups_read: usize,
    pub row_groups_skipped: usize,
    /// Rows whose filter columns were evaluated.
    pub rows_read: u64,
    /// Rows that matched (before one-per-request).
    pub rows_matched: u64,
    /// Matching rows whose audit ID had to be read to tell requests apart.
    pub ids_read: u64,
    pub wal_rows: u64,
    /// Row groups answered from what was counted when they were sealed, without reading them.
    pub groups_counted: usize,
    pub threads: usize,
}

/// Whether the filter only looks at what is the same in every stage event of a request (so
/// the request's first stored stage decides for all of it).
pub fn request_invariant(f: &Filter) -> bool {
    f.terms.iter().all(|t| {
        !matches!(
            t.field,
            Field::Code | Field::Stage | Field::Decision | Field::Reason
        )
    })
}
