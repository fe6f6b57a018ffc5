//! The `Date` field's value, formatted once per second for the responses both
//! drivers (the event loop and the blocking servers) write. RFC 9110 §6.6.1: an
//! origin server with a clock MUST send `Date` in its 2xx, 3xx and 4xx responses.
//! [`crate::http::date`] turns a unix time into text without reading the clock
//! (sans-I/O); the clock is read here, by the driver.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::http::date::HttpDate;

/// The `Date` field's value, formatted once per second.
pub(super) struct DateCache {
    /// The unix second it was formatted for.
    secs: u64,
    /// The formatted date.
    pub(super) date: HttpDate,
}

impl DateCache {
    /// The date now.
    pub(super) fn now() -> DateCache {
        let secs = unix_now();
        DateCache {
            secs,
            date: HttpDate::from_unix(secs),
        }
    }

    /// Formats the date again if the clock has moved to another second.
    pub(super) fn refresh(&mut self) {
        let secs = unix_now();
        if secs != self.secs {
            self.secs = secs;
            self.date = HttpDate::from_unix(secs);
        }
    }
}

/// Seconds since the Unix epoch, 0 if the clock is set before it.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
