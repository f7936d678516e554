//! Reading timestamps from payload values: epoch seconds, epoch milliseconds, CleverTap's
//! `$D_<seconds>` dates and RFC 3339 date-times.
//!
//! RFC 3339 is parsed by hand (about forty lines, days-from-civil arithmetic) rather than with a
//! date crate: the transform needs only "text → epoch seconds", and a dependency would add build
//! time on every machine for that one conversion.

use serde_json::Value;

use crate::spec::TsUnit;
use crate::validate::MILLIS_THRESHOLD;

/// Reads a value as epoch seconds, per `unit`. `None` when it cannot be read.
///
/// ```
/// use clevertap_etl_core::spec::TsUnit;
/// use clevertap_etl_core::timestamp::epoch_seconds;
/// use serde_json::json;
///
/// assert_eq!(epoch_seconds(&json!(1_700_000_000_123_i64), TsUnit::Auto), Some(1_700_000_000));
/// assert_eq!(epoch_seconds(&json!("2023-11-14T22:13:20Z"), TsUnit::Auto), Some(1_700_000_000));
/// assert_eq!(epoch_seconds(&json!("$D_1589290950"), TsUnit::Auto), Some(1_589_290_950));
/// assert_eq!(epoch_seconds(&json!("soon"), TsUnit::Auto), None);
/// ```
pub fn epoch_seconds(value: &Value, unit: TsUnit) -> Option<i64> {
    match value {
        Value::Number(n) => {
            let n = n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 9.0e18)
                    .map(|f| f as i64)
            })?;
            from_number(n, unit)
        }
        Value::String(text) => {
            let text = text.trim();
            if let Some(secs) = text.strip_prefix("$D_") {
                return secs.parse().ok();
            }
            if unit != TsUnit::Rfc3339 {
                if let Ok(n) = text.parse::<i64>() {
                    return from_number(n, unit);
                }
            }
            match unit {
                TsUnit::Auto | TsUnit::Rfc3339 => parse_rfc3339(text),
                TsUnit::Seconds | TsUnit::Millis => None,
            }
        }
        _ => None,
    }
}

fn from_number(n: i64, unit: TsUnit) -> Option<i64> {
    match unit {
        TsUnit::Auto if n.unsigned_abs() >= MILLIS_THRESHOLD.unsigned_abs() => Some(n / 1000),
        TsUnit::Auto | TsUnit::Seconds => Some(n),
        TsUnit::Millis => Some(n / 1000),
        TsUnit::Rfc3339 => None,
    }
}

/// Parses an RFC 3339 date-time (`2024-05-12T09:30:00Z`, `2024-05-12 09:30:00.250+05:30`) to
/// epoch seconds; fractions of a second are dropped. `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || !text.is_ascii() {
        return None;
    }
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = text.get(from..from + len)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let (h, m) = (num(text.len() - 5, 2)?, num(text.len() - 2, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc3339_forms() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2020-05-12T13:42:30Z"), Some(1_589_290_950));
        assert_eq!(
            parse_rfc3339("2020-05-12T19:12:30+05:30"),
            Some(1_589_290_950)
        );
        assert_eq!(
            parse_rfc3339("2020-05-12t13:42:30.999z"),
            Some(1_589_290_950)
        );
        assert_eq!(
            parse_rfc3339("2020-05-12 08:42:30-05:00"),
            Some(1_589_290_950)
        );
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some(-1));
    }

    #[test]
    fn rfc3339_rejects_near_misses() {
        for bad in [
            "2023-02-29T00:00:00Z",
            "2020-13-01T00:00:00Z",
            "2020-05-12T13:42:30",
            "2020-05-12T13:42:30+0530",
            "2020-05-12T13:42:30.Z",
            "2020-05-12",
            "2020-05-12T1é:42:30Z",
            "",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn units() {
        assert_eq!(
            epoch_seconds(&json!(1_700_000_000), TsUnit::Auto),
            Some(1_700_000_000)
        );
        assert_eq!(
            epoch_seconds(&json!("1700000000123"), TsUnit::Auto),
            Some(1_700_000_000)
        );
        assert_eq!(
            epoch_seconds(&json!(1_700_000_000_123_i64), TsUnit::Seconds),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            epoch_seconds(&json!(1_700_000_000_123_i64), TsUnit::Millis),
            Some(1_700_000_000)
        );
        assert_eq!(
            epoch_seconds(&json!(1.7e9), TsUnit::Auto),
            Some(1_700_000_000)
        );
        assert_eq!(epoch_seconds(&json!(1e300), TsUnit::Auto), None);
        assert_eq!(epoch_seconds(&json!("1700000000"), TsUnit::Rfc3339), None);
        assert_eq!(epoch_seconds(&json!(true), TsUnit::Auto), None);
        assert_eq!(
            epoch_seconds(&json!(i64::MIN), TsUnit::Auto),
            Some(i64::MIN / 1000)
        );
    }
}
