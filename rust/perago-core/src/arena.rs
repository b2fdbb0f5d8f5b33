//! Compact path storage: every relative path of a snapshot lives in one byte buffer.
//!
//! A per-entry `String` would cost 24 bytes of header plus an allocation (≈ 16–32 bytes of
//! allocator overhead) per file; a span is 8 bytes and the bytes are packed back to back.

use crate::error::{Error, Result};

/// A `(start, len)` slice of a [`PathArena`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    start: u32,
    len: u32,
}

#[derive(Clone, Debug, Default)]
pub struct PathArena {
    bytes: Vec<u8>,
}

impl PathArena {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(capacity),
        }
    }

    /// Append the concatenation of `parts` and return its span.
    pub fn push(&mut self, parts: &[&[u8]]) -> Result<Span> {
        let start = self.bytes.len();
        for part in parts {
            self.bytes.extend_from_slice(part);
        }
        let len = self.bytes.len() - start;
        let start = u32::try_from(start).map_err(|_| Error::Limit("more than 4 GiB of paths"))?;
        let len = u32::try_from(len).map_err(|_| Error::Limit("path longer than 4 GiB"))?;
        Ok(Span { start, len })
    }

    pub fn get(&self, span: Span) -> &[u8] {
        let start = span.start as usize;
        &self.bytes[start..start + span.len as usize]
    }

    pub fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
    }

    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }
}
