//! Wall-clock helper: one place that reads the clock, as unix seconds.

/// Current unix time in whole seconds (0 if the clock is before 1970, which never happens in
/// practice but must not panic).
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
