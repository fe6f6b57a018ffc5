//! The `Date` a server puts in every response, as an IMF-fixdate (RFC 9110 §5.6.7).
//!
//! ```text
//! IMF-fixdate  = day-name "," SP date1 SP time-of-day SP GMT
//!              ; fixed length/zone/capitalization subset of the format
//!              ; see Section 3.3 of [RFC5322]
//! day-name     = %s"Mon" / %s"Tue" / %s"Wed" / %s"Thu" / %s"Fri" / %s"Sat" / %s"Sun"
//! date1        = day SP month SP year       ; e.g., 02 Jun 1982
//! time-of-day  = hour ":" minute ":" second ; 00:00:00 - 23:59:60 (leap second)
//! ```
//!
//! Example from the RFC: `Sun, 06 Nov 1994 08:49:37 GMT`. It is always 29 bytes.
//!
//! RFC 9110 §6.6.1: an origin server with a clock MUST send `Date` in its 2xx, 3xx and
//! 4xx responses. Formatting it costs a few hundred nanoseconds, so the driver formats
//! it once per second and reuses the bytes; this module only turns a unix time that
//! it is *given* into text. It never reads the clock (sans-I/O), which also makes it
//! easy to test against fixed instants.
//!
//! The calendar arithmetic is Howard Hinnant's `civil_from_days`
//! (<https://howardhinnant.github.io/date_algorithms.html>): days since 1970-01-01 to
//! a proleptic Gregorian year, month and day, with no tables and no loops.

use std::fmt;

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const IMF_FIXDATE_LEN: usize = 29;

/// The largest unix time with a four-digit year: 9999-12-31 23:59:59 UTC.
/// Later times are clamped to it, since the format has room for four digits only.
const MAX_UNIX_SECS: u64 = 253_402_300_799;

const DAY_NAMES: [&[u8; 3]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
const MONTH_NAMES: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// A formatted IMF-fixdate, held inline (no allocation).
///
/// ```
/// use wirepatterns::http::date::HttpDate;
///
/// assert_eq!(HttpDate::from_unix(784_111_777).as_str(), "Sun, 06 Nov 1994 08:49:37 GMT");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HttpDate {
    /// The 29 ASCII bytes of the date, ready to be copied into a response head.
    bytes: [u8; IMF_FIXDATE_LEN],
}

impl HttpDate {
    /// Formats `secs` seconds since 1970-01-01T00:00:00Z. Times after the year 9999
    /// are clamped to its last second.
    pub fn from_unix(secs: u64) -> HttpDate {
        let secs = secs.min(MAX_UNIX_SECS);
        let days = secs / 86_400;
        let in_day = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        // 1970-01-01 was a Thursday; DAY_NAMES starts on Sunday.
        let weekday = ((days + 4) % 7) as usize;

        let mut b = *b"Thu, 01 Jan 1970 00:00:00 GMT";
        b[0..3].copy_from_slice(DAY_NAMES[weekday]);
        put2(&mut b[5..7], day);
        b[8..11].copy_from_slice(MONTH_NAMES[(month - 1) as usize]);
        put2(&mut b[12..14], year / 100);
        put2(&mut b[14..16], year % 100);
        put2(&mut b[17..19], in_day / 3600);
        put2(&mut b[20..22], in_day / 60 % 60);
        put2(&mut b[23..25], in_day % 60);
        HttpDate { bytes: b }
    }

    /// The date as bytes, for copying into a response head.
    pub fn as_bytes(&self) -> &[u8; IMF_FIXDATE_LEN] {
        &self.bytes
    }

    /// The date as text.
    pub fn as_str(&self) -> &str {
        // Every byte written above is ASCII.
        std::str::from_utf8(&self.bytes).unwrap_or("Thu, 01 Jan 1970 00:00:00 GMT")
    }
}

impl fmt::Display for HttpDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for HttpDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HttpDate({:?})", self.as_str())
    }
}

/// Writes `n` (below 100) as two ASCII digits into a two-byte slice.
fn put2(out: &mut [u8], n: u64) {
    if let [tens, ones] = out {
        *tens = b'0' + (n / 10 % 10) as u8;
        *ones = b'0' + (n % 10) as u8;
    }
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic Gregorian.
///
/// The algorithm shifts the year to start on March 1st, so the leap day is the last
/// day of the shifted year, then splits days into 400-year eras (146 097 days each).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Only non-negative day counts reach here (unix time is unsigned), so the era
    // arithmetic needs no negative branch.
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z / 146_097;
    let doe = z - era * 146_097; // day of era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of (March-based) year, [0, 365]
    let mp = (5 * doy + 2) / 153; // March-based month, [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9110_5_6_7_example_date() {
        // The example in RFC 9110 §5.6.7.
        assert_eq!(
            HttpDate::from_unix(784_111_777).as_str(),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }

    #[test]
    fn unix_epoch() {
        assert_eq!(
            HttpDate::from_unix(0).as_str(),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }

    #[test]
    fn leap_days_and_century_rules() {
        // 2000 was a leap year (divisible by 400), 2100 will not be.
        assert_eq!(
            HttpDate::from_unix(951_782_400).as_str(),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            HttpDate::from_unix(4_107_542_400).as_str(),
            "Mon, 01 Mar 2100 00:00:00 GMT"
        );
        assert_eq!(
            HttpDate::from_unix(1_709_251_199).as_str(),
            "Thu, 29 Feb 2024 23:59:59 GMT"
        );
    }

    #[test]
    fn clamped_to_year_9999() {
        assert_eq!(
            HttpDate::from_unix(u64::MAX).as_str(),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
    }

    #[test]
    fn agrees_with_a_day_by_day_walk() {
        // The reference: walk the calendar one day at a time from 1970.
        let mut year = 1970u64;
        let mut month = 1u64;
        let mut day = 1u64;
        for days in 0..(366 * 450) {
            assert_eq!(civil_from_days(days), (year, month, day), "day {days}");
            let leap =
                (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
            let len = match month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            day += 1;
            if day > len {
                day = 1;
                month += 1;
                if month > 12 {
                    month = 1;
                    year += 1;
                }
            }
        }
    }
}
