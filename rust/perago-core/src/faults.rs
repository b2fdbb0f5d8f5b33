//! Named fault points of the engine, inert unless a test enables them through
//! `PERAGO_FAULT_GATE_DIR` (the same protocol as `perago.attempt.faults`, `hold` files only).
//!
//! With the variable set to a directory, [`reach`] of point `NAME` finds `NAME.hold` there,
//! writes `NAME.reached` (the pid) and waits until `NAME.hold` is removed or the transfer is
//! cancelled. Without the variable it returns at once: production code carries the points,
//! never their effect.

use std::path::PathBuf;
use std::time::Duration;

use crate::cancel::CancelToken;

pub const FAULT_GATE_ENV: &str = "PERAGO_FAULT_GATE_DIR";

/// Pass fault point `name`; see the module documentation.
pub fn reach(name: &str, cancel: &CancelToken) {
    let Some(root) = std::env::var_os(FAULT_GATE_ENV).filter(|v| !v.is_empty()) else {
        return;
    };
    let root = PathBuf::from(root);
    let hold = root.join(format!("{name}.hold"));
    if !hold.exists() {
        return;
    }
    let temporary = root.join(format!(".{name}.reached.{}", std::process::id()));
    if std::fs::write(&temporary, format!("{}\n", std::process::id())).is_ok() {
        let _ = std::fs::rename(&temporary, root.join(format!("{name}.reached")));
    }
    while hold.exists() && !cancel.is_cancelled() {
        std::thread::sleep(Duration::from_millis(20));
    }
}
