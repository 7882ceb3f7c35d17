//! The Merkle tree of RFC 9162 (Certificate Transparency 2.0, §2.1), over SHA-256: leaf hash
//! `SHA-256(0x00 || leaf)`, node hash `SHA-256(0x01 || left || right)`, the root of `n` leaves
//! split at the largest power of two below `n`; audit (inclusion) and consistency proofs and
//! their verification.
//!
//! Stored, the tree is its *perfect* subtrees: node `(level, index)` is the root of leaves
//! `[index·2^level, (index+1)·2^level)`, level 0 being the leaves. Any subtree a root or a
//! proof needs is a perfect one or splits into them ([`subtree_parts`]), so a proof is one
//! fetch of a few dozen nodes.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(data);
    hasher.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: `SHA-256()`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (`n > 1`).
fn split(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (63 - (n - 1).leading_zeros())
}

/// A node of the stored tree: the root of leaves `[index·2^level, (index+1)·2^level)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeKey {
    /// 0 for a leaf.
    pub level: u32,
    /// Index among the nodes of its level.
    pub index: u64,
}

/// The perfect subtrees whose hashes make up `MTH(D[start:end])`, left to right, as the RFC's
/// recursion splits it (`start` is where a recursion of the RFC puts it: a multiple of the
/// largest power of two not above `end - start`'s split).
pub fn subtree_parts(start: u64, end: u64) -> Vec<NodeKey> {
    let mut parts = Vec::new();
    let (mut start, end) = (start, end);
    while start < end {
        let size = end - start;
        if size.is_power_of_two() && start % size == 0 {
            parts.push(NodeKey {
                level: size.trailing_zeros(),
                index: start >> size.trailing_zeros(),
            });
            break;
        }
        let k = split(size);
        parts.push(NodeKey {
            level: k.trailing_zeros(),
            index: start >> k.trailing_zeros(),
        });
        start += k;
    }
    parts
}

/// `MTH(D[start:end])` from its parts' hashes (in [`subtree_parts`] order): folded from the
/// right, as the RFC nests them.
pub fn fold_parts(hashes: &[Hash]) -> Hash {
    let mut iter = hashes.iter().rev();
    let Some(last) = iter.next() else {
        return empty_root();
    };
    iter.fold(*last, |right, left| node_hash(left, &right))
}

/// The subtrees of an inclusion proof of leaf `index` in a tree of `size` (RFC 9162
/// §2.1.3.1), from the leaf up: each `[start, end)`.
pub fn inclusion_ranges(index: u64, size: u64) -> Vec<(u64, u64)> {
    let mut ranges = Vec::new();
    let (mut start, mut end, mut m) = (0u64, size, index);
    while end - start > 1 {
        let k = split(end - start);
        if m < k {
            ranges.push((start + k, end));
            end = start + k;
        } else {
            ranges.push((start, start + k));
            start += k;
            m -= k;
        }
    }
    ranges.reverse();
    ranges
}

/// The subtrees of a consistency proof from `old` to `new` leaves (RFC 9162 §2.1.4.1,
/// `SUBPROOF(m, D[n], true)`), in proof order.
pub fn consistency_ranges(old: u64, new: u64) -> Vec<(u64, u64)> {
    let mut ranges = Vec::new();
    if old == 0 || old >= new {
        return ranges;
    }
    // Iterative SUBPROOF: walk down, collecting the sibling subtrees.
    let (mut start, mut end, mut m, mut complete) = (0u64, new, old, true);
    loop {
        let n = end - start;
        if m == n {
            if !complete {
                ranges.push((start, end));
            }
            break;
        }
        let k = split(n);
        if m <= k {
            ranges.push((start + k, end));
            end = start + k;
        } else {
            ranges.push((start, start + k));
            start += k;
            m -= k;
            complete = false;
        }
    }
    ranges.reverse();
    ranges
}

/// RFC 9162 §2.1.3.2: whether `path` proves leaf `index` with `leaf` in the tree of `size`
/// with `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            shift_to_set_bit(&mut f_n, &mut s_n);
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

/// RFC 9162 (§2.1.3.2, §2.1.4.2): "until LSB(fn) is set or fn is equal to 0, right-shift fn
/// and sn equally".
fn shift_to_set_bit(f_n: &mut u64, s_n: &mut u64) {
    while *f_n & 1 == 0 && *f_n != 0 {
        *f_n >>= 1;
        *s_n >>= 1;
    }
}

/// RFC 9162 §2.1.4.2: whether `proof` shows the tree of `old` leaves with `old_root` is a
/// prefix of the tree of `new` leaves with `new_root`.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 {
        return proof.is_empty() && *old_root == empty_root();
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if old.is_power_of_two() {
        path.insert(0, *old_root);
    }
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f_n, mut s_n) = (old - 1, new - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut f_r, mut s_r) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            shift_to_set_bit(&mut f_n, &mut s_n);
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && f_r == *old_root && s_r == *new_root
}

/// The right edge of a growing tree: the roots of the perfect subtrees that make up the
/// leaves appended so far (at most one per level). Appending a leaf gives the perfect nodes
/// it completes, to store; the root of every size is computed from the edge alone.
#[derive(Debug, Clone, Default)]
pub struct Frontier {
    size: u64,
    /// `edge[level]`: the perfect subtree of that level at the right edge, if `size` has
    /// that bit set.
    edge: Vec<Option<Hash>>,
}

impl Frontier {
    /// A frontier of `size` leaves, from the hashes of [`Frontier::edge_keys`].
    pub fn from_edge(size: u64, hashes: &[Hash]) -> Option<Self> {
        let keys = Self::edge_keys(size);
        if keys.len() != hashes.len() {
            return None;
        }
        let mut edge = vec![None; 64 - size.leading_zeros() as usize];
        for (key, hash) in keys.iter().zip(hashes) {
            edge[key.level as usize] = Some(*hash);
        }
        Some(Self { size, edge })
    }

    /// The perfect nodes at the right edge of a tree of `size` leaves, highest first.
    pub fn edge_keys(size: u64) -> Vec<NodeKey> {
        subtree_parts(0, size)
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf; returns the nodes this completes, the leaf itself first
    /// (`level 0`), each with its hash.
    pub fn push(&mut self, leaf: Hash) -> Vec<(NodeKey, Hash)> {
        let mut completed = vec![(
            NodeKey {
                level: 0,
                index: self.size,
            },
            leaf,
        )];
        let mut hash = leaf;
        let mut level = 0usize;
        let mut index = self.size;
        while index & 1 == 1 {
            let left = self.edge[level].take().unwrap_or_else(empty_root);
            hash = node_hash(&left, &hash);
            level += 1;
            index >>= 1;
            completed.push((
                NodeKey {
                    level: u32::try_from(level).unwrap_or(u32::MAX),
                    index,
                },
                hash,
            ));
        }
        if self.edge.len() <= level {
            self.edge.resize(level + 1, None);
        }
        self.edge[level] = Some(hash);
        self.size += 1;
        completed
    }

    /// The root of the leaves appended so far.
    pub fn root(&self) -> Hash {
        let parts: Vec<Hash> = self.edge.iter().rev().filter_map(|h| *h).collect();
        fold_parts(&parts)
    }
}

/// The hex text of a hash.
pub fn hex(hash: &Hash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// A hash from its hex text.
pub fn from_hex(text: &str) -> Option<Hash> {
    if text.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(hash)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// MTH straight from the RFC's definition.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    /// Every perfect node of a tree, as a store would hold them.
    fn store(leaves: &[Hash]) -> HashMap<NodeKey, Hash> {
        let mut frontier = Frontier::default();
        let mut nodes = HashMap::new();
        for leaf in leaves {
            nodes.extend(frontier.push(*leaf));
        }
        nodes
    }

    fn range_hash(nodes: &HashMap<NodeKey, Hash>, start: u64, end: u64) -> Hash {
        let hashes: Vec<Hash> = subtree_parts(start, end).iter().map(|k| nodes[k]).collect();
        fold_parts(&hashes)
    }

    #[test]
    fn rfc_6962_test_vector_roots() {
        // The eight leaves of certificate-transparency's and Trillian's merkle tests.
        let data: [&[u8]; 8] = [
            b"",
            &[0x00],
            &[0x10],
            &[0x20, 0x21],
            &[0x30, 0x31],
            &[0x40, 0x41, 0x42, 0x43],
            &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            &[
                0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d,
                0x6e, 0x6f,
            ],
        ];
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let mut frontier = Frontier::default();
        for (data, root) in data.iter().zip(roots) {
            frontier.push(leaf_hash(data));
            assert_eq!(hex(&frontier.root()), root, "size {}", frontier.size());
        }
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn roots_proofs_and_their_verification_agree_with_the_definition() {
        let all = leaves(70);
        let nodes = store(&all);
        for size in 1..=70u64 {
            let root = mth(&all[..size as usize]);
            assert_eq!(range_hash(&nodes, 0, size), root, "root of {size}");
            let edge: Vec<Hash> = Frontier::edge_keys(size).iter().map(|k| nodes[k]).collect();
            assert_eq!(Frontier::from_edge(size, &edge).unwrap().root(), root);
            for index in 0..size {
                let path: Vec<Hash> = inclusion_ranges(index, size)
                    .iter()
                    .map(|&(s, e)| range_hash(&nodes, s, e))
                    .collect();
                assert!(verify_inclusion(
                    index,
                    size,
                    &all[index as usize],
                    &path,
                    &root
                ));
                assert!(!verify_inclusion(
                    index,
                    size,
                    &all[(index as usize + 1) % 70],
                    &path,
                    &root
                ));
                if !path.is_empty() {
                    let mut wrong = path.clone();
                    wrong[0][0] ^= 1;
                    assert!(!verify_inclusion(
                        index,
                        size,
                        &all[index as usize],
                        &wrong,
                        &root
                    ));
                }
            }
            for old in 1..=size {
                let old_root = mth(&all[..old as usize]);
                let proof: Vec<Hash> = consistency_ranges(old, size)
                    .iter()
                    .map(|&(s, e)| range_hash(&nodes, s, e))
                    .collect();
                assert!(
                    verify_consistency(old, size, &old_root, &root, &proof),
                    "{old} -> {size}"
                );
                if old < size {
                    let mut changed = all[..old as usize].to_vec();
                    changed[0] = leaf_hash(b"changed");
                    assert!(!verify_consistency(
                        old,
                        size,
                        &mth(&changed),
                        &root,
                        &proof
                    ));
                }
            }
        }
    }

    #[test]
    fn consistency_proofs_match_the_rfc_6962_test_vectors() {
        // certificate-transparency's merkle_tree_test.cc: proofs between sizes of the same
        // eight leaves (sizes 1→8, 6→8, 2→5), checked through verification.
        let data: Vec<Vec<u8>> = vec![
            vec![],
            vec![0x00],
            vec![0x10],
            vec![0x20, 0x21],
            vec![0x30, 0x31],
            vec![0x40, 0x41, 0x42, 0x43],
            vec![0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            (0x60..=0x6f).collect(),
        ];
        let all: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
        let nodes = store(&all);
        let proof_of = |old: u64, new: u64| -> Vec<String> {
            consistency_ranges(old, new)
                .iter()
                .map(|&(s, e)| hex(&range_hash(&nodes, s, e)))
                .collect()
        };
        assert_eq!(
            proof_of(1, 8),
            [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );
        assert_eq!(
            proof_of(6, 8),
            [
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]
        );
        assert_eq!(
            proof_of(2, 5),
            [
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ]
        );
        // And an inclusion vector: leaf 0 in the tree of 8.
        let path: Vec<String> = inclusion_ranges(0, 8)
            .iter()
            .map(|&(s, e)| hex(&range_hash(&nodes, s, e)))
            .collect();
        assert_eq!(
            path,
            [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );
    }

    #[test]
    fn hex_round_trips() {
        let hash = leaf_hash(b"x");
        assert_eq!(from_hex(&hex(&hash)), Some(hash));
        assert_eq!(from_hex("zz"), None);
    }
}
