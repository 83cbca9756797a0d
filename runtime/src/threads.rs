//! How many CPU threads a detector uses: `--threads N` where a command has it, else
//! `HOOD_CPU_THREADS`, else the available parallelism. Shared by the fast CPU backend (threads
//! inside each op) and the reference backend (a batch split into per-thread chunks).

/// Environment variable: number of CPU threads per batch (a positive integer).
pub const THREADS_ENV: &str = "HOOD_CPU_THREADS";

/// The thread count from `HOOD_CPU_THREADS` when it is a positive integer (a warning otherwise),
/// else [`std::thread::available_parallelism`].
pub fn default_threads() -> usize {
    if let Ok(v) = std::env::var(THREADS_ENV) {
        match parse_positive(&v) {
            Ok(t) => return t,
            Err(_) => log::warn!("{THREADS_ENV}={v:?} is not a positive integer; ignored"),
        }
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `requested` when given (0 counts as 1), else [`default_threads`].
pub fn resolve(requested: Option<usize>) -> usize {
    requested.map_or_else(default_threads, |t| t.max(1))
}

/// A `--threads` value (or `HOOD_CPU_THREADS`) that is not a positive integer; holds it as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a positive integer, got '{0}'")]
pub struct NotPositive(pub String);

/// Parses a `--threads` value: a positive integer (the error says what was given).
pub fn parse_positive(s: &str) -> Result<usize, NotPositive> {
    match s.trim().parse::<usize>() {
        Ok(t) if t > 0 => Ok(t),
        _ => Err(NotPositive(s.to_string())),
    }
}
