//! RFC 6962 (RFC 9162 §2.1) Merkle tree hashing over the stored records.
//!
//! The store keeps only the tree's right edge (a compact range: the roots of the perfect
//! subtrees that make up the leaves so far), so appending is O(log n) memory and time.
//! Inclusion proofs are computed from leaf hashes on demand and verified with `ct-merkle`,
//! an independent implementation of the same RFC.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The root of the empty tree: `SHA-256()`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// `SHA-256(0x00 || record)`.
pub fn leaf_hash(record: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(record);
    h.finalize().into()
}

/// [`leaf_hash`] of a record's canonical bytes, without encoding them.
pub fn record_hash(r: &crate::record::StoredRecord<'_>) -> Hash {
    let (header, cluster, event) = r.pieces();
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(header);
    h.update(cluster);
    h.update(event);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The right edge of a tree: for each set bit of the size, from the highest, the root of that
/// perfect subtree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (height, hash), heights strictly decreasing.
    nodes: Vec<(u32, Hash)>,
}

impl Frontier {
    /// The tree with no leaves.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Rebuilds a frontier from its parts, checking they fit the size.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<Frontier, String> {
        let heights: Vec<u32> = (0..64).rev().filter(|h| size >> h & 1 == 1).collect();
        if heights.len() != hashes.len() {
            return Err(format!(
                "a tree of {size} leaves has {} subtree roots on its right edge, not {}",
                heights.len(),
                hashes.len()
            ));
        }
        Ok(Frontier {
            size,
            nodes: heights.into_iter().zip(hashes).collect(),
        })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree roots, highest first.
    pub fn hashes(&self) -> Vec<Hash> {
        self.nodes.iter().map(|(_, h)| *h).collect()
    }

    /// Appends a leaf by its hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut height = 0;
        while let Some(&(top, left)) = self.nodes.last() {
            if top != height {
                break;
            }
            self.nodes.pop();
            h = node_hash(&left, &h);
            height += 1;
        }
        self.nodes.push((height, h));
        self.size += 1;
    }

    /// The tree head: `MTH(D[0:size])`.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(&(_, mut r)) = it.next() else {
            return empty_root();
        };
        for (_, left) in it {
            r = node_hash(left, &r);
        }
        r
    }
}

/// The tree edge a signed retention record states (`prefix N` and `frontier <hex>...` lines
/// of its body): the frontier at the retention boundary.
pub fn retention_edge(body: &str) -> Result<Frontier, String> {
    let mut prefix = None;
    let mut hashes = Vec::new();
    for l in body.lines() {
        if let Some(p) = l.strip_prefix("prefix ") {
            prefix = p.parse::<u64>().ok();
        } else if let Some(f) = l.strip_prefix("frontier") {
            for h in f.split_whitespace() {
                hashes.push(crate::manifest::unhex(h).ok_or("bad frontier hash")?);
            }
        }
    }
    let prefix = prefix.ok_or("retention record without a prefix")?;
    Frontier::from_parts(prefix, hashes)
}

/// `MTH` of consecutive leaves. `leaves` must not be empty.
pub fn subtree_root(leaves: &[Hash]) -> Hash {
    let mut f = Frontier::new();
    for l in leaves {
        f.push(*l);
    }
    f.root()
}

/// `PATH(m, D[n])` of RFC 6962 §2.1.1 over `leaves` (all `n` leaf hashes): the sibling
/// hashes from the leaf up to the root.
pub fn inclusion_path(leaves: &[Hash], m: usize) -> Vec<Hash> {
    let mut out = Vec::new();
    path(leaves, m, &mut out);
    out
}

fn path(d: &[Hash], m: usize, out: &mut Vec<Hash>) {
    let n = d.len();
    if n <= 1 {
        return;
    }
    let k = largest_power_of_two_below(n);
    if m < k {
        path(&d[..k], m, out);
        out.push(subtree_root(&d[k..]));
    } else {
        path(&d[k..], m - k, out);
        out.push(subtree_root(&d[..k]));
    }
}

fn largest_power_of_two_below(n: usize) -> usize {
    debug_assert!(n > 1);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// Checks an inclusion proof with `ct-merkle`.
pub fn verify_inclusion(
    record: &[u8],
    index: u64,
    size: u64,
    root: &Hash,
    path: &[Hash],
) -> Result<(), String> {
    use ct_merkle::{InclusionProof, RootHash};
    let digests: Vec<ct_merkle::digest::Output<Sha256>> =
        path.iter().map(|h| (*h).into()).collect();
    let proof = InclusionProof::<Sha256>::from_digests(digests.iter());
    RootHash::<Sha256>::new((*root).into(), size)
        .verify_inclusion(&record, index, &proof)
        .map_err(|e| format!("inclusion proof does not verify: {e:?}"))
}

pub use kaudit_model::text::hex;

#[cfg(test)]
mod tests {
    use super::*;
    use ct_merkle::mem_backed_tree::MemoryBackedTree;

    #[test]
    fn roots_and_proofs_agree_with_ct_merkle() {
        let mut ours = Frontier::new();
        let mut theirs = MemoryBackedTree::<Sha256, Vec<u8>>::new();
        let mut leaves = Vec::new();
        assert_eq!(ours.root(), empty_root());
        for i in 0..70u32 {
            let rec = format!("record {i}").into_bytes();
            ours.push(leaf_hash(&rec));
            leaves.push(leaf_hash(&rec));
            theirs.push(rec.clone());
            let root: Hash = (*theirs.root().as_bytes()).into();
            assert_eq!(ours.root(), root, "size {}", i + 1);
            assert_eq!(subtree_root(&leaves), root);
            for m in [0, i as usize / 2, i as usize] {
                let p = inclusion_path(&leaves, m);
                let rec_m = format!("record {m}").into_bytes();
                verify_inclusion(&rec_m, m as u64, i as u64 + 1, &root, &p).unwrap();
                assert!(verify_inclusion(b"other", m as u64, i as u64 + 1, &root, &p).is_err());
            }
        }
        let f = Frontier::from_parts(ours.size(), ours.hashes()).unwrap();
        assert_eq!(f, ours);
        assert!(Frontier::from_parts(5, vec![[0; 32]]).is_err());
    }

    #[test]
    fn record_hash_is_the_leaf_hash_of_the_encoding() {
        for (cluster, event) in [("", ""), ("prod", "{\"kind\":\"Event\"}"), ("é", "x")] {
            let r = crate::record::StoredRecord {
                received: -7,
                cluster,
                event,
            };
            let mut b = Vec::new();
            r.encode(&mut b);
            assert_eq!(b.len(), r.encoded_len());
            assert_eq!(record_hash(&r), leaf_hash(&b));
        }
    }
}
