//! RFC 6962 Merkle trees over a batch's leaves: the root, and inclusion proofs an auditor can
//! check with nothing but SHA-256.
//!
//! Leaf hash `SHA-256(0x00 ‖ data)`, node hash `SHA-256(0x01 ‖ left ‖ right)`; a tree of
//! `n > 1` leaves splits at the largest power of two below `n` (RFC 6962 §2.1), so every
//! Certificate Transparency verifier computes the same root.

use sha2::{Digest, Sha256};

/// A SHA-256 value.
pub type Hash = [u8; 32];

/// The hash of a leaf's data.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    hasher.finalize().into()
}

/// The hash of an inner node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root over leaf hashes, in order; the empty tree's root is `SHA-256("")`.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => Sha256::digest([]).into(),
        [leaf] => *leaf,
        _ => {
            let split = split_point(leaves.len());
            node_hash(&root(&leaves[..split]), &root(&leaves[split..]))
        }
    }
}

/// The audit path of leaf `index` (RFC 6962 §2.1.1), nearest sibling first; `None` when the
/// index is outside the tree.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    collect_path(leaves, index, &mut path);
    Some(path)
}

fn collect_path(leaves: &[Hash], index: usize, path: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let split = split_point(leaves.len());
    if index < split {
        collect_path(&leaves[..split], index, path);
        path.push(root(&leaves[split..]));
    } else {
        collect_path(&leaves[split..], index - split, path);
        path.push(root(&leaves[..split]));
    }
}

/// Whether `proof` shows `leaf` at `index` of a tree of `size` leaves with `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut node, mut last) = (index, size - 1);
    let mut hash = *leaf;
    for sibling in proof {
        if last == 0 {
            return false;
        }
        if node % 2 == 1 || node == last {
            hash = node_hash(sibling, &hash);
            if node % 2 == 0 {
                while node % 2 == 0 && node != 0 {
                    node >>= 1;
                    last >>= 1;
                }
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        node >>= 1;
        last >>= 1;
    }
    last == 0 && hash == *root
}

/// The largest power of two strictly below `n` (for `n > 1`).
fn split_point(n: usize) -> usize {
    let mut split = 1;
    while split * 2 < n {
        split *= 2;
    }
    split
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(count: usize) -> Vec<Hash> {
        (0..count)
            .map(|number| leaf_hash(&(number as u32).to_be_bytes()))
            .collect()
    }

    #[test]
    fn hashes_are_rfc_6962s() {
        // SHA-256 of the empty string, and of the single byte 0x00 (the empty leaf).
        assert_eq!(
            hex::encode(root(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let [a, b, c] = [leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c")];
        assert_eq!(root(&[a, b, c]), node_hash(&node_hash(&a, &b), &c));
    }

    #[test]
    fn every_leaf_of_every_size_proves_its_inclusion_and_nothing_else() {
        for size in 1..=33 {
            let leaves = leaves(size);
            let tree_root = root(&leaves);
            for index in 0..size {
                let proof = inclusion_proof(&leaves, index).unwrap();
                let (index64, size64) = (index as u64, size as u64);
                assert!(verify_inclusion(
                    &leaves[index],
                    index64,
                    size64,
                    &proof,
                    &tree_root
                ));
                let other = leaf_hash(b"forged");
                assert!(!verify_inclusion(
                    &other, index64, size64, &proof, &tree_root
                ));
                if size > 1 {
                    let moved = (index64 + 1) % size64;
                    assert!(!verify_inclusion(
                        &leaves[index],
                        moved,
                        size64,
                        &proof,
                        &tree_root
                    ));
                }
            }
            assert!(inclusion_proof(&leaves, size).is_none());
        }
    }
}
