//! Wall-clock time as Unix seconds, for what needs real dates: TURN
//! credentials, frp's auth timestamps, status "since" and the clock check.
//! Before 1970 (a board with no RTC and no NTP yet) it reads 0.

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
