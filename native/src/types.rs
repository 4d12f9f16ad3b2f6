//! Column types inferred from the values, never losing or changing one.
//!
//! Each value fits a set of types (a bit mask); a column's type is the narrowest that every
//! value of the whole file fits: int64 → float64 (only if every value is exact as a double)
//! → string; date → timestamp → string; bool → string. A null marker (`NULL_MARKERS`) fits every
//! type: it is null in a typed column and kept as written in a string column.
//!
//! What fits (no surrounding spaces, no `+` sign, no leading zeros: `00501`, `+1555` stay text):
//! - int: `-?(0|[1-9][0-9]*)` within int64 (`-0` is not an int: it would lose its sign);
//! - float: a JSON number (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`) whose digits a double
//!   gives back: printed with as many significant digits as written, it reads the same
//!   (`0.1`, `10.357019999999999`; not `3.14159265358979323846` nor a 20-digit id);
//! - bool: `true`/`false` in any letter case;
//! - date: `YYYY-MM-DD`, a real day;
//! - timestamp: a date (its midnight), or a date, `T` or a space, `HH:MM:SS`, a fraction of at most microseconds (more
//!   digits only if zeros), then `Z`, `±HH:MM`, `±HHMM` or nothing (read as UTC).

/// Type bits: the types a value fits.
pub const INT: u8 = 1;
pub const FLOAT: u8 = 2;
pub const DATE: u8 = 4;
pub const TIMESTAMP: u8 = 8;
pub const BOOL: u8 = 16;
/// A null marker's mask (and a column's before it has a value).
pub const ALL: u8 = INT | FLOAT | DATE | TIMESTAMP | BOOL;

/// Values that are null in a typed column (as written in a string column).
pub const NULL_MARKERS: [&[u8]; 9] = [
    b"", b"NA", b"N/A", b"n/a", b"NULL", b"null", b"None", b"NaN", b"#N/A",
];

/// A column's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No value but null markers yet: written as text (values as written).
    Unknown,
    Int,
    Float,
    Date,
    Timestamp,
    Bool,
    String,
}

impl Kind {
    /// The narrowest type a column whose values fit `mask` can have.
    pub fn of(mask: u8) -> Kind {
        if mask == ALL {
            Kind::Unknown
        } else if mask & INT != 0 {
            Kind::Int
        } else if mask & FLOAT != 0 {
            Kind::Float
        } else if mask & DATE != 0 {
            Kind::Date
        } else if mask & TIMESTAMP != 0 {
            Kind::Timestamp
        } else if mask & BOOL != 0 {
            Kind::Bool
        } else {
            Kind::String
        }
    }

    /// The mask of a column of this type (before any value narrows it).
    pub fn mask(self) -> u8 {
        match self {
            Kind::Unknown => ALL,
            Kind::Int => INT | FLOAT,
            Kind::Float => FLOAT,
            Kind::Date => DATE | TIMESTAMP,
            Kind::Timestamp => TIMESTAMP,
            Kind::Bool => BOOL,
            Kind::String => 0,
        }
    }

    /// The type's name in contracts and reports (an Unknown column is written as a string).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Unknown | Kind::String => "string",
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Date => "date",
            Kind::Timestamp => "timestamp",
            Kind::Bool => "bool",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Some(match name {
            "string" => Kind::String,
            "int" => Kind::Int,
            "float" => Kind::Float,
            "date" => Kind::Date,
            "timestamp" => Kind::Timestamp,
            "bool" => Kind::Bool,
            _ => return None,
        })
    }

    /// Whether values are written as text, exactly as in the file.
    pub fn is_text(self) -> bool {
        matches!(self, Kind::Unknown | Kind::String)
    }
}

/// Whether `value` is one of `NULL_MARKERS` (spelled out: this runs for every value).
pub fn is_null(value: &[u8]) -> bool {
    matches!(
        value,
        [] | [b'N', b'A']
            | [b'N', b'/', b'A']
            | [b'n', b'/', b'a']
            | [b'N', b'a', b'N']
            | [b'N', b'U', b'L', b'L']
            | [b'n', b'u', b'l', b'l']
            | [b'N', b'o', b'n', b'e']
            | [b'#', b'N', b'/', b'A']
    )
}

/// The types a non-null value fits.
pub fn classify(value: &[u8]) -> u8 {
    match value.first() {
        Some(b'0'..=b'9' | b'-') => {}
        Some(b't' | b'T' | b'f' | b'F') => {
            return if parse_bool(value).is_some() { BOOL } else { 0 }
        }
        _ => return 0,
    }
    if let Some(n) = parse_int(value) {
        return INT | if int_is_exact_float(n) { FLOAT } else { 0 };
    }
    if parse_float(value).is_some() {
        return FLOAT;
    }
    if parse_date(value).is_some() {
        return DATE | TIMESTAMP; // a timestamp column holds it as its midnight
    }
    if parse_timestamp(value).is_some() {
        return TIMESTAMP;
    }
    0
}

/// Whether a double holds this int exactly (so a float column keeps it).
pub fn int_is_exact_float(n: i64) -> bool {
    const EXACT: i64 = 1 << 53;
    (-EXACT..=EXACT).contains(&n) || (n as f64) as i128 == n as i128
}

/// `-?(0|[1-9][0-9]*)` within int64, not `-0`.
pub fn parse_int(value: &[u8]) -> Option<i64> {
    let (negative, digits) = match value.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, value),
    };
    match digits {
        [] => return None,
        [b'0'] => return (!negative).then_some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    if digits.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &byte in digits {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n = n * 10 + digit as u64; // at most 19 digits: no overflow of u64
    }
    if negative {
        if n <= i64::MAX as u64 + 1 {
            Some((n as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(n).ok()
    }
}

/// A JSON number that a double holds exactly (to the digits written), as that double.
pub fn parse_float(value: &[u8]) -> Option<f64> {
    let shape = float_shape(value)?;
    if let Some(x) = shape.exact {
        return Some(x);
    }
    // Safety: float_shape accepted only ASCII.
    let text = unsafe { std::str::from_utf8_unchecked(value) };
    let x: f64 = text.parse().ok()?;
    if !x.is_finite() {
        return None;
    }
    if shape.digits == 0 {
        return Some(x); // a zero
    }
    if x == 0.0 {
        return None; // underflow
    }
    if shape.digits <= 15 && x.abs() >= f64::MIN_POSITIVE {
        return Some(x); // 15 significant digits always come back from a (normal) double
    }
    // Printed with as many significant digits as written, does it read the same?
    let printed = format!("{:.*e}", shape.digits - 1, x.abs());
    let (mantissa, exponent) = printed.split_once('e')?;
    let exponent: i64 = exponent.parse().ok()?;
    let digits: Vec<u8> = mantissa.bytes().filter(|b| *b != b'.').collect();
    (exponent == shape.exponent && digits == significant(value)).then_some(x)
}

/// A float's significant digits (without leading and trailing zeros) and the decimal exponent
/// of the first one (scientific notation).
struct Shape {
    digits: usize,
    exponent: i64,
    /// The value, when the written digits make at most 15 significant digits and a power of
    /// ten a double holds exactly scales them (then the division or product is correctly
    /// rounded, and the digits come back: no need to parse again).
    exact: Option<f64>,
}

/// 10^0 ..= 10^22: every one exact in a double.
const POWERS: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

fn float_shape(value: &[u8]) -> Option<Shape> {
    let mut i = usize::from(value.first() == Some(&b'-'));
    let n = value.len();
    let int_start = i;
    while i < n && value[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    if int_digits == 0 || (int_digits > 1 && value[int_start] == b'0') {
        return None;
    }
    if i < n && value[i] == b'.' {
        i += 1;
        let start = i;
        while i < n && value[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let mut written_exponent: i64 = 0;
    if i < n && (value[i] == b'e' || value[i] == b'E') {
        i += 1;
        let negative = i < n && value[i] == b'-';
        if i < n && (value[i] == b'+' || value[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < n && value[i].is_ascii_digit() {
            written_exponent = (written_exponent * 10 + (value[i] - b'0') as i64).min(1 << 20);
            i += 1;
        }
        if i == start {
            return None;
        }
        if negative {
            written_exponent = -written_exponent;
        }
    }
    if i != n {
        return None;
    }
    // The significant digits (leading and trailing zeros left out), and the decimal exponent of
    // the first one.
    let mut position: i64 = int_digits as i64 - 1; // exponent of the first integer digit
    let mut first: Option<i64> = None;
    let (mut counted, mut digits) = (0usize, 0usize);
    // every digit written, as an integer (while it fits), and how many follow the point
    let (mut mantissa, mut written, mut fraction, mut after_point) = (0u64, 0usize, 0i64, false);
    for &byte in &value[int_start..] {
        if byte.is_ascii_digit() && written < 19 {
            mantissa = mantissa * 10 + (byte - b'0') as u64;
            written += 1;
            fraction += i64::from(after_point);
        } else if byte.is_ascii_digit() {
            written += 1;
        }
        match byte {
            b'.' => {
                after_point = true;
                continue;
            }
            b'e' | b'E' => break,
            b'0' if first.is_none() => position -= 1,
            _ => {
                if first.is_none() {
                    first = Some(position);
                }
                counted += 1;
                if byte != b'0' {
                    digits = counted;
                }
            }
        }
    }
    let scale = written_exponent - fraction;
    let exact = (written < 19 && digits <= 15 && mantissa < (1 << 53) && scale.abs() <= 22)
        .then(|| {
            let x = if scale >= 0 {
                mantissa as f64 * POWERS[scale as usize]
            } else {
                mantissa as f64 / POWERS[(-scale) as usize]
            };
            if value[0] == b'-' {
                -x
            } else {
                x
            }
        })
        .filter(|x| *x == 0.0 || x.abs() >= f64::MIN_POSITIVE);
    Some(Shape {
        digits,
        exponent: first.unwrap_or(0) + written_exponent,
        exact,
    })
}

/// The digits of a number's mantissa without leading and trailing zeros.
fn significant(value: &[u8]) -> Vec<u8> {
    let end = value
        .iter()
        .position(|b| *b == b'e' || *b == b'E')
        .unwrap_or(value.len());
    let digits: Vec<u8> = value[..end]
        .iter()
        .copied()
        .filter(u8::is_ascii_digit)
        .collect();
    let start = digits.iter().position(|d| *d != b'0');
    match start {
        None => Vec::new(),
        Some(start) => {
            let stop = digits.iter().rposition(|d| *d != b'0').unwrap_or(start) + 1;
            digits[start..stop].to_vec()
        }
    }
}

pub fn parse_bool(value: &[u8]) -> Option<bool> {
    if value.eq_ignore_ascii_case(b"true") {
        Some(true)
    } else if value.eq_ignore_ascii_case(b"false") {
        Some(false)
    } else {
        None
    }
}

fn digits(value: &[u8]) -> Option<u32> {
    let mut n = 0u32;
    for &byte in value {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n = n * 10 + digit as u32;
    }
    Some(n)
}

/// Days from 1970-01-01 to a day of the proleptic Gregorian calendar (None: no such day).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> Option<i64> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let length = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > length {
        return None;
    }
    // Count from a March-based year so that the leap day is the year's last.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400; // 0..=399
    let day_of_year = (153 * m as i64 + 2) / 5 + day as i64 - 1; // 0..=365, from March 1st
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468) // 719,468: 0000-03-01 to 1970-01-01
}

/// `YYYY-MM-DD` as days since 1970-01-01.
pub fn parse_date(value: &[u8]) -> Option<i32> {
    if value.len() != 10 {
        return None;
    }
    parse_day(value).map(|days| days as i32)
}

fn parse_day(value: &[u8]) -> Option<i64> {
    if value.len() < 10 || value[4] != b'-' || value[7] != b'-' {
        return None;
    }
    let year = digits(&value[0..4])?;
    let month = digits(&value[5..7])?;
    let day = digits(&value[8..10])?;
    days_from_civil(year as i64, month, day)
}

/// A timestamp (or a date: its midnight) as microseconds since 1970-01-01T00:00:00Z.
pub fn parse_timestamp(value: &[u8]) -> Option<i64> {
    if value.len() == 10 {
        return parse_date(value).map(|days| days as i64 * 86_400_000_000);
    }
    if value.len() < 19 || (value[10] != b'T' && value[10] != b' ') {
        return None;
    }
    let days = parse_day(&value[..10])?;
    if value[13] != b':' || value[16] != b':' {
        return None;
    }
    let hour = digits(&value[11..13])?;
    let minute = digits(&value[14..16])?;
    let second = digits(&value[17..19])?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &value[19..];
    let mut micros: i64 = 0;
    if let Some((b'.', fraction)) = rest.split_first() {
        let length = fraction
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(fraction.len());
        if length == 0 || length > 9 {
            return None;
        }
        let (kept, beyond) = fraction[..length].split_at(length.min(6));
        if beyond.iter().any(|b| *b != b'0') {
            return None; // finer than microseconds: it would be cut
        }
        micros = digits(kept)? as i64 * 10i64.pow(6 - kept.len() as u32);
        rest = &fraction[length..];
    }
    let offset_minutes: i64 = match rest {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let hours = digits(&[*h1, *h2])? as i64;
            let minutes = digits(&[*m1, *m2])? as i64;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let total = hours * 60 + minutes;
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return None,
    };
    let seconds = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset_minutes * 60;
    Some(seconds * 1_000_000 + micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_keep_every_value() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-42"), Some(-42));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        for not in [
            &b"00501"[..],
            b"+15551234567",
            b"-0",
            b"9223372036854775808",
            b"12345678901234567890",
            b"1.5",
            b" 5",
            b"",
            b"-",
            b"1_000",
        ] {
            assert_eq!(parse_int(not), None, "{}", String::from_utf8_lossy(not));
        }
    }

    #[test]
    fn floats_only_when_a_double_gives_the_digits_back() {
        for (text, x) in [
            ("1.5", 1.5),
            ("0.1", 0.1),
            ("-3e2", -300.0),
            ("1.50", 1.5),
            ("10.357019999999999", 10.357019999999999),
            ("0", 0.0),
            ("0.000", 0.0),
            ("-0.0", -0.0),
            ("1E-5", 1e-5),
            ("10000000000000000000", 1e19),
        ] {
            assert_eq!(parse_float(text.as_bytes()), Some(x), "{text}");
        }
        for not in [
            "3.14159265358979323846",
            "12345678901234567890",
            "9007199254740993",
            "1e400",
            "1e-400",
            ".5",
            "5.",
            "+1.5",
            "NaN",
            "inf",
            "01.5",
            "1.5e",
            "1,5",
        ] {
            assert_eq!(parse_float(not.as_bytes()), None, "{not}");
        }
    }

    #[test]
    fn the_fast_path_gives_what_the_standard_parser_gives() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let digits = (seed % 1_000_000_000_000_000) as f64;
            let text = match seed % 5 {
                0 => format!("{}", seed % 100_000),
                1 => format!("{:.2}", digits / 1e9),
                2 => format!("-{:.6}", (seed % 1_000_000) as f64 / 1e6),
                3 => format!("{}e{}", seed % 1000, (seed >> 20) % 40),
                _ => format!(
                    "{}.{:0>5}E-{}",
                    seed % 97,
                    seed % 100_000,
                    (seed >> 30) % 30
                ),
            };
            let want: f64 = text.parse().unwrap();
            assert_eq!(parse_float(text.as_bytes()), Some(want), "{text}");
        }
    }

    #[test]
    fn dates_and_timestamps() {
        assert_eq!(parse_date(b"1970-01-01"), Some(0));
        assert_eq!(parse_date(b"2000-03-01"), Some(11_017));
        assert_eq!(parse_date(b"1969-12-31"), Some(-1));
        assert_eq!(parse_date(b"2024-02-29"), Some(19_782));
        assert_eq!(parse_date(b"2023-02-29"), None);
        assert_eq!(parse_date(b"2023-13-01"), None);
        let hour = 3_600_000_000i64;
        assert_eq!(parse_timestamp(b"1970-01-01T01:00:00Z"), Some(hour));
        assert_eq!(parse_timestamp(b"1970-01-01 01:00:00"), Some(hour));
        assert_eq!(parse_timestamp(b"1970-01-01T02:00:00+01:00"), Some(hour));
        assert_eq!(parse_timestamp(b"1970-01-01T00:00:00-0100"), Some(hour));
        assert_eq!(parse_timestamp(b"1970-01-01T00:00:00.5Z"), Some(500_000));
        assert_eq!(parse_timestamp(b"1970-01-01T00:00:00.000001000Z"), Some(1));
        assert_eq!(parse_timestamp(b"1970-01-01T00:00:00.0000001Z"), None);
        assert_eq!(parse_timestamp(b"1970-01-01T24:00:00Z"), None);
        assert_eq!(parse_timestamp(b"1970-01-01T00:00Z"), None);
        assert_eq!(parse_timestamp(b"1970-01-02"), Some(24 * hour));
    }

    #[test]
    fn every_value_fits_the_types_it_can_be_read_as() {
        assert_eq!(classify(b"42"), INT | FLOAT);
        assert_eq!(classify(b"9007199254740993"), INT);
        assert_eq!(classify(b"1.5"), FLOAT);
        assert_eq!(classify(b"TRUE"), BOOL);
        assert_eq!(classify(b"2013-01-01"), DATE | TIMESTAMP);
        assert_eq!(classify(b"2013-01-01T05:00:00Z"), TIMESTAMP);
        assert_eq!(classify(b"00501"), 0);
        assert_eq!(classify(b"+15551234567"), 0);
        assert_eq!(classify(b"yes"), 0);
        assert!(NULL_MARKERS.iter().all(|m| is_null(m)));
        for not in [&b"na"[..], b"NAN", b"Null", b"NONE", b"N/", b" ", b"nulls"] {
            assert!(!is_null(not));
        }
        assert_eq!(
            Kind::of(ALL & classify(b"1") & classify(b"1.5")),
            Kind::Float
        );
        assert_eq!(Kind::of(classify(b"1") & classify(b"x")), Kind::String);
        assert_eq!(
            Kind::of(classify(b"2013-01-01") & classify(b"2013-01-01 00:00:01")),
            Kind::Timestamp
        );
        assert_eq!(Kind::of(ALL), Kind::Unknown);
    }
}
