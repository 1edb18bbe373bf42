//! The stored record: what a leaf of the Merkle tree covers, byte for byte.
//!
//! ```text
//! u8  version (1)
//! i64 received, microseconds since the Unix epoch, little-endian
//! u16 cluster length, little-endian, then the cluster name (UTF-8)
//! the event's JSON bytes exactly as received, to the end
//! ```

/// One event as the store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord<'a> {
    /// When kaudit received it (microseconds since the epoch).
    pub received: i64,
    /// The cluster it came from.
    pub cluster: &'a str,
    /// The event's JSON, exactly as received.
    pub event: &'a str,
}

const VERSION: u8 = 1;
const HEADER: usize = 1 + 8 + 2;

impl<'a> StoredRecord<'a> {
    /// The canonical bytes (the leaf's content).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(HEADER + self.cluster.len() + self.event.len());
        out.push(VERSION);
        out.extend_from_slice(&self.received.to_le_bytes());
        out.extend_from_slice(&(self.cluster.len() as u16).to_le_bytes());
        out.extend_from_slice(self.cluster.as_bytes());
        out.extend_from_slice(self.event.as_bytes());
    }

    /// The length of the canonical bytes.
    pub fn encoded_len(&self) -> usize {
        HEADER + self.cluster.len() + self.event.len()
    }

    /// The canonical bytes, as pieces (header, cluster, event), for hashing them without a
    /// copy.
    pub(crate) fn pieces(&self) -> ([u8; HEADER], &[u8], &[u8]) {
        let mut h = [0u8; HEADER];
        h[0] = VERSION;
        h[1..9].copy_from_slice(&self.received.to_le_bytes());
        h[9..11].copy_from_slice(&(self.cluster.len() as u16).to_le_bytes());
        (h, self.cluster.as_bytes(), self.event.as_bytes())
    }

    /// Reads the canonical bytes back.
    pub fn decode(b: &'a [u8]) -> Result<StoredRecord<'a>, String> {
        if b.len() < HEADER {
            return Err(format!(
                "record of {} bytes is shorter than its header",
                b.len()
            ));
        }
        if b[0] != VERSION {
            return Err(format!("record version {} is not 1", b[0]));
        }
        let received = i64::from_le_bytes(b[1..9].try_into().unwrap());
        let cl = u16::from_le_bytes(b[9..11].try_into().unwrap()) as usize;
        if b.len() < HEADER + cl {
            return Err("record ends inside its cluster name".into());
        }
        let cluster = std::str::from_utf8(&b[HEADER..HEADER + cl])
            .map_err(|_| "cluster name is not UTF-8".to_string())?;
        let event =
            std::str::from_utf8(&b[HEADER + cl..]).map_err(|_| "event is not UTF-8".to_string())?;
        Ok(StoredRecord {
            received,
            cluster,
            event,
        })
    }
}

/// The longest cluster name the record format holds.
pub const MAX_CLUSTER: usize = u16::MAX as usize;

/// The largest event (its JSON, in bytes) the store takes from `cluster`: a stored record is
/// at most [`crate::MAX_RECORD`] bytes.
pub fn max_event(cluster: &str) -> usize {
    crate::MAX_RECORD.saturating_sub(HEADER + cluster.len())
}
