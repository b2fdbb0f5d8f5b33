//! Micro-benchmarks of the snapshot engine on a small generated tree (2,000 × 4 KiB).
//! The end-to-end comparisons against b3sum live in `perago bench` (see benches/README.md).

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use perago_core::{detect_changes, CancelToken, DiffOptions, Snapshot, SnapshotOptions};

fn tree() -> PathBuf {
    let root = std::env::temp_dir().join(format!("perago-criterion-{}", std::process::id()));
    if !root.exists() {
        for dir in 0..20 {
            let dir_path = root.join(format!("d{dir:02}"));
            std::fs::create_dir_all(&dir_path).unwrap();
            for file in 0..100 {
                let data: Vec<u8> = (0..4096u32)
                    .map(|i| (i * 31 + file * 7 + dir) as u8)
                    .collect();
                std::fs::write(dir_path.join(format!("f{file:03}")), data).unwrap();
            }
        }
    }
    root
}

fn benches(c: &mut Criterion) {
    let root = tree();
    let options = SnapshotOptions::default();
    let cancel = CancelToken::new();
    c.bench_function("snapshot 2000x4KiB", |b| {
        b.iter(|| Snapshot::take(&root, &options, &cancel).unwrap());
    });
    let base = Snapshot::take(&root, &options, &cancel).unwrap();
    let diff = DiffOptions {
        racy_window_ns: 0,
        ..DiffOptions::default()
    };
    c.bench_function("detect_changes unchanged 2000", |b| {
        b.iter(|| detect_changes(&root, &base, &diff, &cancel).unwrap());
    });
    c.bench_function("stat_walk 2000", |b| {
        b.iter(|| perago_core::stat_walk(&root, None, &cancel).unwrap());
    });
    std::fs::remove_dir_all(&root).unwrap();
}

criterion_group! {
    name = snapshot;
    config = Criterion::default().sample_size(20);
    targets = benches
}
criterion_main!(snapshot);
