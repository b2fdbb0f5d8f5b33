//! Explicitly sized rayon pools that are safe across `fork`.
//!
//! rayon's global pool would be created once and its threads do not survive `fork()`, so a
//! worker process forked after the parent hashed anything would hang. Pools are therefore cached
//! per (process id, size) and rebuilt when the process id changes.

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// Number of worker threads used when the caller does not choose: the available cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

struct CachedPool {
    pid: u32,
    threads: usize,
    pool: Arc<rayon::ThreadPool>,
}

static POOLS: Mutex<Vec<CachedPool>> = Mutex::new(Vec::new());

/// A pool with `threads` workers (`None` or 0 = [`default_threads`]) valid in this process.
pub fn pool(threads: Option<usize>) -> Result<Arc<rayon::ThreadPool>> {
    let threads = match threads {
        Some(n) if n > 0 => n,
        _ => default_threads(),
    };
    let pid = std::process::id();
    let mut pools = POOLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Pools inherited from a parent process have no live threads here: drop them (leak-free,
    // since their threads do not exist in this process).
    pools.retain(|cached| cached.pid == pid);
    if let Some(cached) = pools.iter().find(|cached| cached.threads == threads) {
        return Ok(Arc::clone(&cached.pool));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("perago-{i}"))
        .build()
        .map_err(|e| Error::Pool(e.to_string()))?;
    let pool = Arc::new(pool);
    pools.push(CachedPool {
        pid,
        threads,
        pool: Arc::clone(&pool),
    });
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_are_sized_and_reused() {
        let a = pool(Some(3)).unwrap();
        assert_eq!(a.current_num_threads(), 3);
        let b = pool(Some(3)).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(pool(None).unwrap().current_num_threads(), default_threads());
    }
}
