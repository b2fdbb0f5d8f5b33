//! Which object keys may become local files, and where. Pure logic: nothing touches the disk.
//!
//! Every key of a listing is checked before the first byte is written, so a single bad key fails
//! the whole download up front instead of leaving a half-written workspace.

use std::collections::HashSet;

use crate::arena::{PathArena, Span};
use crate::error::{Error, Result};
use crate::lakefs::ObjectInfo;
use crate::names::ATTEMPT_MARKER;

/// Longest file name most Linux file systems accept (`NAME_MAX`).
const MAX_SEGMENT_BYTES: usize = 255;

/// The files a download will write, in listing order: each relative local path (`/`-separated,
/// the key without the listing prefix) packed into one arena, so a million-file plan costs about
/// 16 bytes plus the name per file instead of a `String` (and its allocation) per key.
#[derive(Clone, Debug, Default)]
pub struct PlannedFiles {
    /// The raw listing prefix every key starts with (`"a/b/"`, or `""`).
    prefix: String,
    arena: PathArena,
    files: Vec<PlannedFile>,
}

#[derive(Clone, Copy, Debug)]
struct PlannedFile {
    rel: Span,
    size: u64,
}

impl PlannedFiles {
    /// An empty plan for keys listed under `raw_prefix`.
    pub fn new(raw_prefix: &str) -> Self {
        Self {
            prefix: raw_prefix.to_owned(),
            ..Self::default()
        }
    }

    /// Check one listed key (in listing order) and add it to the plan.
    pub fn push(&mut self, key: &str, size: u64) -> Result<()> {
        let rel = key.strip_prefix(self.prefix.as_str()).ok_or_else(|| {
            Error::unsafe_key(key, format!("it is outside the prefix {:?}", self.prefix))
        })?;
        if rel.is_empty() {
            return Err(Error::unsafe_key(
                key,
                "it names the prefix itself (a folder marker object)",
            ));
        }
        check_relative(rel).map_err(|reason| Error::unsafe_key(key, reason))?;
        if rel == ATTEMPT_MARKER {
            return Err(Error::unsafe_key(
                key,
                format!(
                    "{ATTEMPT_MARKER} at the workspace root is reserved for perago's attempt marker"
                ),
            ));
        }
        let rel = self.arena.push(&[rel.as_bytes()])?;
        self.files.push(PlannedFile { rel, size });
        Ok(())
    }

    /// The plan is complete: refuse a key that is both a file and another key's directory.
    pub fn finish(mut self) -> Result<Self> {
        self.arena.shrink_to_fit();
        self.files.shrink_to_fit();
        check_file_directory_clashes(&self)?;
        Ok(self)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn size(&self, index: usize) -> u64 {
        self.files[index].size
    }

    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    pub fn rel_path(&self, index: usize) -> &str {
        self.rel_str(self.files[index].rel)
    }

    /// The file's object key (prefix + relative path).
    pub fn key(&self, index: usize) -> String {
        format!("{}{}", self.prefix, self.rel_path(index))
    }

    /// Whether `key` is file `index`'s object key.
    pub fn is_key(&self, index: usize, key: &str) -> bool {
        key.strip_prefix(self.prefix.as_str()) == Some(self.rel_path(index))
    }

    /// `(relative path, size)` in plan order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, u64)> + '_ {
        self.files.iter().map(|f| (self.rel_str(f.rel), f.size))
    }

    /// The path arena and each file's (span, size), for a report that keeps the names.
    pub(super) fn into_parts(self) -> (PathArena, impl ExactSizeIterator<Item = (Span, u64)>) {
        (self.arena, self.files.into_iter().map(|f| (f.rel, f.size)))
    }

    fn rel_bytes(&self, index: usize) -> &[u8] {
        self.arena.get(self.files[index].rel)
    }

    fn rel_str(&self, span: Span) -> &str {
        // Only `&str` bytes are ever pushed (see `push`).
        std::str::from_utf8(self.arena.get(span)).expect("planned paths are UTF-8")
    }

    /// Indices of the files ordered by relative path (the listing order, unless a server
    /// returned keys unsorted).
    fn sorted_indices(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        let sorted = self
            .files
            .windows(2)
            .all(|w| self.arena.get(w[0].rel) <= self.arena.get(w[1].rel));
        if !sorted {
            order.sort_by(|&a, &b| self.rel_bytes(a).cmp(self.rel_bytes(b)));
        }
        order
    }
}

/// Plan the local paths of listed objects (every key checked; see [`PlannedFiles::push`]).
pub fn plan_local_paths(raw_prefix: &str, objects: &[ObjectInfo]) -> Result<PlannedFiles> {
    let mut plan = PlannedFiles::new(raw_prefix);
    for object in objects {
        plan.push(&object.path, object.size)?;
    }
    plan.finish()
}

/// Workspace prefix without leading/trailing slashes; `""` (or `"/"`) is the repository root.
pub fn normalize_prefix(prefix: &str) -> Result<String> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    check_relative(trimmed).map_err(|reason| {
        Error::InvalidArgument(format!(
            "workspace prefix {prefix:?} is not a valid object prefix: {reason}"
        ))
    })?;
    Ok(trimmed.to_owned())
}

/// The raw listing prefix for a normalized workspace prefix: `"a/b/"`, or `""` for the root.
/// The trailing slash keeps sibling prefixes (`a/b2/...`) out of the listing.
pub fn listing_prefix(normalized: &str) -> String {
    if normalized.is_empty() {
        String::new()
    } else {
        format!("{normalized}/")
    }
}

/// Every parent directory (relative, `/`-separated) the planned files need, parents first.
pub fn parent_directories(files: &PlannedFiles) -> Vec<String> {
    let mut dirs: Vec<String> = files
        .iter()
        .flat_map(|(rel, _)| ancestors(rel))
        .collect::<HashSet<_>>()
        .into_iter()
        .map(str::to_owned)
        .collect();
    // A parent is a strict prefix of its children, so sorting by depth puts it first.
    dirs.sort_by_key(|d| (d.matches('/').count(), d.clone()));
    dirs
}

fn check_relative(rel: &str) -> std::result::Result<(), String> {
    if rel.starts_with('/') {
        return Err("it is an absolute path".into());
    }
    if rel.contains('\0') {
        return Err("it contains a NUL byte".into());
    }
    if rel.contains('\\') {
        return Err("it contains a backslash".into());
    }
    for segment in rel.split('/') {
        match segment {
            "" => return Err("it has an empty path segment (// or a trailing /)".into()),
            "." | ".." => return Err(format!("it has a {segment:?} path segment")),
            s if s.len() > MAX_SEGMENT_BYTES => {
                return Err(format!(
                    "a path segment is longer than {MAX_SEGMENT_BYTES} bytes"
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Strict ancestors of a relative path: `a/b/c` → `a`, `a/b`.
fn ancestors(rel: &str) -> impl Iterator<Item = &str> {
    rel.match_indices('/').map(move |(i, _)| &rel[..i])
}

/// A key that is also another key's directory cannot be materialised. Checked by binary search
/// over the paths in order, so no per-file index is built.
fn check_file_directory_clashes(files: &PlannedFiles) -> Result<()> {
    let order = files.sorted_indices();
    let find = |path: &str| {
        order
            .binary_search_by(|&i| files.rel_bytes(i).cmp(path.as_bytes()))
            .ok()
            .map(|at| order[at])
    };
    for index in 0..files.len() {
        for dir in ancestors(files.rel_path(index)) {
            if let Some(other) = find(dir) {
                return Err(Error::unsafe_key(
                    &files.key(other),
                    format!(
                        "it is a file but {:?} needs it to be a directory",
                        files.key(index)
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(paths: &[&str]) -> Vec<ObjectInfo> {
        paths
            .iter()
            .map(|p| ObjectInfo {
                path: (*p).to_owned(),
                size: 1,
                checksum: String::new(),
                presigned: None,
                physical_address: String::new(),
            })
            .collect()
    }

    fn reason(prefix: &str, paths: &[&str]) -> String {
        match plan_local_paths(prefix, &objects(paths)) {
            Err(Error::UnsafeObjectKey { key, reason }) => format!("{key} | {reason}"),
            other => panic!("expected an unsafe key error, got {other:?}"),
        }
    }

    #[test]
    fn good_keys_map_under_the_prefix() {
        let plan = plan_local_paths(
            "audio/render/",
            &objects(&["audio/render/a.wav", "audio/render/ü/ñ/d.txt"]),
        )
        .unwrap();
        let rels: Vec<_> = plan.iter().map(|(rel, _)| rel).collect();
        assert_eq!(rels, ["a.wav", "ü/ñ/d.txt"]);
        let root = plan_local_paths("", &objects(&["x", "sub/.perago-attempt.json"])).unwrap();
        assert_eq!(
            root.len(),
            2,
            "the marker name is only reserved at the root"
        );
    }

    #[test]
    fn every_unsafe_shape_is_rejected_with_the_key_named() {
        let cases: &[(&str, &str)] = &[
            ("p/../x", "\"..\" path segment"),
            ("p/./x", "\".\" path segment"),
            ("p/a//b", "empty path segment"),
            ("p/a/", "empty path segment"),
            ("p/", "folder marker"),
            ("p//etc/passwd", "absolute"),
            ("p/a\\b", "backslash"),
            ("p/a\0b", "NUL"),
            ("p/.perago-attempt.json", "reserved"),
        ];
        for (key, expected) in cases {
            let text = reason("p/", &[key]);
            assert!(text.starts_with(key), "{text}");
            assert!(text.contains(expected), "{key}: {text}");
        }
        let long = format!("p/{}", "x".repeat(256));
        assert!(reason("p/", &[&long]).contains("longer than 255"));
        assert!(reason("", &["/abs"]).contains("absolute"));
    }

    #[test]
    fn file_and_directory_with_the_same_name_clash() {
        let text = reason("", &["a", "a/b"]);
        assert!(text.starts_with("a |"), "{text}");
        assert!(text.contains("\"a/b\""), "{text}");
        let text = reason("r/", &["r/x/y/z", "r/x/y"]);
        assert!(text.starts_with("r/x/y |"), "{text}");
        // Found in any listing order (a server is expected to list sorted, but need not).
        let text = reason("", &["b/c/d", "a", "b/c", "a.txt"]);
        assert!(text.starts_with("b/c |"), "{text}");
        assert!(text.contains("\"b/c/d\""), "{text}");
        // Names sharing a string prefix are not ancestors.
        plan_local_paths("", &objects(&["a", "ab/c", "a-b/c", "a.txt"])).unwrap();
    }

    #[test]
    fn prefixes_normalize_and_list_with_a_trailing_slash() {
        assert_eq!(normalize_prefix("").unwrap(), "");
        assert_eq!(normalize_prefix("/").unwrap(), "");
        assert_eq!(normalize_prefix("/audio/render/").unwrap(), "audio/render");
        assert_eq!(listing_prefix("audio/render"), "audio/render/");
        assert_eq!(listing_prefix(""), "");
        assert!(normalize_prefix("a/../b").is_err());
        assert!(normalize_prefix("a//b").is_err());
    }

    #[test]
    fn parent_directories_come_before_children() {
        let plan = plan_local_paths("", &objects(&["z/y/x/f", "a/f", "z/g"])).unwrap();
        assert_eq!(parent_directories(&plan), ["a", "z", "z/y", "z/y/x"]);
    }
}
