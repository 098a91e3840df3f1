/// Milliseconds since the Unix epoch (UTC).
pub type Timestamp = u64;

pub fn now_ms() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// RFC 3339 UTC text of a timestamp, e.g. `2026-11-25T14:03:07.123Z`.
pub fn format_utc(ms: Timestamp) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm, the
/// inverse of the one in [`format_utc`]).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A time as a user writes it: `2026-11-25` (midnight UTC),
/// `2026-11-25T14:03:07Z`, `2026-11-25T14:03:07.123Z` (RFC 3339 in UTC), or
/// milliseconds since the Unix epoch.
pub fn parse_utc(text: &str) -> Result<Timestamp, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().map_err(|_| format!("{t:?} is not a time in milliseconds"));
    }
    let bad = || format!("{text:?} is not a UTC time (2026-11-25, 2026-11-25T14:03:07Z or milliseconds)");
    let num = |s: &str| -> Result<i64, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let (date, clock) = match t.split_once(['T', 't', ' ']) {
        Some((d, c)) => (d, Some(c)),
        None => (t, None),
    };
    let mut parts = date.splitn(3, '-');
    let (year, month, day) = match (parts.next(), parts.next(), parts.next()) {
        (Some(y), Some(m), Some(d)) if y.len() == 4 && m.len() == 2 && d.len() == 2 => (num(y)?, num(m)?, num(d)?),
        _ => return Err(bad()),
    };
    let month_days = [
        31,
        if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) {
            29
        } else {
            28
        },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || day < 1 || day > month_days[(month - 1) as usize]
    {
        return Err(bad());
    }
    let mut ms = 0i64;
    if let Some(c) = clock {
        let c = c
            .strip_suffix(['Z', 'z'])
            .ok_or_else(|| format!("{text:?}: give the time in UTC, ending in Z"))?;
        let (hms, frac) = match c.split_once('.') {
            Some((h, f)) if (1..=3).contains(&f.len()) => (h, num(f)? * 10i64.pow(3 - f.len() as u32)),
            Some(_) => return Err(bad()),
            None => (c, 0),
        };
        let mut p = hms.split(':');
        let (h, m, s) = match (p.next(), p.next(), p.next(), p.next()) {
            (Some(h), Some(m), Some(s), None) if h.len() == 2 && m.len() == 2 && s.len() == 2 => {
                (num(h)?, num(m)?, num(s)?)
            }
            _ => return Err(bad()),
        };
        if h > 23 || m > 59 || s > 59 {
            return Err(bad());
        }
        ms = ((h * 60 + m) * 60 + s) * 1000 + frac;
    }
    Ok((days_from_civil(year, month, day) * 86_400_000 + ms) as Timestamp)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_what_it_formats() {
        for ms in [0, 951_782_400_000, 1_795_619_326_053, 4_102_444_799_999] {
            assert_eq!(super::parse_utc(&super::format_utc(ms)), Ok(ms));
        }
        assert_eq!(super::parse_utc("2000-02-29"), Ok(951_782_400_000));
        assert_eq!(super::parse_utc("2026-11-25T15:08:46Z"), Ok(1_795_619_326_000));
        assert_eq!(super::parse_utc("1795619326053"), Ok(1_795_619_326_053));
        for bad in [
            "",
            "2026-02-29",
            "2026-13-01",
            "2026-11-25T25:00:00Z",
            "2026-11-25T10:00:00+08:00",
            "yesterday",
            "2026-1-1",
        ] {
            assert!(super::parse_utc(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(super::format_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::format_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(super::format_utc(1_795_619_326_053), "2026-11-25T15:08:46.053Z");
    }
}
