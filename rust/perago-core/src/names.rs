//! Names perago reserves inside a workspace, defined once for the engine and for Python (the
//! binding exports each as a constant of `perago._native`).

/// The attempt marker file perago keeps at the root of an attempt's workspace. It is reserved
/// there (and only there): snapshots and change detection skip it, and a download refuses an
/// object that would land on it.
pub const ATTEMPT_MARKER: &str = ".perago-attempt.json";
