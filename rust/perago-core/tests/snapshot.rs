//! End-to-end behaviour of snapshots and change detection on real temporary trees.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use perago_core::{
    detect_changes, CancelToken, DiffOptions, EntryKind, Error, NodeKind, Snapshot,
    SnapshotOptions, ATTEMPT_MARKER,
};

struct TempTree(PathBuf);

impl TempTree {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("perago-core-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempTree(dir)
    }
    fn write(&self, rel: &str, data: &[u8]) {
        let path = self.0.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn take(root: &Path) -> Snapshot {
    Snapshot::take(root, &SnapshotOptions::default(), &CancelToken::new()).unwrap()
}

/// A diff that trusts every timestamp (no racy window), to isolate the stat rules.
fn diff_strict(root: &Path, base: &Snapshot) -> perago_core::ChangeSet {
    let options = DiffOptions {
        threads: Some(2),
        racy_window_ns: i64::MIN / 2,
    };
    detect_changes(root, base, &options, &CancelToken::new()).unwrap()
}

fn names(list: &[OsString]) -> Vec<&str> {
    list.iter().map(|p| p.to_str().unwrap()).collect()
}

fn set_mtime(path: &Path, when: SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

#[test]
fn snapshot_records_files_symlinks_and_skips_root_marker() {
    let tree = TempTree::new("snap");
    tree.write("b.txt", b"bee");
    tree.write("a/deep/x.bin", b"");
    tree.write("a.b", b"dot");
    tree.write(ATTEMPT_MARKER, b"{}");
    tree.write("sub/.perago-attempt.json", b"nested markers are data");
    symlink("b.txt", tree.0.join("link")).unwrap();
    let snap = take(&tree.0);
    let paths: Vec<_> = snap
        .iter()
        .map(|e| e.path().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        paths,
        [
            "a.b",
            "a/deep/x.bin",
            "b.txt",
            "link",
            "sub/.perago-attempt.json"
        ]
    );
    let b = snap.get(b"b.txt").unwrap();
    assert_eq!(b.kind, EntryKind::File);
    assert_eq!(b.size, 3);
    assert_eq!(&b.hash, blake3::hash(b"bee").as_bytes());
    let link = snap.get(b"link").unwrap();
    assert_eq!(link.kind, EntryKind::Symlink);
    assert_eq!(link.target().unwrap(), Path::new("b.txt"));
    assert_eq!(snap.file_count(), 4);
    assert_eq!(snap.symlink_count(), 1);
    assert_eq!(snap.total_bytes(), 3 + 3 + 23);
    assert!(snap.get(ATTEMPT_MARKER.as_bytes()).is_none());
    assert!(snap.heap_bytes() > 0);
}

#[test]
fn fifos_are_reported_unsupported() {
    let tree = TempTree::new("fifo");
    tree.write("ok", b"1");
    let fifo = tree.0.join("pipe");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let snap = take(&tree.0);
    let unsupported: Vec<_> = snap.unsupported().collect();
    assert_eq!(unsupported, [(Path::new("pipe"), NodeKind::Fifo)]);
    assert_eq!(snap.len(), 1);
}

#[test]
fn root_errors_name_the_path() {
    let tree = TempTree::new("roots");
    tree.write("file", b"x");
    let opts = SnapshotOptions::default();
    let missing = Snapshot::take(&tree.0.join("nope"), &opts, &CancelToken::new()).unwrap_err();
    assert!(
        matches!(&missing, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    );
    assert!(missing.to_string().contains("nope"));
    let file = Snapshot::take(&tree.0.join("file"), &opts, &CancelToken::new()).unwrap_err();
    assert!(matches!(file, Error::NotADirectory { .. }));
}

#[test]
fn cancelled_token_stops_the_walk() {
    let tree = TempTree::new("cancel");
    tree.write("a", b"1");
    let cancel = CancelToken::new();
    cancel.cancel();
    let err = Snapshot::take(&tree.0, &SnapshotOptions::default(), &cancel).unwrap_err();
    assert!(matches!(err, Error::Cancelled));
}

#[test]
fn diff_classifies_changes() {
    let tree = TempTree::new("diff");
    tree.write("same", b"unchanged");
    tree.write("grow", b"12");
    tree.write("gone", b"bye!");
    tree.write("flip", b"file");
    tree.write("rewrite", b"identical");
    tree.write("chmod", b"mode");
    let base = take(&tree.0);
    assert!(diff_strict(&tree.0, &base).is_empty());

    tree.write("grow", b"123");
    fs::remove_file(tree.0.join("gone")).unwrap();
    tree.write("new/file", b"hello");
    fs::remove_file(tree.0.join("flip")).unwrap();
    symlink("same", tree.0.join("flip")).unwrap();
    tree.write("rewrite", b"identical");
    fs::set_permissions(tree.0.join("chmod"), fs::Permissions::from_mode(0o600)).unwrap();
    tree.write(ATTEMPT_MARKER, b"{\"attempt\": 1}");

    let changes = diff_strict(&tree.0, &base);
    assert_eq!(names(&changes.added), ["new/file"]);
    assert_eq!(names(&changes.modified), ["grow"]);
    assert_eq!(names(&changes.removed), ["gone"]);
    assert_eq!(names(&changes.type_changed), ["flip"]);
    assert_eq!(changes.added_bytes, 5);
    assert_eq!(changes.modified_bytes, 3);
    assert_eq!(changes.removed_bytes, 4);
    // "rewrite" (identical bytes) and "chmod" were candidates but are not changes.
    assert!(changes.rehashed >= 2);
}

#[test]
fn same_size_edit_with_restored_mtime_is_detected_through_ctime() {
    let tree = TempTree::new("ctime");
    tree.write("f", b"aaaa");
    let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    set_mtime(&tree.0.join("f"), old);
    let base = take(&tree.0);
    std::thread::sleep(std::time::Duration::from_millis(20));
    tree.write("f", b"bbbb");
    set_mtime(&tree.0.join("f"), old);
    let changes = diff_strict(&tree.0, &base);
    assert_eq!(names(&changes.modified), ["f"]);
}

#[test]
fn unchanged_old_files_are_not_rehashed_but_racy_ones_are() {
    let tree = TempTree::new("racy");
    tree.write("old", b"x");
    tree.write("fresh", b"y");
    let base = take(&tree.0);
    let strict = diff_strict(&tree.0, &base);
    assert_eq!(strict.rehashed, 0);
    assert_eq!(strict.scanned, 2);
    let default =
        detect_changes(&tree.0, &base, &DiffOptions::default(), &CancelToken::new()).unwrap();
    assert_eq!(default.rehashed, 2, "files written just now are racy");
    assert!(default.is_empty());
}

#[test]
fn known_hashes_build_a_baseline_without_reading() {
    let tree = TempTree::new("known");
    tree.write("a/x", b"xx");
    tree.write("b", b"bbb");
    let known = vec![
        ("b".to_owned(), *blake3::hash(b"bbb").as_bytes()),
        ("a/x".to_owned(), *blake3::hash(b"xx").as_bytes()),
    ];
    let opts = SnapshotOptions::default();
    let base = Snapshot::from_known_hashes(&tree.0, known, &opts, &CancelToken::new()).unwrap();
    let cold = take(&tree.0);
    let pairs = |s: &Snapshot| {
        s.iter()
            .map(|e| (e.path().to_owned(), e.hash, e.size, e.ino))
            .collect::<Vec<_>>()
    };
    assert_eq!(pairs(&base), pairs(&cold));
    assert!(diff_strict(&tree.0, &base).is_empty());
    // blake3::Hash values are accepted as they come from a hasher.
    let hashed = vec![("b", blake3::hash(b"bbb")), ("a/x", blake3::hash(b"xx"))];
    let same = Snapshot::from_known_hashes(&tree.0, hashed, &opts, &CancelToken::new()).unwrap();
    assert_eq!(pairs(&same), pairs(&cold));

    // A wrong hash is trusted (no read) — the diff then reports the file as modified when racy.
    let lie = vec![("b", [7u8; 32])];
    let base = Snapshot::from_known_hashes(&tree.0, lie, &opts, &CancelToken::new()).unwrap();
    let changes =
        detect_changes(&tree.0, &base, &DiffOptions::default(), &CancelToken::new()).unwrap();
    assert_eq!(names(&changes.modified), ["b"]);
    assert_eq!(names(&changes.added), ["a/x"]);

    for bad in ["", "/abs", "a/../b", "a//b", "./b"] {
        let err =
            Snapshot::from_known_hashes(&tree.0, [(bad, [0u8; 32])], &opts, &CancelToken::new())
                .unwrap_err();
        assert!(matches!(err, Error::InvalidPath { .. }), "{bad}: {err}");
    }
    let dup = [("b", [0u8; 32]), ("b", [0u8; 32])];
    let err = Snapshot::from_known_hashes(&tree.0, dup, &opts, &CancelToken::new()).unwrap_err();
    assert!(err.to_string().contains("listed twice"));
    let err = Snapshot::from_known_hashes(
        &tree.0,
        [("missing", [0u8; 32])],
        &opts,
        &CancelToken::new(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Vanished { .. }));
    assert!(err.to_string().contains("missing"));
    let err = Snapshot::from_known_hashes(&tree.0, [("a", [0u8; 32])], &opts, &CancelToken::new())
        .unwrap_err();
    assert!(err.to_string().contains("found a directory"), "{err}");
}
