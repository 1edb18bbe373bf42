//! The deduplication index: which stages of which (cluster, auditID) are stored.
//!
//! Memory is bounded, the answer exact:
//! - **hot**: one exact map per WAL file and per recently sealed segment, up to a row budget
//!   (`Options::dedup_hot_rows`). Everything not yet sealed is always hot.
//! - **cold**: older sealed row groups. All stages of a request share its
//!   `requestReceivedTimestamp`, and every row group records the minutes its request times
//!   fall in (`RowGroupTerms::minutes`). So a lookup consults only the cold row groups that
//!   hold its minute (found through an index by minute, not by scanning them all: a store
//!   holds thousands), loading their keys from the segment on demand into a small LRU cache.
//!   Live traffic (request times near now) rarely touches cold data; long-running requests
//!   (watches, exec) completing late and re-imported old files do, at one row-group read per
//!   cache miss.
//!
//! Nothing here is evidence or persisted: it is rebuilt from the WAL and segments on open.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, StringArray, TimestampMicrosecondArray};
use kaudit_model::Stage;

use crate::error::{Error, Result};
use crate::manifest::SegmentMeta;
use crate::segment::{self, RowGroupTerms, minute};

type Map = HashMap<u64, u8, foldhash::fast::FixedState>;

/// Row groups' keys held in the cold cache at most.
const COLD_CACHE: usize = 16;

/// The bit of a stage in a request's stage set.
pub fn stage_bit(s: Option<Stage>) -> u8 {
    match s {
        Some(Stage::RequestReceived) => 1,
        Some(Stage::ResponseStarted) => 2,
        Some(Stage::ResponseComplete) => 4,
        Some(Stage::Panic) => 8,
        None => 16,
    }
}

/// The key of a request (see [`Dedup::key`]) under the hasher `state`.
pub fn request_key(
    state: &impl BuildHasher,
    cluster: &str,
    audit_id: &str,
    time: Option<i64>,
) -> u64 {
    let mut h = state.build_hasher();
    h.write(cluster.as_bytes());
    h.write_u8(0xff);
    h.write(audit_id.as_bytes());
    h.write_i64(time.unwrap_or(i64::MIN));
    h.finish()
}

/// Whether a row group can hold requests received at `time` (`None`: no request time).
pub fn group_may_hold(g: &RowGroupTerms, time: Option<i64>) -> bool {
    match time {
        None => g.untimed || g.min_time.is_none(),
        Some(t) => match &g.minutes {
            Some(ranges) => {
                let m = minute(t);
                ranges.iter().any(|&(a, b)| a <= m && m <= b)
            }
            None => g.min_time.is_some_and(|lo| lo <= t) && g.max_time.is_some_and(|hi| t <= hi),
        },
    }
}

struct Gen {
    /// First leaf of the WAL file or segment.
    first_leaf: u64,
    rows: u64,
    map: Map,
}

/// A Bloom filter over the request keys of one segment that turned cold (keys are already
/// uniform 64-bit hashes, so the probes come from the key by double hashing).
struct Bloom {
    first_leaf: u64,
    bits: Vec<u64>,
}

/// Bits per key and probes: about 0.05% false positives.
const BLOOM_BITS_PER_KEY: usize = 16;
const BLOOM_PROBES: u64 = 11;
/// Memory for Bloom filters of cold segments (2 bytes per request), newest kept.
/// They let a lookup skip cold row groups whose request-time minutes match but which cannot
/// hold the key: at high rates the hot window is shorter than a minute.
const BLOOM_BUDGET: usize = 32 << 20;

impl Bloom {
    fn new(first_leaf: u64, keys: impl ExactSizeIterator<Item = u64>) -> Bloom {
        let words = (keys.len() * BLOOM_BITS_PER_KEY).div_ceil(64).max(1);
        let mut b = Bloom {
            first_leaf,
            bits: vec![0; words],
        };
        for k in keys {
            for i in b.probes(k) {
                b.bits[i / 64] |= 1 << (i % 64);
            }
        }
        b
    }

    fn probes(&self, key: u64) -> impl Iterator<Item = usize> + use<> {
        let n = self.bits.len() as u64 * 64;
        let (h1, h2) = (key, key.rotate_left(29) | 1);
        (0..BLOOM_PROBES).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % n) as usize)
    }

    fn may_contain(&self, key: u64) -> bool {
        self.probes(key)
            .all(|i| self.bits[i / 64] & (1 << (i % 64)) != 0)
    }
}

struct ColdGroup {
    file: PathBuf,
    first_leaf: u64,
    rg: usize,
    /// The eviction that made it cold (0: cold already when the store was opened).
    evicted: u32,
    /// Its request times, as far as [`group_may_hold`] needs them (not its term sets).
    times: RowGroupTerms,
}

/// Minutes a cold row group is indexed under at most; one with more (traffic spread thinly
/// over days) is checked against its time range at every lookup instead.
const MAX_INDEXED_MINUTES: i64 = 1440;

/// The cold row groups that can hold a request time, without scanning them all: positions in
/// `Dedup::cold`, ascending in every list.
#[derive(Default)]
struct ColdIndex {
    by_minute: HashMap<i64, Vec<u32>, foldhash::fast::FixedState>,
    /// Groups whose minutes are not listed (or too many): their time range decides.
    wide: Vec<u32>,
    /// Groups that can hold requests without a request time.
    untimed: Vec<u32>,
}

impl ColdIndex {
    fn add(&mut self, i: u32, g: &RowGroupTerms) {
        if g.untimed || g.min_time.is_none() {
            self.untimed.push(i);
        }
        // Minutes counted with care: the manifest is not signed, and a damaged range must
        // not make opening the store loop or overflow.
        let minutes = g.minutes.as_ref().and_then(|r| {
            r.iter().try_fold(0i64, |n, &(a, b)| {
                (a <= b).then(|| b.checked_sub(a)?.checked_add(1)?.checked_add(n))?
            })
        });
        match (&g.minutes, minutes) {
            (Some(r), Some(n)) if n <= MAX_INDEXED_MINUTES => {
                for m in r.iter().flat_map(|&(a, b)| a..=b) {
                    self.by_minute.entry(m).or_default().push(i);
                }
            }
            // Too many minutes, or none listed: `group_may_hold` decides at each lookup.
            _ => self.wide.push(i),
        }
    }

    /// The groups that may hold a request received at `time`, ascending (a superset:
    /// [`group_may_hold`] still decides).
    fn candidates(&self, time: Option<i64>) -> Vec<u32> {
        let Some(t) = time else {
            return self.untimed.clone();
        };
        let listed = self.by_minute.get(&minute(t)).map_or(&[][..], |v| v);
        if self.wide.is_empty() {
            return listed.to_vec();
        }
        let mut all = Vec::with_capacity(listed.len() + self.wide.len());
        all.extend_from_slice(listed);
        all.extend_from_slice(&self.wide);
        all.sort_unstable();
        all
    }
}

/// See the module documentation.
pub struct Dedup {
    key_hasher: foldhash::quality::FixedState,
    /// Oldest first; the last is the WAL file being appended to.
    hot: VecDeque<Gen>,
    /// Of `hot`, how many (from the back) are not yet sealed.
    unsealed: usize,
    hot_budget: u64,
    cold: Vec<ColdGroup>,
    cold_index: ColdIndex,
    /// (index into `cold` by first leaf and row group, its keys), most recently used last.
    cache: VecDeque<((u64, usize), Map)>,
    /// Cold row groups read so far (for metrics and tests).
    pub cold_loads: u64,
    /// Requests still open (no ResponseComplete or Panic stored) when their keys turned
    /// cold: key -> (stage bits, the eviction that last updated it, the eviction that first
    /// put it here). Every stage stored since it entered is in these bits or in `hot`; only
    /// row groups made cold before it entered can hold more (stages arrive out of order: a
    /// retried ResponseComplete may have gone cold before its ResponseStarted). Watches and
    /// exec sessions finish long after they start: their last stage is decided from here,
    /// reading only those older row groups (Bloom filters rule most out). Entries expire
    /// after `OPEN_MAX_AGE`, and at most `OPEN_MAX` are kept.
    open: HashMap<u64, (u8, u32, u32), foldhash::fast::FixedState>,
    /// Per eviction, oldest first: (its number, when, the keys it put in `open`).
    open_batches: VecDeque<(u32, std::time::Instant, Vec<u64>)>,
    evictions: u32,
    /// Bloom filters of the newest cold segments, oldest first.
    blooms: VecDeque<Bloom>,
}

/// How long a request stays in [`Dedup::open`] (kube-apiserver's watches last 30 to 60
/// minutes; exec sessions can be longer, and are then looked up in cold row groups).
const OPEN_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(4 * 3600);
/// Open requests kept at most (about 24 bytes each).
const OPEN_MAX: usize = 1_000_000;
/// The stages after which a request gets no more.
const FINAL: u8 = 4 | 8;

impl Dedup {
    pub fn new(hot_budget: u64) -> Dedup {
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        Dedup {
            key_hasher: foldhash::quality::FixedState::with_seed(u64::from_le_bytes(seed)),
            hot: VecDeque::new(),
            unsealed: 0,
            hot_budget,
            cold: Vec::new(),
            cold_index: ColdIndex::default(),
            cache: VecDeque::new(),
            cold_loads: 0,
            open: Default::default(),
            open_batches: VecDeque::new(),
            evictions: 0,
            blooms: VecDeque::new(),
        }
    }

    /// The key of a request: its cluster, audit ID and request time. A request's stages
    /// all carry the same `requestReceivedTimestamp`; clients can set the audit ID (the
    /// `Audit-ID` header), so two requests may share one, but not also the microsecond.
    pub fn key(&self, cluster: &str, audit_id: &str, time: Option<i64>) -> u64 {
        request_key(&self.key_hasher, cluster, audit_id, time)
    }

    /// Starts the map of a new WAL file (appends go to it from now on).
    pub fn start_wal(&mut self, first_leaf: u64) {
        self.hot.push_back(Gen {
            first_leaf,
            rows: 0,
            map: Map::default(),
        });
        self.unsealed += 1;
    }

    /// Records a stored row in the current WAL file's map.
    pub fn note(&mut self, key: u64, bit: u8) {
        let g = self.hot.back_mut().expect("a WAL map is started on open");
        *g.map.entry(key).or_default() |= bit;
        g.rows += 1;
    }

    /// Takes back rows noted by a failed append: `(key, bits before)`, in noting order.
    pub fn undo(&mut self, undo: &[(u64, u8)]) {
        let g = self.hot.back_mut().expect("a WAL map is started on open");
        for (k, old) in undo.iter().rev() {
            if *old == 0 {
                g.map.remove(k);
            } else {
                g.map.insert(*k, *old);
            }
            g.rows -= 1;
        }
    }

    /// The stage bits stored for `key` in the current WAL file only (for undo).
    pub fn current(&self, key: u64) -> u8 {
        self.hot
            .back()
            .and_then(|g| g.map.get(&key).copied())
            .unwrap_or(0)
    }

    /// Every stage bit stored for a request received at `time`, as far as needed to decide
    /// about `bit`: stops early once `bit` is found.
    pub fn lookup(&mut self, key: u64, time: Option<i64>, bit: u8, segments: &Path) -> Result<u8> {
        let mut bits = 0;
        for g in self.hot.iter().rev() {
            if let Some(b) = g.map.get(&key) {
                bits |= *b;
                if bits & bit != 0 {
                    return Ok(bits);
                }
            }
        }
        // An open request: its stages since it entered `open` are all here (and in `hot`);
        // only row groups made cold before that can add any.
        let cold_before = match self.open.get(&key) {
            Some((b, _, since)) => {
                bits |= *b;
                if bits & bit != 0 {
                    return Ok(bits);
                }
                *since
            }
            None => u32::MAX,
        };
        let mut bloom_said: Option<(u64, bool)> = None;
        for i in self.cold_index.candidates(time) {
            let i = i as usize;
            if self.cold[i].evicted >= cold_before || !group_may_hold(&self.cold[i].times, time) {
                continue;
            }
            let seg = self.cold[i].first_leaf;
            let maybe = match bloom_said {
                Some((s, m)) if s == seg => m,
                _ => {
                    let m = self
                        .blooms
                        .iter()
                        .find(|b| b.first_leaf == seg)
                        .is_none_or(|b| b.may_contain(key));
                    bloom_said = Some((seg, m));
                    m
                }
            };
            if !maybe {
                continue;
            }
            let id = (self.cold[i].first_leaf, self.cold[i].rg);
            let pos = match self.cache.iter().position(|(k, _)| *k == id) {
                Some(p) => p,
                None => {
                    let map = self.load(&self.cold[i], segments)?;
                    self.cold_loads += 1;
                    if self.cache.len() >= COLD_CACHE {
                        self.cache.pop_front();
                    }
                    self.cache.push_back((id, map));
                    self.cache.len() - 1
                }
            };
            let entry = self.cache.remove(pos).unwrap();
            bits |= entry.1.get(&key).copied().unwrap_or(0);
            self.cache.push_back(entry);
            if bits & bit != 0 {
                return Ok(bits);
            }
        }
        Ok(bits)
    }

    fn load(&self, g: &ColdGroup, segments: &Path) -> Result<Map> {
        let r = segment::Reader::open(&segments.join(&g.file))?;
        let mut map = Map::default();
        self.read_keys(&r, g.rg, &mut map)?;
        Ok(map)
    }

    /// Adds the keys of row group `rg` to `map`.
    fn read_keys(&self, r: &segment::Reader, rg: usize, map: &mut Map) -> Result<()> {
        let b = r.read(rg, &["cluster", "audit_id", "stage", "time"], None)?;
        let missing = |name: &str| Error::damaged(r.path(), format!("{name} column missing"));
        let dict = |name: &str| {
            b.column_by_name(name)
                .and_then(|c| c.as_dictionary_opt::<Int32Type>())
                .ok_or_else(|| missing(name))
        };
        let cluster = dict("cluster")?;
        let cluster_values = cluster.values().as_string::<i32>();
        let stage = dict("stage")?;
        let stage_values = stage.values().as_string::<i32>();
        let ids = segment::col::<StringArray>(&b, "audit_id").map_err(|_| missing("audit_id"))?;
        let time =
            segment::col::<TimestampMicrosecondArray>(&b, "time").map_err(|_| missing("time"))?;
        for i in 0..b.num_rows() {
            let id = ids.value(i);
            if id.is_empty() {
                continue;
            }
            let c = cluster_values.value(cluster.keys().value(i) as usize);
            let s = stage_values
                .value(stage.keys().value(i) as usize)
                .parse()
                .ok();
            let t = time.is_valid(i).then(|| time.value(i));
            *map.entry(self.key(c, id, t)).or_default() |= stage_bit(s);
        }
        Ok(())
    }

    fn make_cold(&mut self, seg: &SegmentMeta, evicted: u32) {
        for (rg, terms) in seg.row_groups.iter().enumerate() {
            let times = RowGroupTerms {
                rows: terms.rows,
                min_time: terms.min_time,
                max_time: terms.max_time,
                terms: Default::default(),
                minutes: terms.minutes.clone(),
                untimed: terms.untimed,
                requests_by_user: None,
            };
            self.cold_index.add(self.cold.len() as u32, &times);
            self.cold.push(ColdGroup {
                file: PathBuf::from(&seg.file),
                first_leaf: seg.first_leaf,
                rg,
                evicted,
                times,
            });
        }
    }

    /// A hot map turns cold: its requests without a final stage (anywhere still hot) go to
    /// `open`; finished ones leave it. Expired and excess open entries are dropped.
    fn evict(&mut self, g: Gen) {
        self.blooms
            .push_back(Bloom::new(g.first_leaf, g.map.keys().copied()));
        while self.blooms.iter().map(|b| b.bits.len() * 8).sum::<usize>() > BLOOM_BUDGET {
            self.blooms.pop_front();
        }
        self.evictions = self.evictions.wrapping_add(1);
        let id = self.evictions;
        let mut added = Vec::new();
        for (key, bits) in g.map {
            let newer: u8 = self
                .hot
                .iter()
                .filter_map(|h| h.map.get(&key).copied())
                .fold(0, |a, b| a | b);
            let (old, since) = self.open.get(&key).map_or((0, id), |o| (o.0, o.2));
            let all = bits | newer | old;
            if all & FINAL != 0 {
                self.open.remove(&key);
            } else {
                self.open.insert(key, (all, id, since));
                added.push(key);
            }
        }
        self.open_batches
            .push_back((id, std::time::Instant::now(), added));
        while let Some((bid, at, _)) = self.open_batches.front() {
            let expired = at.elapsed() > OPEN_MAX_AGE;
            if !expired && self.open.len() <= OPEN_MAX {
                break;
            }
            let bid = *bid;
            let (_, _, keys) = self.open_batches.pop_front().unwrap();
            for k in keys {
                if self.open.get(&k).is_some_and(|o| o.1 == bid) {
                    self.open.remove(&k);
                }
            }
        }
    }

    /// The oldest unsealed WAL file was sealed into `seg` (now last in `segments`): its map
    /// stays hot as that segment's, and the oldest sealed maps beyond the budget turn cold.
    pub fn sealed(&mut self, segments: &[SegmentMeta]) {
        self.unsealed -= 1;
        let mut sealed = self.hot.len() - self.unsealed;
        let mut hot_rows: u64 = self.hot.iter().take(sealed).map(|g| g.rows).sum();
        while hot_rows > self.hot_budget && sealed > 0 {
            let g = self.hot.pop_front().unwrap();
            sealed -= 1;
            hot_rows -= g.rows;
            if let Some(seg) = segments.iter().find(|s| s.first_leaf == g.first_leaf) {
                // Numbered as the eviction below: requests entering `open` there need not
                // read these groups (their bits are in the map being evicted).
                self.make_cold(seg, self.evictions.wrapping_add(1));
            }
            self.evict(g);
        }
    }

    /// Before the WAL is read on open: the sealed segments, newest hot while the budget
    /// allows, the rest cold.
    pub fn open_segments(&mut self, dir: &Path, segments: &[SegmentMeta]) -> Result<()> {
        let mut hot_rows = 0;
        let mut cold_until = 0;
        for (i, seg) in segments.iter().enumerate().rev() {
            if hot_rows + seg.rows > self.hot_budget {
                cold_until = i + 1;
                break;
            }
            hot_rows += seg.rows;
            let r = segment::Reader::open(&dir.join(&seg.file))?;
            let mut map = Map::default();
            for rg in 0..r.row_groups() {
                self.read_keys(&r, rg, &mut map)?;
            }
            self.hot.push_front(Gen {
                first_leaf: seg.first_leaf,
                rows: seg.rows,
                map,
            });
        }
        for seg in &segments[..cold_until] {
            self.make_cold(seg, 0);
        }
        Ok(())
    }

    /// Retention removed every segment below leaf `prefix`.
    pub fn retained(&mut self, prefix: u64) {
        self.cold.retain(|g| g.first_leaf >= prefix);
        self.cold_index = ColdIndex::default();
        for (i, g) in self.cold.iter().enumerate() {
            self.cold_index.add(i as u32, &g.times);
        }
        self.blooms.retain(|b| b.first_leaf >= prefix);
        self.cache.retain(|((first, _), _)| *first >= prefix);
        while self.hot.len() > self.unsealed && self.hot[0].first_leaf < prefix {
            self.hot.pop_front();
        }
    }

    /// (hot keys and open requests, cold row groups, cached cold row groups).
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.hot.iter().map(|g| g.map.len()).sum::<usize>() + self.open.len(),
            self.cold.len(),
            self.cache.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(
        min: Option<i64>,
        max: Option<i64>,
        minutes: Option<Vec<(i64, i64)>>,
        untimed: bool,
    ) -> RowGroupTerms {
        RowGroupTerms {
            rows: 1,
            min_time: min,
            max_time: max,
            terms: Default::default(),
            minutes,
            untimed,
            requests_by_user: None,
        }
    }

    /// The index finds every group a scan would (and no lookup depends on more): groups with
    /// listed minutes, scattered ones, long ranges beyond the indexed bound, untimed rows.
    #[test]
    fn the_minute_index_finds_what_a_scan_finds() {
        let m = 60_000_000i64;
        let groups = [
            group(Some(10 * m), Some(12 * m + 5), Some(vec![(10, 12)]), false),
            group(
                Some(11 * m),
                Some(40 * m),
                Some(vec![(11, 11), (20, 22), (40, 40)]),
                true,
            ),
            group(Some(-3 * m), Some(-m - 1), Some(vec![(-3, -2)]), false),
            // Too scattered to list: its time range decides.
            group(Some(30 * m), Some(35 * m), None, false),
            // Listed, but more minutes than are indexed: also by time range.
            group(Some(0), Some(3000 * m), Some(vec![(0, 3000)]), false),
            // Only rows without a request time.
            group(None, None, Some(vec![]), true),
        ];
        let mut index = ColdIndex::default();
        for (i, g) in groups.iter().enumerate() {
            index.add(i as u32, g);
        }
        let mut times: Vec<Option<i64>> = vec![None];
        for minute in -5..3010 {
            for off in [0, 1, m / 2, m - 1] {
                times.push(Some(minute * m + off));
            }
        }
        for t in times {
            let scan: Vec<u32> = (0..groups.len() as u32)
                .filter(|&i| group_may_hold(&groups[i as usize], t))
                .collect();
            let found: Vec<u32> = index
                .candidates(t)
                .into_iter()
                .filter(|&i| group_may_hold(&groups[i as usize], t))
                .collect();
            assert_eq!(found, scan, "request time {t:?}");
            let c = index.candidates(t);
            assert!(
                c.windows(2).all(|w| w[0] < w[1]),
                "ascending, no repeats: {c:?}"
            );
        }
        assert!(index.wide.contains(&3) && index.wide.contains(&4));
        assert_eq!(index.untimed, vec![1, 5]);

        // Damaged ranges (an edited manifest) are checked at each lookup, not expanded.
        let mut index = ColdIndex::default();
        index.add(
            0,
            &group(Some(0), Some(m), Some(vec![(i64::MIN, i64::MAX)]), false),
        );
        index.add(
            1,
            &group(Some(0), Some(m), Some(vec![(5, 1), (0, 3000)]), false),
        );
        assert_eq!(index.wide, vec![0, 1]);
        assert!(index.by_minute.is_empty());
    }
}
