//! A data contract's value rules (what a declared type accepts) and how typed values are
//! written in JSON Lines. The rules are the ones contracts always had (docs/data-contracts.md);
//! they differ from inference's (native/src/types.rs), which never changes a value: a contract
//! declares the type, so `+7` and `007` are the int 7 there.
//!
//! - int: optional `+`/`-`, then ASCII digits, within int64;
//! - float: optional sign, digits with an optional point (`1.5`, `.5`, `5.`), an optional
//!   exponent; finite only (`NaN`, `inf`, `1e400` are not floats: JSON can't carry them);
//! - bool: `true/false`, `1/0`, `yes/no`, any letter case;
//! - date: `YYYY-MM-DD`, a real day;
//! - timestamp: `YYYY-MM-DD`, `T` or a space, `HH:MM:SS`, a fraction of 1 to 9 digits (cut to
//!   microseconds), then `Z` or `±HH:MM`/`±HHMM` (required: a zone would be a guess). Second 60
//!   (a leap second) is the next minute's first.

use std::io::Write;

use crate::types;

/// Optional sign, then ASCII digits, within int64 (leading zeros allowed).
pub fn int(value: &[u8]) -> Option<i64> {
    let (negative, digits) = match value.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, value),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let start = digits
        .iter()
        .position(|d| *d != b'0')
        .unwrap_or(digits.len());
    let significant = &digits[start..];
    if significant.len() > 19 {
        return None;
    }
    let n = significant
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    if negative {
        (n <= i64::MAX as u64 + 1).then(|| (n as i64).wrapping_neg())
    } else {
        i64::try_from(n).ok()
    }
}

/// Decimal or exponent notation, finite.
pub fn float(value: &[u8]) -> Option<f64> {
    let mut i = usize::from(matches!(value.first(), Some(b'+' | b'-')));
    let n = value.len();
    let digits_from = |i: &mut usize| {
        let start = *i;
        while *i < n && value[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let mut mantissa = digits_from(&mut i);
    if i < n && value[i] == b'.' {
        i += 1;
        mantissa += digits_from(&mut i);
    }
    if mantissa == 0 {
        return None;
    }
    if i < n && (value[i] == b'e' || value[i] == b'E') {
        i += 1;
        if i < n && (value[i] == b'+' || value[i] == b'-') {
            i += 1;
        }
        if digits_from(&mut i) == 0 {
            return None;
        }
    }
    if i != n {
        return None;
    }
    // Safety: only ASCII was accepted above.
    let x: f64 = unsafe { std::str::from_utf8_unchecked(value) }
        .parse()
        .ok()?;
    x.is_finite().then_some(x)
}

pub fn bool(value: &[u8]) -> Option<bool> {
    const WORDS: [(&[u8], bool); 6] = [
        (b"true", true),
        (b"false", false),
        (b"1", true),
        (b"0", false),
        (b"yes", true),
        (b"no", false),
    ];
    WORDS
        .iter()
        .find(|(word, _)| value.eq_ignore_ascii_case(word))
        .map(|(_, v)| *v)
}

/// `YYYY-MM-DD` as days since 1970-01-01.
pub fn date(value: &[u8]) -> Option<i32> {
    types::parse_date(value)
}

fn two(value: &[u8]) -> Option<i64> {
    match value {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some(i64::from(a - b'0') * 10 + i64::from(b - b'0'))
        }
        _ => None,
    }
}

/// A timestamp with a zone, as microseconds since 1970-01-01T00:00:00Z.
pub fn timestamp(value: &[u8]) -> Option<i64> {
    if value.len() < 20 || !matches!(value[10], b'T' | b' ') {
        return None;
    }
    let days = i64::from(types::parse_date(&value[..10])?);
    if value[13] != b':' || value[16] != b':' {
        return None;
    }
    let (hour, minute, second) = (
        two(&value[11..13])?,
        two(&value[14..16])?,
        two(&value[17..19])?,
    );
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let (micros, zone) = fraction(&value[19..])?;
    let offset = offset_seconds(zone)?;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(seconds * 1_000_000 + micros)
}

/// `.d{1,9}` (cut to microseconds) or nothing; and what follows.
fn fraction(rest: &[u8]) -> Option<(i64, &[u8])> {
    let Some((b'.', digits)) = rest.split_first() else {
        return Some((0, rest));
    };
    let length = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=9).contains(&length) {
        return None;
    }
    let kept = &digits[..length.min(6)];
    let micros = kept.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0'))
        * 10i64.pow(6 - kept.len() as u32);
    Some((micros, &digits[length..]))
}

/// `Z`, `±HH:MM` or `±HHMM` in seconds east of UTC.
fn offset_seconds(zone: &[u8]) -> Option<i64> {
    let (sign, hours, minutes) = match zone {
        [b'Z'] => return Some(0),
        [sign @ (b'+' | b'-'), h @ .., b':', m1, m2] | [sign @ (b'+' | b'-'), h @ .., m1, m2]
            if h.len() == 2 =>
        {
            (*sign, two(h)?, two(&[*m1, *m2])?)
        }
        _ => return None,
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    let total = (hours * 60 + minutes) * 60;
    Some(if sign == b'-' { -total } else { total })
}

/// A double as polars' JSON writer prints it: the shortest digits that read back the same,
/// plain from 1e-5 up to 1e16 (`7.0`, `0.000025`), else in exponent form (`1e+20`, `1e-7`).
pub fn write_float(out: &mut Vec<u8>, x: f64) {
    if x == 0.0 {
        out.extend_from_slice(if x.is_sign_negative() {
            b"-0.0"
        } else {
            b"0.0"
        });
        return;
    }
    let shortest = format!("{:e}", x.abs()); // "1.2345e-7": the shortest round trip
    let (mantissa, exponent) = shortest.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("an integer exponent");
    let digits: Vec<u8> = mantissa.bytes().filter(|b| *b != b'.').collect();
    let length = digits.len() as i32;
    let point = exponent + 1; // digits before the decimal point
    if x < 0.0 {
        out.push(b'-');
    }
    if length <= point && point <= 16 {
        out.extend_from_slice(&digits);
        out.extend(std::iter::repeat_n(b'0', (point - length) as usize));
        out.extend_from_slice(b".0");
    } else if 0 < point && point <= 16 {
        out.extend_from_slice(&digits[..point as usize]);
        out.push(b'.');
        out.extend_from_slice(&digits[point as usize..]);
    } else if -5 < point && point <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-point) as usize));
        out.extend_from_slice(&digits);
    } else {
        out.push(digits[0]);
        if length > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        let _ = write!(out, "e{}{}", if exponent > 0 { "+" } else { "" }, exponent);
    }
}

/// Year, month, day of a day counted from 1970-01-01 (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let m = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * m + 2) / 5 + 1) as u32;
    let month = if m < 10 { m + 3 } else { m - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn write_day(out: &mut Vec<u8>, days: i64) {
    let (year, month, day) = civil(days);
    // as chrono's %Y: four digits, a sign outside 0..=9999
    let _ = match year {
        0..=9999 => write!(out, "{year:04}"),
        10000.. => write!(out, "+{year}"),
        _ => write!(out, "-{:04}", -year),
    };
    let _ = write!(out, "-{month:02}-{day:02}");
}

/// A date32 as a JSON string (`"2024-02-29"`).
pub fn write_date(out: &mut Vec<u8>, days: i32) {
    out.push(b'"');
    write_day(out, i64::from(days));
    out.push(b'"');
}

/// Microseconds since the epoch, UTC, as a JSON string (`"2024-01-05T10:20:30.500+00:00"`:
/// the fraction in milliseconds or microseconds, whichever is exact, none when zero).
pub fn write_timestamp(out: &mut Vec<u8>, micros: i64) {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    out.push(b'"');
    write_day(out, days);
    let (h, m, s) = (
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
    );
    let _ = write!(out, "T{h:02}:{m:02}:{s:02}");
    let _ = match fraction {
        0 => Ok(()),
        f if f % 1000 == 0 => write!(out, ".{:03}", f / 1000),
        f => write!(out, ".{f:06}"),
    };
    out.extend_from_slice(b"+00:00\"");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float_text(x: f64) -> String {
        let mut out = Vec::new();
        write_float(&mut out, x);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn ints_as_contracts_read_them() {
        assert_eq!(int(b"+7"), Some(7));
        assert_eq!(int(b"007"), Some(7));
        assert_eq!(int(b"-0"), Some(0));
        assert_eq!(int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(int(b"000000000000000000000042"), Some(42));
        for not in [
            &b"9223372036854775808"[..],
            b"+-5",
            b"+",
            b"",
            b" 5",
            b"1.0",
            b"1_000",
        ] {
            assert_eq!(int(not), None);
        }
    }

    #[test]
    fn floats_as_contracts_read_them() {
        for (text, x) in [
            ("+.5", 0.5),
            ("5.", 5.0),
            ("1.e3", 1000.0),
            ("1E+5", 1e5),
            ("7", 7.0),
        ] {
            assert_eq!(float(text.as_bytes()), Some(x), "{text}");
        }
        assert_eq!(float(b"1e-400"), Some(0.0));
        for not in [
            "NaN",
            "inf",
            "-Infinity",
            "1e400",
            "1,5",
            " 1.5",
            ".",
            "e5",
            "1e",
            "0x10",
        ] {
            assert_eq!(float(not.as_bytes()), None, "{not}");
        }
    }

    #[test]
    fn bools_dates_and_timestamps() {
        assert_eq!(bool(b"Yes"), Some(true));
        assert_eq!(bool(b"0"), Some(false));
        assert_eq!(bool(b"y"), None);
        assert_eq!(date(b"2024-02-29"), Some(19_782));
        assert_eq!(date(b"2024-1-5"), None);
        let at = |text: &str| timestamp(text.as_bytes());
        let base = at("2024-01-05T10:20:30Z").unwrap();
        assert_eq!(at("2024-01-05 10:20:30+02:00"), Some(base - 7_200_000_000));
        assert_eq!(at("2024-01-05T10:20:30-0130"), Some(base + 5_400_000_000));
        assert_eq!(at("2024-01-05T10:20:30.123456789Z"), Some(base + 123_456));
        assert_eq!(at("2024-01-05T10:20:60Z"), Some(base + 30_000_000));
        for not in [
            "2024-01-05T10:20:30",
            "2024-01-05T10:20Z",
            "2024-01-05T25:00:00Z",
            "2024-01-05T10:20:30+02",
            "2024-01-05T10:20:30+24:00",
            "2024-01-05T10:20:30.Z",
            "2024-01-05T10:20:30.1234567891Z",
            "2024-01-05t10:20:30Z",
            "2024-01-05",
        ] {
            assert_eq!(at(not), None, "{not}");
        }
    }

    #[test]
    fn floats_are_written_as_polars_writes_them() {
        for (x, text) in [
            (1.5, "1.5"),
            (7.0, "7.0"),
            (-300.0, "-300.0"),
            (1e20, "1e+20"),
            (1e-7, "1e-7"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (2.5e-5, "0.000025"),
            (-0.0, "-0.0"),
            (5e-324, "5e-324"),
            (123.456, "123.456"),
        ] {
            assert_eq!(float_text(x), text);
        }
    }

    #[test]
    fn dates_and_timestamps_are_written_as_polars_writes_them() {
        let mut out = Vec::new();
        write_date(&mut out, -719_528);
        write_timestamp(&mut out, 1_704_450_030_500_000);
        write_timestamp(&mut out, 1_704_450_030_123_456);
        write_timestamp(&mut out, -1);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"0000-01-01\"\"2024-01-05T10:20:30.500+00:00\"\"2024-01-05T10:20:30.123456+00:00\"\
             \"1969-12-31T23:59:59.999999+00:00\""
        );
    }
}
