//! BLAKE3 of a file downloaded as independent byte ranges, without re-reading it.
//!
//! BLAKE3 is a tree hash: a range that starts at a multiple of a power-of-two part size is a
//! subtree whose chaining value can be computed on its own while the range streams in. The
//! file's hash is then the root of those chaining values merged in BLAKE3's left-balanced shape.
//! This keeps ranged downloads single-pass (no second read, no mmap of a multi-GB file).

use blake3::hazmat::{
    left_subtree_len, merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode,
};

/// `part_size` must be a power of two and at least one BLAKE3 chunk (1 KiB).
pub fn is_valid_part_size(part_size: u64) -> bool {
    part_size.is_power_of_two() && part_size >= blake3::CHUNK_LEN as u64
}

/// A hasher for the part starting at `offset` (a multiple of the part size).
pub fn part_hasher(offset: u64) -> blake3::Hasher {
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset(offset);
    hasher
}

/// Chaining value of a finished part (only valid when the file has at least two parts).
pub fn part_chaining_value(hasher: &blake3::Hasher) -> ChainingValue {
    hasher.finalize_non_root()
}

/// Root hash of a file of `total_len` bytes split into `cvs.len() >= 2` parts of `part_size`.
pub fn combine(cvs: &[ChainingValue], part_size: u64, total_len: u64) -> blake3::Hash {
    assert!(cvs.len() >= 2 && is_valid_part_size(part_size));
    let (left, right, left_len) = split(cvs, part_size, total_len);
    merge_subtrees_root(
        &subtree(left, part_size, left_len),
        &subtree(right, part_size, total_len - left_len),
        Mode::Hash,
    )
}

fn subtree(cvs: &[ChainingValue], part_size: u64, len: u64) -> ChainingValue {
    if cvs.len() == 1 {
        return cvs[0];
    }
    let (left, right, left_len) = split(cvs, part_size, len);
    merge_subtrees_non_root(
        &subtree(left, part_size, left_len),
        &subtree(right, part_size, len - left_len),
        Mode::Hash,
    )
}

fn split(
    cvs: &[ChainingValue],
    part_size: u64,
    len: u64,
) -> (&[ChainingValue], &[ChainingValue], u64) {
    // The left subtree is the largest power of two below `len`; being a power of two no smaller
    // than `part_size`, it is a whole number of parts.
    let left_len = left_subtree_len(len);
    let left_parts = (left_len / part_size) as usize;
    (&cvs[..left_parts], &cvs[left_parts..], left_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranged_hash(data: &[u8], part_size: u64) -> blake3::Hash {
        let cvs: Vec<_> = data
            .chunks(part_size as usize)
            .enumerate()
            .map(|(i, part)| {
                let mut h = part_hasher(i as u64 * part_size);
                h.update(part);
                part_chaining_value(&h)
            })
            .collect();
        combine(&cvs, part_size, data.len() as u64)
    }

    #[test]
    fn ranged_hash_equals_blake3_for_many_shapes() {
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for part_size in [1024u64, 2048, 4096, 16384] {
            for len in [
                part_size as usize + 1,
                2 * part_size as usize,
                2 * part_size as usize + 1,
                3 * part_size as usize,
                5 * part_size as usize - 7,
                8 * part_size as usize,
                9 * part_size as usize + 100,
                13 * part_size as usize + 1,
            ] {
                let slice = &data[..len.min(data.len())];
                if slice.len() as u64 <= part_size {
                    continue;
                }
                assert_eq!(
                    ranged_hash(slice, part_size),
                    blake3::hash(slice),
                    "part {part_size} len {}",
                    slice.len()
                );
            }
        }
    }

    #[test]
    fn part_size_rules() {
        assert!(is_valid_part_size(1024));
        assert!(is_valid_part_size(32 << 20));
        assert!(!is_valid_part_size(512));
        assert!(!is_valid_part_size(3 << 20));
    }
}
