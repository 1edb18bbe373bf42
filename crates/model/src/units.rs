//! Durations, sizes and times as people write them on the command line and in configuration
//! (`90s`, `16M`, `since=24h`), parsed one way everywhere; and the clock.

use std::time::Duration;

/// The units [`duration`] takes, for messages.
const DURATION_UNITS: &str = "ms, s, m, h, d or w (200ms, 90s, 30m, 24h, 7d, 2w)";

/// `200ms`, `90s`, `30m`, `24h`, `7d`, `2w`.
pub fn duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit: {DURATION_UNITS}"))?;
    let secs = |k: u64| {
        n.checked_mul(k)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{s:?}: too long"))
    };
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        "d" => secs(86_400),
        "w" => secs(7 * 86_400),
        "" => Err(format!("{s:?}: the number needs a unit: {DURATION_UNITS}")),
        _ => Err(format!("{s:?}: the unit must be {DURATION_UNITS}")),
    }
}

/// A [`duration`] in microseconds (saturating: no duration people write comes near).
pub fn duration_micros(s: &str) -> Result<i64, String> {
    duration(s).map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// A point in time: a [`duration`] back from `now` (`24h`: a day ago) or an RFC 3339 time
/// (`2026-03-01T00:00:00Z`); microseconds since the epoch.
pub fn time(s: &str, now: i64) -> Result<i64, String> {
    if let Ok(d) = duration_micros(s) {
        return Ok(now.saturating_sub(d));
    }
    crate::MicroTime::parse(s.trim())
        .map(|t| t.micros())
        .ok_or_else(|| {
            format!(
                "{s:?}: expected a duration back from now (24h, 7d) or an RFC 3339 time \
                 (2026-03-01T00:00:00Z)"
            )
        })
}

/// `512`, `64K`, `16M`, `50G`, `1T` (powers of 1024; either case; a trailing `i`, `iB` or
/// `B` is allowed: `16MiB`, `16MB`).
pub fn size(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?}: expected a size like 512, 64K, 16M, 50G or 1T");
    let t = s.trim();
    let t = t.strip_suffix(['B', 'b']).unwrap_or(t);
    let t = t.strip_suffix('i').unwrap_or(t);
    let (n, shift) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 30),
        Some('T' | 't') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let v: u64 = n.trim().parse().map_err(|_| bad())?;
    v.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?}: too large"))
}

/// Current time in microseconds since the epoch (0 if the clock is before it).
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Serde helpers: configuration fields held as [`Duration`] and sizes as `u64`, written as
/// people write them (`"90s"`, `"16M"`, or a plain number of bytes), parsed when the
/// configuration loads, so a bad value is reported with its line.
pub mod serde_units {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// `#[serde(with = "kaudit_model::units::serde_units::duration")]`.
    pub mod duration {
        use super::*;

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
            let s = String::deserialize(d)?;
            crate::units::duration(&s).map_err(serde::de::Error::custom)
        }

        pub fn serialize<S: Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&super::super::format_duration(*v))
        }
    }

    /// The same for `Option<Duration>`.
    pub mod opt_duration {
        use super::*;

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) => crate::units::duration(&s)
                    .map(Some)
                    .map_err(serde::de::Error::custom),
            }
        }

        pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => s.serialize_str(&super::super::format_duration(*v)),
                None => s.serialize_none(),
            }
        }
    }

    /// A size: `"16M"` or a number of bytes.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum SizeText {
        Bytes(u64),
        Text(String),
    }

    fn size_of<E: serde::de::Error>(v: SizeText) -> Result<u64, E> {
        match v {
            SizeText::Bytes(n) => Ok(n),
            SizeText::Text(s) => crate::units::size(&s).map_err(E::custom),
        }
    }

    /// `#[serde(with = "kaudit_model::units::serde_units::size")]`.
    pub mod size {
        use super::*;

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
            size_of(SizeText::deserialize(d)?)
        }

        pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_u64(*v)
        }
    }

    /// The same for `Option<u64>`.
    pub mod opt_size {
        use super::*;

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
            Option::<SizeText>::deserialize(d)?.map(size_of).transpose()
        }

        pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => s.serialize_u64(*v),
                None => s.serialize_none(),
            }
        }
    }
}

/// A duration as [`duration`] reads it back: the largest unit that divides it.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    for (unit, k) in [("w", 7 * 86_400), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if s != 0 && s.is_multiple_of(k) {
            return format!("{}{unit}", s / k);
        }
    }
    format!("{s}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (s, secs) in [
            ("90s", 90),
            ("30m", 1800),
            ("24h", 86_400),
            ("7d", 604_800),
            ("2w", 1_209_600),
            (" 5m ", 300),
        ] {
            assert_eq!(duration(s).unwrap(), Duration::from_secs(secs), "{s}");
            assert_eq!(
                duration(&format_duration(Duration::from_secs(secs))),
                duration(s)
            );
        }
        assert_eq!(duration("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(duration_micros("1s").unwrap(), 1_000_000);
        for bad in ["", "5", "m", "5y", "-5s", "1.5h", "99999999999999999999w"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
        assert!(duration("5").unwrap_err().contains("needs a unit"));
    }

    #[test]
    fn times() {
        let now = 10_000_000_000;
        assert_eq!(time("1h", now).unwrap(), now - 3_600_000_000);
        assert_eq!(time("1970-01-01T00:00:01Z", now).unwrap(), 1_000_000);
        assert!(time("yesterday", now).is_err());
    }

    #[test]
    fn sizes() {
        for (s, n) in [
            ("512", 512u64),
            ("64K", 64 << 10),
            ("64k", 64 << 10),
            ("16M", 16 << 20),
            ("16m", 16 << 20),
            ("16MiB", 16 << 20),
            ("16MB", 16 << 20),
            ("50G", 50 << 30),
            ("1T", 1 << 40),
        ] {
            assert_eq!(size(s).unwrap(), n, "{s}");
        }
        for bad in ["", "M", "1.5G", "-1", "1P", "99999999999T"] {
            assert!(size(bad).is_err(), "{bad}");
        }
    }
}
