//! Which object keys may become local files, and where. Pure logic: nothing touches the disk.
//!
//! Every key of a listing is checked before the first byte is written, so a single bad key fails
//! the whole download up front instead of leaving a half-written workspace.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::lakefs::ObjectInfo;
use crate::names::ATTEMPT_MARKER;

/// Longest file name most Linux file systems accept (`NAME_MAX`).
const MAX_SEGMENT_BYTES: usize = 255;

/// A listed object and the relative local path (`/`-separated) it will be written to: the key
/// without the listing prefix (kept once: a million-file plan holds each name once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedFile {
    pub key: String,
    rel_start: usize,
    pub size: u64,
}

impl PlannedFile {
    pub fn rel_path(&self) -> &str {
        &self.key[self.rel_start..]
    }

    /// The relative path, reusing the key's allocation.
    pub fn into_rel_path(self) -> String {
        let mut key = self.key;
        key.drain(..self.rel_start);
        key
    }
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

/// Map every object under `raw_prefix` to a safe relative path, or fail naming the first bad key.
pub fn plan_local_paths(raw_prefix: &str, objects: &[ObjectInfo]) -> Result<Vec<PlannedFile>> {
    let mut planned = Vec::with_capacity(objects.len());
    for object in objects {
        let rel = object.path.strip_prefix(raw_prefix).ok_or_else(|| {
            Error::unsafe_key(
                &object.path,
                format!("it is outside the prefix {raw_prefix:?}"),
            )
        })?;
        if rel.is_empty() {
            return Err(Error::unsafe_key(
                &object.path,
                "it names the prefix itself (a folder marker object)",
            ));
        }
        check_relative(rel).map_err(|reason| Error::unsafe_key(&object.path, reason))?;
        if rel == ATTEMPT_MARKER {
            return Err(Error::unsafe_key(
                &object.path,
                format!(
                    "{ATTEMPT_MARKER} at the workspace root is reserved for perago's attempt marker"
                ),
            ));
        }
        planned.push(PlannedFile {
            key: object.path.clone(),
            rel_start: object.path.len() - rel.len(),
            size: object.size,
        });
    }
    check_file_directory_clashes(&planned)?;
    Ok(planned)
}

/// Every parent directory (relative, `/`-separated) the planned files need, parents first.
pub fn parent_directories(files: &[PlannedFile]) -> Vec<String> {
    let mut dirs: Vec<String> = files
        .iter()
        .flat_map(|f| ancestors(f.rel_path()))
        .map(str::to_owned)
        .collect::<HashSet<_>>()
        .into_iter()
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

fn check_file_directory_clashes(files: &[PlannedFile]) -> Result<()> {
    let by_rel: std::collections::HashMap<&str, &str> = files
        .iter()
        .map(|f| (f.rel_path(), f.key.as_str()))
        .collect();
    for file in files {
        for dir in ancestors(file.rel_path()) {
            if let Some(other) = by_rel.get(dir) {
                return Err(Error::unsafe_key(
                    other,
                    format!("it is a file but {:?} needs it to be a directory", file.key),
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
        let rels: Vec<_> = plan.iter().map(PlannedFile::rel_path).collect();
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
        // Names sharing a string prefix are not ancestors.
        plan_local_paths("", &objects(&["a", "ab/c", "a-b/c"])).unwrap();
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
