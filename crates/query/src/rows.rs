//! Query results without copying: the matching rows stay in the Arrow arrays they were read
//! into, and are visited in order through borrowed [`RowRef`]s.

use arrow_array::types::Int32Type;
use arrow_array::{
    Array, ArrayRef, BooleanArray, DictionaryArray, Int32Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt64Array,
};
use kaudit_store::col;

/// A string column as the WAL tail holds it (plain) or as a segment is read (dictionary).
#[derive(Clone, Debug)]
pub(crate) enum StrCol {
    Plain(StringArray),
    Dict {
        keys: Int32Array,
        values: StringArray,
    },
}

impl StrCol {
    pub(crate) fn of(b: &RecordBatch, name: &str) -> Result<StrCol, String> {
        let a: &ArrayRef = b
            .column_by_name(name)
            .ok_or_else(|| format!("column {name} missing"))?;
        if let Some(s) = a.as_any().downcast_ref::<StringArray>() {
            return Ok(StrCol::Plain(s.clone()));
        }
        if let Some(d) = a.as_any().downcast_ref::<DictionaryArray<Int32Type>>()
            && let Some(values) = d.values().as_any().downcast_ref::<StringArray>()
        {
            return Ok(StrCol::Dict {
                keys: d.keys().clone(),
                values: values.clone(),
            });
        }
        Err(format!("column {name}: unexpected type {}", a.data_type()))
    }

    /// The value at `i`; null reads as "".
    #[inline]
    pub(crate) fn get(&self, i: usize) -> &str {
        match self {
            StrCol::Plain(a) => {
                if a.is_null(i) {
                    ""
                } else {
                    a.value(i)
                }
            }
            StrCol::Dict { keys, values } => {
                if keys.is_null(i) {
                    return "";
                }
                let k = keys.value(i) as usize;
                if values.is_null(k) {
                    ""
                } else {
                    values.value(k)
                }
            }
        }
    }
}

/// The output columns of one batch of matching rows.
pub(crate) struct Part {
    leaf: UInt64Array,
    time: TimestampMicrosecondArray,
    pub(crate) cluster: StrCol,
    pub(crate) audit_id: StrCol,
    pub(crate) stage: StrCol,
    user: StrCol,
    verb: StrCol,
    resource: StrCol,
    subresource: StrCol,
    namespace: StrCol,
    name: StrCol,
    code: Int32Array,
    source_ip: StrCol,
    user_agent: StrCol,
    request_uri: StrCol,
    first: BooleanArray,
    event: Option<StrCol>,
}

/// The columns a [`Part`] reads.
pub(crate) const PART_COLUMNS: &[&str] = &[
    "leaf",
    "time",
    "cluster",
    "audit_id",
    "stage",
    "user",
    "verb",
    "resource",
    "subresource",
    "namespace",
    "name",
    "code",
    "source_ip",
    "user_agent",
    "request_uri",
    "first",
];

impl Part {
    pub(crate) fn of(b: &RecordBatch, with_event: bool) -> Result<Part, String> {
        let s = |n: &str| StrCol::of(b, n);
        Ok(Part {
            leaf: col::<UInt64Array>(b, "leaf")?.clone(),
            time: col::<TimestampMicrosecondArray>(b, "time")?.clone(),
            cluster: s("cluster")?,
            audit_id: s("audit_id")?,
            stage: s("stage")?,
            user: s("user")?,
            verb: s("verb")?,
            resource: s("resource")?,
            subresource: s("subresource")?,
            namespace: s("namespace")?,
            name: s("name")?,
            code: col::<Int32Array>(b, "code")?.clone(),
            source_ip: s("source_ip")?,
            user_agent: s("user_agent")?,
            request_uri: s("request_uri")?,
            first: col::<BooleanArray>(b, "first")?.clone(),
            event: if with_event { Some(s("event")?) } else { None },
        })
    }

    #[inline]
    fn time(&self, i: usize) -> Option<i64> {
        if self.time.is_null(i) {
            None
        } else {
            Some(self.time.value(i))
        }
    }

    fn row(&self, i: usize) -> RowRef<'_> {
        RowRef {
            leaf: self.leaf.value(i),
            time: self.time(i),
            cluster: self.cluster.get(i),
            audit_id: self.audit_id.get(i),
            stage: self.stage.get(i),
            user: self.user.get(i),
            verb: self.verb.get(i),
            resource: self.resource.get(i),
            subresource: self.subresource.get(i),
            namespace: self.namespace.get(i),
            name: self.name.get(i),
            code: if self.code.is_null(i) {
                None
            } else {
                Some(self.code.value(i))
            },
            source_ip: self.source_ip.get(i),
            user_agent: self.user_agent.get(i),
            request_uri: self.request_uri.get(i),
            first: self.first.value(i),
            event: self.event.as_ref().map(|e| e.get(i)),
        }
    }
}

/// One matching event, borrowed from the result.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct RowRef<'a> {
    pub leaf: u64,
    pub time: Option<i64>,
    pub cluster: &'a str,
    pub audit_id: &'a str,
    pub stage: &'a str,
    pub user: &'a str,
    pub verb: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub code: Option<i32>,
    pub source_ip: &'a str,
    pub user_agent: &'a str,
    pub request_uri: &'a str,
    /// The first stored stage of its request.
    pub first: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<&'a str>,
}

/// One matching event, owned.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Row {
    pub leaf: u64,
    pub time: Option<i64>,
    pub cluster: String,
    pub audit_id: String,
    pub stage: String,
    pub user: String,
    pub verb: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub code: Option<i32>,
    pub source_ip: String,
    pub user_agent: String,
    pub request_uri: String,
    pub first: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

impl RowRef<'_> {
    pub fn to_row(&self) -> Row {
        Row {
            leaf: self.leaf,
            time: self.time,
            cluster: self.cluster.into(),
            audit_id: self.audit_id.into(),
            stage: self.stage.into(),
            user: self.user.into(),
            verb: self.verb.into(),
            resource: self.resource.into(),
            subresource: self.subresource.into(),
            namespace: self.namespace.into(),
            name: self.name.into(),
            code: self.code,
            source_ip: self.source_ip.into(),
            user_agent: self.user_agent.into(),
            request_uri: self.request_uri.into(),
            first: self.first,
            event: self.event.map(Into::into),
        }
    }
}

/// The matching rows of a query, in order (time, then leaf).
#[derive(Default)]
pub struct Rows {
    pub(crate) parts: Vec<Part>,
    /// (part, row) in output order.
    pub(crate) order: Vec<(u32, u32)>,
    /// How many requests (or events, with all stages) matched, before any limit.
    pub(crate) total: usize,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// How many matched in all (the rows here may be only the most recent of them).
    pub fn total(&self) -> usize {
        self.total
    }

    /// The `i`th row.
    pub fn get(&self, i: usize) -> RowRef<'_> {
        let (p, r) = self.order[i];
        self.parts[p as usize].row(r as usize)
    }

    /// The rows in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = RowRef<'_>> + ExactSizeIterator {
        self.order
            .iter()
            .map(|&(p, r)| self.parts[p as usize].row(r as usize))
    }

    /// Owned copies of all rows.
    pub fn to_vec(&self) -> Vec<Row> {
        self.iter().map(|r| r.to_row()).collect()
    }
}

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
