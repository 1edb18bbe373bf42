//! `MicroTime`: kube-apiserver's timestamp type (`metav1.MicroTime`), as microseconds since the Unix epoch.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A point in time with microsecond precision, in UTC, as kube-apiserver records
/// `requestReceivedTimestamp` and `stageTimestamp`.
///
/// Parsing accepts any RFC 3339 timestamp (fractions of any length are truncated to
/// microseconds, offsets are converted to UTC); formatting writes kube-apiserver's exact form
/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct MicroTime(pub i64);

const MICROS_PER_SEC: i64 = 1_000_000;

impl MicroTime {
    /// Microseconds since 1970-01-01T00:00:00Z.
    pub fn micros(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 timestamp. Returns `None` when it is not one.
    ///
    /// Also accepts the zone-less `YYYY-MM-DD HH:MM:SS[.f]` that SIEM exports (Panther,
    /// Athena) print, read as UTC.
    pub fn parse(s: &str) -> Option<MicroTime> {
        parse_fast(s.as_bytes())
            .or_else(|| parse_general(s))
            .or_else(|| parse_zoneless(s))
    }

    /// Appends the kube-apiserver form, `2026-01-02T03:04:05.123456Z`.
    pub fn write_to(self, out: &mut Vec<u8>) {
        let secs = self.0.div_euclid(MICROS_PER_SEC);
        let micros = self.0.rem_euclid(MICROS_PER_SEC) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        let mut buf = *b"0000-00-00T00:00:00.000000Z";
        put_digits(&mut buf[5..7], m);
        put_digits(&mut buf[8..10], d);
        put_digits(&mut buf[11..13], sod / 3600);
        put_digits(&mut buf[14..16], sod / 60 % 60);
        put_digits(&mut buf[17..19], sod % 60);
        put_digits(&mut buf[20..26], micros);
        if (0..=9999).contains(&y) {
            put_digits(&mut buf[0..4], y as u32);
            out.extend_from_slice(&buf);
        } else {
            // Outside what RFC 3339 can express: write the year as it is.
            out.extend_from_slice(format!("{y:04}").as_bytes());
            out.extend_from_slice(&buf[4..]);
        }
    }

    /// Builds a time from a civil UTC date and time.
    pub fn from_parts(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32, micros: u32) -> MicroTime {
        let days = days_from_civil(y, mo, d);
        MicroTime(
            (days * 86_400 + (h * 3600 + mi * 60 + s) as i64) * MICROS_PER_SEC + micros as i64,
        )
    }
}

impl fmt::Display for MicroTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::with_capacity(27);
        self.write_to(&mut v);
        f.write_str(std::str::from_utf8(&v).map_err(|_| fmt::Error)?)
    }
}

impl serde::Serialize for MicroTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Deserialises an optional timestamp, reading an unparseable one as absent: for legacy
/// fields that must never make a record unreadable.
pub(crate) fn lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MicroTime>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<MicroTime>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("anything")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(MicroTime::parse(v))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_element::<de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

impl<'de> Deserialize<'de> for MicroTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MicroTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MicroTime, E> {
                MicroTime::parse(v).ok_or_else(|| {
                    E::custom(format_args!("invalid timestamp {v:?}: expected RFC 3339, like 2026-01-02T03:04:05.123456Z"))
                })
            }
        }
        d.deserialize_str(V)
    }
}

fn put_digits(dst: &mut [u8], mut v: u32) {
    for b in dst.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

fn digits(s: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (b - b'0') as u32;
    }
    Some(v)
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`: what kube-apiserver (and almost everything else) writes.
fn parse_fast(s: &[u8]) -> Option<MicroTime> {
    if s.len() < 20
        || s[4] != b'-'
        || s[7] != b'-'
        || s[10] != b'T'
        || s[13] != b':'
        || s[16] != b':'
    {
        return None;
    }
    if *s.last()? != b'Z' {
        return None;
    }
    let y = digits(&s[0..4])? as i64;
    let mo = digits(&s[5..7])?;
    let d = digits(&s[8..10])?;
    let h = digits(&s[11..13])?;
    let mi = digits(&s[14..16])?;
    let sec = digits(&s[17..19])?;
    let frac = &s[19..s.len() - 1];
    let micros = match frac {
        [] => 0,
        [b'.', f @ ..] if !f.is_empty() && f.len() <= 9 => {
            let n = f.len().min(6);
            let mut v = digits(&f[..n])?;
            digits(&f[n..])?;
            for _ in n..6 {
                v *= 10;
            }
            v
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo)
        || d == 0
        || d > days_in_month(y, mo)
        || h > 23
        || mi > 59
        || sec > 60
    {
        return None;
    }
    Some(MicroTime::from_parts(y, mo, d, h, mi, sec.min(59), micros))
}

fn parse_zoneless(s: &str) -> Option<MicroTime> {
    let b = s.as_bytes();
    if b.len() < 19 || (b[10] != b' ' && b[10] != b'T') || b.last()?.is_ascii_alphabetic() {
        return None;
    }
    let mut v = Vec::with_capacity(b.len() + 1);
    v.extend_from_slice(b);
    v[10] = b'T';
    v.push(b'Z');
    parse_fast(&v)
}

fn parse_general(s: &str) -> Option<MicroTime> {
    let t =
        ::time::OffsetDateTime::parse(s, &::time::format_description::well_known::Rfc3339).ok()?;
    let nanos = t.unix_timestamp_nanos();
    Some(MicroTime((nanos.div_euclid(1000)) as i64))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days (public domain algorithms).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(t: MicroTime) -> String {
        t.to_string()
    }

    #[test]
    fn parses_and_formats_kube_form() {
        for s in [
            "2026-01-02T03:04:05.123456Z",
            "1970-01-01T00:00:00.000000Z",
            "2024-02-29T23:59:59.999999Z",
            "1969-12-31T23:59:59.000001Z",
        ] {
            assert_eq!(fmt(MicroTime::parse(s).unwrap()), s);
        }
    }

    #[test]
    fn truncates_extra_precision_and_converts_offsets() {
        assert_eq!(
            fmt(MicroTime::parse("2026-01-02T03:04:05.1234569Z").unwrap()),
            "2026-01-02T03:04:05.123456Z"
        );
        assert_eq!(
            fmt(MicroTime::parse("2018-10-26T13:38:34Z").unwrap()),
            "2018-10-26T13:38:34.000000Z"
        );
        assert_eq!(
            fmt(MicroTime::parse("2026-01-02T05:04:05.5+02:00").unwrap()),
            "2026-01-02T03:04:05.500000Z"
        );
        assert_eq!(
            fmt(MicroTime::parse("2022-11-29 00:09:04.38").unwrap()),
            "2022-11-29T00:09:04.380000Z"
        );
        assert_eq!(
            fmt(MicroTime::parse("2024-11-13 18:34:10.595141000").unwrap()),
            "2024-11-13T18:34:10.595141Z"
        );
    }

    #[test]
    fn rejects_non_timestamps() {
        for s in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-02T03:04Z",
            "2026-01-02 03:04:05 PST",
        ] {
            assert_eq!(MicroTime::parse(s), None, "{s}");
        }
    }
}
