//! HTTP-dates (RFC 9110 §5.6.7) and the `Retry-After` header (RFC 9110 §10.2.3).
//!
//! Pure: no clock is read here. The caller passes the current time, and a `Retry-After` date
//! is measured from the response's own `Date` header when there is one.
//!
//! What [`parse_http_date`] accepts, and why:
//! - the three forms RFC 9110 §5.6.7 requires recipients to accept: IMF-fixdate
//!   (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form
//!   (`Sunday, 06-Nov-94 08:49:37 GMT`) and ANSI C's asctime (`Sun Nov  6 08:49:37 1994`);
//! - exactly their grammar: names are case-sensitive (the ABNF spells them with `%s`), every
//!   field has its fixed width and separator, and `GMT` is required where the grammar has it;
//! - optional whitespace (`OWS`: spaces and tabs) around the whole value, which header
//!   parsers do not always strip;
//! - the weekday must be a weekday name of the right form, but it is not checked against the
//!   date: RFC 9110 §5.6.7 lets recipients ignore it, and a wrong weekday says nothing about
//!   which of the two fields is the mistake;
//! - dates from 1970 on only: the result is Unix seconds, unsigned.
//!
//! The parser works on bytes and compares them with ASCII literals, so no input (non-ASCII
//! text included) can make it slice a string inside a character, overflow or panic.

/// Seconds in a day; Unix time has no leap seconds.
const SECONDS_PER_DAY: u64 = 86_400;

/// Weekday names of IMF-fixdate and asctime (`day-name`), Monday first.
const DAY_NAMES: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];

/// Weekday names of the RFC 850 form (`day-name-l`), Monday first.
const LONG_DAY_NAMES: [&[u8]; 7] = [
    b"Monday",
    b"Tuesday",
    b"Wednesday",
    b"Thursday",
    b"Friday",
    b"Saturday",
    b"Sunday",
];

/// Month names (`month`), January first.
const MONTH_NAMES: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Parses an HTTP-date (RFC 9110 §5.6.7) into Unix seconds (seconds since
/// 1970-01-01T00:00:00Z).
///
/// Accepts the IMF-fixdate, RFC 850 and asctime forms, with optional spaces or tabs around
/// the value (see the module documentation for what exactly is accepted).
///
/// - Two-digit RFC 850 years: RFC 9110 says a year that appears to be more than 50 years in
///   the future is in the past century. This function has no clock, so it fixes the pivot
///   instead: `70`–`99` are 1970–1999 and `00`–`69` are 2000–2069. The form has been
///   obsolete since 1996, so dates written in it lie near that window's start.
/// - A leap second (`:60`, which the grammar allows) is counted as the first second of the
///   next minute, as POSIX `timegm` does: Unix time has no leap seconds, so `23:59:60` and
///   the next day's `00:00:00` give the same number.
///
/// Returns `None` when the text is none of the three forms, when a field is out of range
/// (day of month beyond the month's length, leap years included; hour above 23; minute
/// above 59; second above 60), or when the year is before 1970. Never panics.
pub fn parse_http_date(text: &str) -> Option<u64> {
    let mut input = Cursor(trim_ows(text).as_bytes());
    let day_name = input.take_while(|byte| byte.is_ascii_alphabetic());
    let civil = if DAY_NAMES.contains(&day_name) {
        if input.literal(b", ") {
            imf_fixdate(&mut input)?
        } else if input.literal(b" ") {
            asctime_date(&mut input)?
        } else {
            return None;
        }
    } else if LONG_DAY_NAMES.contains(&day_name) && input.literal(b", ") {
        rfc850_date(&mut input)?
    } else {
        return None;
    };
    if !input.is_empty() {
        return None;
    }
    civil.unix_seconds()
}

/// The delay a `Retry-After` header value asks for (RFC 9110 §10.2.3), in seconds.
///
/// - `delay-seconds` (`1*DIGIT`) is returned as is; a number too large for `u64` saturates
///   at `u64::MAX` rather than failing, since it still means "not any time soon".
/// - An HTTP-date gives the seconds from the reference time until that date, or `0` when it
///   has passed. The reference is `date`, the same response's `Date` header, when it is
///   present and a valid HTTP-date, else `now` (Unix seconds). Measuring from the server's
///   own `Date` makes the result the delay the server meant even when the client's clock
///   is wrong: both dates come from the server's clock, so the skew cancels out. Only
///   without a usable `Date` does the client's clock (`now`) have to stand in.
///
/// Optional whitespace (spaces and tabs) around the value is accepted.
///
/// Returns `None` for anything else: an empty value, a sign (`-1`, `+5`), a fraction
/// (`1.5`), or text that is not an HTTP-date. Never panics.
pub fn retry_after_seconds(value: &str, date: Option<&str>, now: u64) -> Option<u64> {
    let value = trim_ows(value);
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        return Some(value.bytes().fold(0u64, |seconds, digit| {
            seconds
                .checked_mul(10)
                .and_then(|tens| tens.checked_add(u64::from(digit - b'0')))
                .unwrap_or(u64::MAX)
        }));
    }
    let target = parse_http_date(value)?;
    let reference = date.and_then(parse_http_date).unwrap_or(now);
    Some(target.saturating_sub(reference))
}

/// Strips optional whitespace (`OWS`: spaces and horizontal tabs, RFC 9110 §5.6.3) from both
/// ends. Both are ASCII, so the result is a valid `&str`.
fn trim_ows(text: &str) -> &str {
    text.trim_matches([' ', '\t'])
}

/// Whether `year` is a leap year in the proleptic Gregorian calendar.
fn is_leap_year(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

/// The number of days in `month` (1–12) of `year`; 0 for a month out of range.
fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (negative before it).
///
/// Howard Hinnant's `days_from_civil` ("chrono-Compatible Low-Level Date Algorithms"): the
/// year is shifted to start in March, so the leap day is the last day of its year, and the
/// calendar repeats every 400-year era of 146 097 days. `month` is 1–12 and `day` 1–31;
/// any `year` a `u32` holds fits the `i64` arithmetic.
fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400); // [0, 399]
    let month_from_march = i64::from((month + 9) % 12); // March = 0, February = 11
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719 468: days from 0000-03-01 to 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// A date and time of day as written, before validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Civil {
    year: u32,
    /// 1–12 (the parser only produces these).
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl Civil {
    /// Unix seconds, or `None` when a field is out of range or the date is before 1970.
    fn unix_seconds(self) -> Option<u64> {
        let in_range = self.year >= 1970
            && (1..=days_in_month(self.year, self.month)).contains(&self.day)
            && self.hour <= 23
            && self.minute <= 59
            && self.second <= 60;
        if !in_range {
            return None;
        }
        let days = u64::try_from(days_from_civil(self.year, self.month, self.day)).ok()?;
        let time_of_day =
            u64::from(self.hour) * 3600 + u64::from(self.minute) * 60 + u64::from(self.second);
        days.checked_mul(SECONDS_PER_DAY)?.checked_add(time_of_day)
    }
}

/// The rest of an IMF-fixdate after `day-name ", "`: `DD Mon YYYY HH:MM:SS GMT`.
fn imf_fixdate(input: &mut Cursor<'_>) -> Option<Civil> {
    let day = input.digits(2)?;
    input.expect(b" ")?;
    let month = input.month()?;
    input.expect(b" ")?;
    let year = input.digits(4)?;
    input.expect(b" ")?;
    let (hour, minute, second) = input.time_of_day()?;
    input.expect(b" GMT")?;
    Some(Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
}

/// The rest of an RFC 850 date after `day-name-l ", "`: `DD-Mon-YY HH:MM:SS GMT`.
fn rfc850_date(input: &mut Cursor<'_>) -> Option<Civil> {
    let day = input.digits(2)?;
    input.expect(b"-")?;
    let month = input.month()?;
    input.expect(b"-")?;
    let two_digit_year = input.digits(2)?;
    let year = if two_digit_year >= 70 {
        1900 + two_digit_year
    } else {
        2000 + two_digit_year
    };
    input.expect(b" ")?;
    let (hour, minute, second) = input.time_of_day()?;
    input.expect(b" GMT")?;
    Some(Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
}

/// The rest of an asctime date after `day-name " "`: `Mon DD HH:MM:SS YYYY`, where the day
/// is two digits or a space and one digit.
fn asctime_date(input: &mut Cursor<'_>) -> Option<Civil> {
    let month = input.month()?;
    input.expect(b" ")?;
    let day = if input.literal(b" ") {
        input.digits(1)?
    } else {
        input.digits(2)?
    };
    input.expect(b" ")?;
    let (hour, minute, second) = input.time_of_day()?;
    input.expect(b" ")?;
    let year = input.digits(4)?;
    Some(Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
}

/// The unread rest of the input.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    /// Whether everything has been read.
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Consumes `expected` if the input starts with it; reports whether it did.
    fn literal(&mut self, expected: &[u8]) -> bool {
        match self.0.strip_prefix(expected) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    /// Consumes `expected`, or fails.
    fn expect(&mut self, expected: &[u8]) -> Option<()> {
        self.literal(expected).then_some(())
    }

    /// Consumes and returns the longest prefix whose bytes satisfy `keep`.
    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a [u8] {
        let length = self.0.iter().take_while(|&&byte| keep(byte)).count();
        let (taken, rest) = self.0.split_at(length);
        self.0 = rest;
        taken
    }

    /// Consumes exactly `count` ASCII digits (at most 4, so the value fits) and returns
    /// their value.
    fn digits(&mut self, count: usize) -> Option<u32> {
        let (digits, rest) = self.0.split_at_checked(count)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.0 = rest;
        Some(
            digits
                .iter()
                .fold(0, |value, digit| value * 10 + u32::from(digit - b'0')),
        )
    }

    /// Consumes a month name and returns its number, 1–12.
    fn month(&mut self) -> Option<u32> {
        let (name, rest) = self.0.split_at_checked(3)?;
        let index = MONTH_NAMES.iter().position(|month| *month == name)?;
        self.0 = rest;
        u32::try_from(index + 1).ok()
    }

    /// Consumes `HH:MM:SS` (`time-of-day`); the ranges are checked later.
    fn time_of_day(&mut self) -> Option<(u32, u32, u32)> {
        let hour = self.digits(2)?;
        self.expect(b":")?;
        let minute = self.digits(2)?;
        self.expect(b":")?;
        let second = self.digits(2)?;
        Some((hour, minute, second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    /// RFC 9110 §5.6.7's example instant, 1994-11-06T08:49:37Z.
    const RFC_EXAMPLE: u64 = 784_111_777;

    const SHORT_DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const LONG_DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];

    /// Days since 1970-01-01, counted the slow way: whole years, then whole months, with
    /// month lengths from a table. In 1970–2100 a year is a leap year when divisible by 4,
    /// except 2100, which is how this reference decides it (unlike the code under test).
    fn reference_days(year: u32, month: u32, day: u32) -> u64 {
        assert!((1970..=2100).contains(&year));
        let mut days = 0u64;
        for y in 1970..year {
            days += if reference_is_leap(y) { 366 } else { 365 };
        }
        for m in 1..month {
            days += u64::from(reference_month_length(m, reference_is_leap(year)));
        }
        days + u64::from(day) - 1
    }

    /// The leap rule as it plays out in 1970–2100.
    fn reference_is_leap(year: u32) -> bool {
        year.is_multiple_of(4) && year != 2100
    }

    fn reference_month_length(month: u32, leap: bool) -> u32 {
        const LENGTHS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let length = LENGTHS[month as usize - 1];
        if month == 2 && leap { 29 } else { length }
    }

    /// Index into the Monday-first name tables; 1970-01-01 was a Thursday.
    fn weekday_index(days: u64) -> usize {
        ((days + 3) % 7) as usize
    }

    #[test]
    fn rfc_9110_examples_in_all_three_forms() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(RFC_EXAMPLE)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(RFC_EXAMPLE)
        );
        assert_eq!(
            parse_http_date("Sun Nov  6 08:49:37 1994"),
            Some(RFC_EXAMPLE)
        );
    }

    #[test]
    fn well_known_instants() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Sat, 01 Jan 2000 00:00:00 GMT"),
            Some(946_684_800)
        );
        // The 32-bit signed overflow instant.
        assert_eq!(
            parse_http_date("Tue, 19 Jan 2038 03:14:08 GMT"),
            Some(2_147_483_648)
        );
        assert_eq!(
            parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(253_402_300_799)
        );
    }

    #[test]
    fn every_month_1970_to_2100_matches_a_day_count() {
        let mut checked = 0;
        for year in 1970..=2100u32 {
            for month in 1..=12u32 {
                let last = reference_month_length(month, reference_is_leap(year));
                for day in [1, 15, 28, last] {
                    let days = reference_days(year, month, day);
                    let expected = days * 86_400 + 23 * 3600 + 59 * 60 + 58;
                    let weekday = weekday_index(days);
                    let month_name = MONTHS[month as usize - 1];
                    let imf = format!(
                        "{}, {day:02} {month_name} {year} 23:59:58 GMT",
                        SHORT_DAYS[weekday]
                    );
                    assert_eq!(parse_http_date(&imf), Some(expected), "{imf}");
                    let asctime = format!(
                        "{} {month_name} {day:>2} 23:59:58 {year}",
                        SHORT_DAYS[weekday]
                    );
                    assert_eq!(parse_http_date(&asctime), Some(expected), "{asctime}");
                    if year <= 2069 {
                        let rfc850 = format!(
                            "{}, {day:02}-{month_name}-{:02} 23:59:58 GMT",
                            LONG_DAYS[weekday],
                            year % 100
                        );
                        assert_eq!(parse_http_date(&rfc850), Some(expected), "{rfc850}");
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 131 * 12 * 4);
    }

    #[test]
    fn february_29_only_in_leap_years() {
        for year in 1970..=2100u32 {
            let text = format!("Mon, 29 Feb {year} 12:00:00 GMT");
            let expected =
                reference_is_leap(year).then(|| reference_days(year, 2, 29) * 86_400 + 12 * 3600);
            assert_eq!(parse_http_date(&text), expected, "{text}");
        }
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"),
            Some(951_782_400)
        );
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT"),
            Some(1_709_164_800)
        );
        assert_eq!(
            parse_http_date("Wed, 01 Mar 2023 00:00:00 GMT"),
            Some(1_677_628_800)
        );
        assert_eq!(parse_http_date("Wed, 29 Feb 2023 00:00:00 GMT"), None);
        assert_eq!(parse_http_date("Mon, 29 Feb 2100 00:00:00 GMT"), None);
        // 1900 is before 1970, so it is refused whatever the day; the leap rule itself:
        assert_eq!(parse_http_date("Thu, 29 Feb 1900 00:00:00 GMT"), None);
        assert!(!is_leap_year(1900));
        assert!(is_leap_year(2000));
        assert!(!is_leap_year(2100));
        assert!(!is_leap_year(2023));
        assert!(is_leap_year(2024));
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
    }

    #[test]
    fn days_from_civil_before_and_after_the_epoch() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(0, 3, 1), -719_468);
    }

    #[test]
    fn day_of_month_limits() {
        assert_eq!(
            parse_http_date("Wed, 31 Jan 2024 00:00:00 GMT"),
            Some(1_706_659_200)
        );
        assert_eq!(parse_http_date("Wed, 31 Apr 2024 00:00:00 GMT"), None);
        assert_eq!(
            parse_http_date("Wed, 30 Apr 2024 00:00:00 GMT"),
            Some(1_714_435_200)
        );
        assert_eq!(parse_http_date("Wed, 00 Jan 2024 00:00:00 GMT"), None);
        assert_eq!(parse_http_date("Wed, 32 Jan 2024 00:00:00 GMT"), None);
    }

    #[test]
    fn time_of_day_limits_and_the_leap_second() {
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 23:59:59 GMT"),
            Some(86_399)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 24:00:00 GMT"), None);
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 12:60:00 GMT"), None);
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 12:00:61 GMT"), None);
        // A leap second is the first second of the next minute.
        assert_eq!(
            parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT"),
            parse_http_date("Sun, 01 Jan 2017 00:00:00 GMT")
        );
        assert_eq!(
            parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT"),
            Some(1_483_228_800)
        );
    }

    #[test]
    fn rfc850_two_digit_year_pivot() {
        assert_eq!(parse_http_date("Thursday, 01-Jan-70 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Friday, 31-Dec-99 23:59:59 GMT"),
            Some(946_684_799)
        );
        assert_eq!(
            parse_http_date("Saturday, 01-Jan-00 00:00:00 GMT"),
            Some(946_684_800)
        );
        assert_eq!(
            parse_http_date("Saturday, 31-Dec-69 00:00:00 GMT"),
            Some(3_155_673_600)
        );
    }

    #[test]
    fn asctime_day_forms() {
        assert_eq!(
            parse_http_date("Sun Nov 06 08:49:37 1994"),
            Some(RFC_EXAMPLE)
        );
        assert_eq!(parse_http_date("Sun Nov 6 08:49:37 1994"), None);
        assert_eq!(parse_http_date("Sun Nov   6 08:49:37 1994"), None);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994 GMT"), None);
    }

    #[test]
    fn weekday_must_be_a_name_but_need_not_match() {
        assert_eq!(
            parse_http_date("Mon, 06 Nov 1994 08:49:37 GMT"),
            Some(RFC_EXAMPLE)
        );
        assert_eq!(
            parse_http_date("Friday, 06-Nov-94 08:49:37 GMT"),
            Some(RFC_EXAMPLE)
        );
        assert_eq!(parse_http_date("Xyz, 06 Nov 1994 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("06 Nov 1994 08:49:37 GMT"), None);
        // The long names belong to the RFC 850 form only, the short ones to the others.
        assert_eq!(parse_http_date("Sunday, 06 Nov 1994 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sunday Nov  6 08:49:37 1994"), None);
    }

    #[test]
    fn surrounding_whitespace_is_accepted() {
        assert_eq!(
            parse_http_date(" \tSun, 06 Nov 1994 08:49:37 GMT\t "),
            Some(RFC_EXAMPLE)
        );
        assert_eq!(parse_http_date("Sun,  06 Nov 1994 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994  08:49:37 GMT"), None);
    }

    #[test]
    fn invalid_dates() {
        for text in [
            "",
            " ",
            "Sun, 06 Noo 1994 08:49:37 GMT",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "sun, 06 Nov 1994 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 0x Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37 gmt",
            "Sun, 06 Nov 1994 08:49:37 +0000",
            "Sun, 06 Nov 1994 08:49:37 GMTx",
            "Sun, 06 Nov 1994 08:49:37 GMT x",
            "Sun Nov  6 08:49:37 1994x",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Wed, 31 Dec 1969 23:59:59 GMT",
            "Sun Nov  6 08:49:37 1969",
            "1994-11-06T08:49:37Z",
            "784111777",
            // Multi-byte text where ASCII is expected, and around the value.
            "Sün, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Növ 1994 08:49:37 GMT",
            "Sun, ０6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT\u{a0}",
            "\u{3000}Sun, 06 Nov 1994 08:49:37 GMT",
            "日, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GM",
            "Sun, 06 Nov 1994 08:49:37 G",
            "Sun, 06 Nov 1994 08:49:",
            "Sun,",
            "Sun",
        ] {
            assert_eq!(parse_http_date(text), None, "{text:?}");
        }
    }

    #[test]
    fn every_prefix_of_a_valid_date_is_refused_without_panicking() {
        for valid in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sün, 06 Növ 1994 08:49:37 GMT",
        ] {
            for (end, _) in valid.char_indices().skip(1) {
                assert_eq!(parse_http_date(&valid[..end]), None, "{:?}", &valid[..end]);
            }
        }
    }

    #[test]
    fn single_character_mutations_never_panic() {
        let replacements = [
            '\0',
            ' ',
            '\t',
            '-',
            ',',
            ':',
            '0',
            '9',
            'a',
            'Z',
            'é',
            '€',
            '😀',
            '\u{10ffff}',
        ];
        for valid in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            for (index, _) in valid.char_indices() {
                for replacement in replacements {
                    let mut mutated: Vec<char> = valid.chars().collect();
                    mutated[index] = replacement;
                    let mutated: String = mutated.into_iter().collect();
                    let _ = parse_http_date(&mutated);
                    let _ = retry_after_seconds(&mutated, Some(&mutated), u64::MAX);
                }
            }
        }
    }

    #[test]
    fn retry_after_delay_seconds() {
        assert_eq!(retry_after_seconds("120", None, 0), Some(120));
        assert_eq!(retry_after_seconds("0", None, 0), Some(0));
        assert_eq!(retry_after_seconds("007", None, 0), Some(7));
        assert_eq!(retry_after_seconds(" 3 ", None, 0), Some(3));
        assert_eq!(retry_after_seconds("\t3", None, 0), Some(3));
        // The Date header plays no part for delay-seconds.
        assert_eq!(
            retry_after_seconds("5", Some("Sun, 06 Nov 1994 08:49:37 GMT"), 0),
            Some(5)
        );
    }

    #[test]
    fn retry_after_huge_number_saturates() {
        assert_eq!(
            retry_after_seconds("18446744073709551615", None, 0),
            Some(u64::MAX)
        );
        assert_eq!(
            retry_after_seconds("18446744073709551616", None, 0),
            Some(u64::MAX)
        );
        assert_eq!(
            retry_after_seconds(&"9".repeat(1000), None, 0),
            Some(u64::MAX)
        );
        assert_eq!(
            retry_after_seconds("18446744073709551614", None, 0),
            Some(u64::MAX - 1)
        );
    }

    #[test]
    fn retry_after_refuses_other_text() {
        for value in [
            "", " ", "-1", "+5", "1.5", "1e3", "3 s", "3 4", "0x10", "٣", "三",
        ] {
            assert_eq!(retry_after_seconds(value, None, 0), None, "{value:?}");
        }
    }

    #[test]
    fn retry_after_date_is_measured_from_the_date_header() {
        // The client's clock (`now`) is an hour off; the server's Date decides.
        let now = RFC_EXAMPLE + 3600;
        assert_eq!(
            retry_after_seconds(
                "Sun, 06 Nov 1994 08:50:07 GMT",
                Some("Sun, 06 Nov 1994 08:49:37 GMT"),
                now
            ),
            Some(30)
        );
        // Any of the three forms on either side.
        assert_eq!(
            retry_after_seconds(
                "Sun Nov  6 08:50:07 1994",
                Some("Sunday, 06-Nov-94 08:49:37 GMT"),
                now
            ),
            Some(30)
        );
    }

    #[test]
    fn retry_after_date_in_the_past_is_zero() {
        assert_eq!(
            retry_after_seconds(
                "Sun, 06 Nov 1994 08:49:07 GMT",
                Some("Sun, 06 Nov 1994 08:49:37 GMT"),
                0
            ),
            Some(0)
        );
        assert_eq!(
            retry_after_seconds("Sun, 06 Nov 1994 08:49:07 GMT", None, RFC_EXAMPLE),
            Some(0)
        );
    }

    #[test]
    fn retry_after_date_without_a_usable_date_header_uses_now() {
        let value = "Sun, 06 Nov 1994 08:50:37 GMT";
        assert_eq!(retry_after_seconds(value, None, RFC_EXAMPLE), Some(60));
        assert_eq!(
            retry_after_seconds(value, Some("yesterday"), RFC_EXAMPLE),
            Some(60)
        );
        assert_eq!(
            retry_after_seconds(value, Some(""), RFC_EXAMPLE - 40),
            Some(100)
        );
    }

    #[test]
    fn retry_after_invalid_date_is_none() {
        assert_eq!(
            retry_after_seconds(
                "Sun, 06 Nov 1994 24:50:37 GMT",
                Some("Sun, 06 Nov 1994 08:49:37 GMT"),
                0
            ),
            None
        );
    }
}
