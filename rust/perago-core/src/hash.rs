//! BLAKE3 content hashing of single files.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// Files at least this large are memory-mapped and hashed with rayon; smaller ones are read.
pub const MMAP_THRESHOLD: u64 = 1 << 20;

/// Hash one regular file with BLAKE3 and return the lowercase hex digest.
pub fn hash_file(path: &Path) -> Result<String> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut hasher = blake3::Hasher::new();
    if len >= MMAP_THRESHOLD {
        hasher
            .update_mmap_rayon(path)
            .map_err(|e| Error::io(path, e))?;
    } else {
        let mut buf = Vec::with_capacity(len as usize + 1);
        (&file)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(path, e))?;
        hasher.update(&buf);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn hashes_match_reference_digest() {
        let dir = std::env::temp_dir().join(format!("perago-hash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.txt");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(b"abc")
            .unwrap();
        assert_eq!(
            hash_file(&path).unwrap(),
            blake3::hash(b"abc").to_hex().to_string()
        );
        let missing = hash_file(&dir.join("missing"));
        assert!(matches!(missing, Err(Error::Io { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
