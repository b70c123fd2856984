//! Time slots, free of I/O: local dates in Asia/Shanghai, the 30-minute slots a hall opens on
//! a date, and the window of days booked ahead. China has kept UTC+8 without daylight saving
//! since 1991, so a fixed offset is the whole time-zone rule.

use std::fmt;

use tongban_core::date::{civil_from_days, days_from_civil};

use crate::halls::{Hall, Period};

/// Asia/Shanghai's offset from UTC.
pub const UTC_OFFSET_MS: i64 = 8 * 3_600_000;
/// The length of a slot.
pub const SLOT_MINUTES: u16 = 30;
/// Slots exist for today and the days after it, this many in all.
pub const DAYS_AHEAD: i64 = 14;

const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

/// A calendar date in Asia/Shanghai.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalDate {
    /// Days since 1970-01-01.
    days: i64,
}

/// One slot a hall opens, before it is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotSpec {
    /// `<hall id>-<YYYYMMDD>-<HHMM>`: readable, and the same on every instance that generates
    /// it, so generating twice inserts nothing twice.
    pub id: String,
    pub hall_id: &'static str,
    pub day: LocalDate,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub capacity: u32,
}

// === impl LocalDate ===

impl LocalDate {
    /// The local date at `unix_ms`.
    pub fn at(unix_ms: i64) -> Self {
        Self {
            days: (unix_ms.saturating_add(UTC_OFFSET_MS)).div_euclid(DAY_MS),
        }
    }

    /// A strict `YYYY-MM-DD` that names a real date; anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let s = text.get(r)?;
            s.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| s.parse().ok())?
        };
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let days = days_from_civil(i64::from(y), m, d);
        // A date that does not exist (02-30, 13-01) comes back as another one.
        (civil_from_days(days) == (i64::from(y), m, d)).then_some(Self { days })
    }

    pub fn add_days(self, n: i64) -> Self {
        Self {
            days: self.days.saturating_add(n),
        }
    }

    /// 1 = Monday … 7 = Sunday (1970-01-01 was a Thursday).
    pub fn weekday(self) -> u8 {
        u8::try_from((self.days + 3).rem_euclid(7) + 1).unwrap_or(7)
    }

    /// Local midnight, Unix milliseconds.
    pub fn start_ms(self) -> i64 {
        self.days * DAY_MS - UTC_OFFSET_MS
    }

    /// `YYYYMMDD`, for slot ids.
    pub fn compact(self) -> String {
        let (y, m, d) = civil_from_days(self.days);
        format!("{y:04}{m:02}{d:02}")
    }

    /// Whether a booking may be made for this date seen from `today`.
    pub fn in_window(self, today: LocalDate) -> bool {
        self >= today && self < today.add_days(DAYS_AHEAD)
    }
}

impl fmt::Display for LocalDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil_from_days(self.days);
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// `unix_ms` as ISO 8601 local time with its offset, `2025-06-09T09:30:00+08:00`.
pub fn iso_local(unix_ms: i64) -> String {
    let day = LocalDate::at(unix_ms);
    let minute = (unix_ms - day.start_ms()).div_euclid(MINUTE_MS);
    format!(
        "{day}T{}:00+08:00",
        Period::clock(u16::try_from(minute).unwrap_or(0))
    )
}

/// The slots `hall` opens on `day`: every whole 30 minutes of its opening hours.
pub fn slots(hall: &'static Hall, day: LocalDate) -> Vec<SlotSpec> {
    let mut out = Vec::new();
    for period in hall.periods(day.weekday()) {
        let mut start = period.from;
        while start + SLOT_MINUTES <= period.to {
            let starts_at_ms = day.start_ms() + i64::from(start) * MINUTE_MS;
            out.push(SlotSpec {
                id: format!(
                    "{}-{}-{}",
                    hall.id,
                    day.compact(),
                    Period::clock(start).replace(':', "")
                ),
                hall_id: hall.id,
                day,
                starts_at_ms,
                ends_at_ms: starts_at_ms + i64::from(SLOT_MINUTES) * MINUTE_MS,
                capacity: hall.capacity,
            });
            start += SLOT_MINUTES;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::halls;

    #[test]
    fn dates_are_strict_and_local() {
        let d = LocalDate::parse("2025-06-09").expect("a Monday");
        assert_eq!(d.to_string(), "2025-06-09");
        assert_eq!(d.weekday(), 1);
        assert_eq!(d.add_days(5).weekday(), 6);
        assert_eq!(d.add_days(6).weekday(), 7);
        assert_eq!(d.compact(), "20250609");
        // 2025-06-08T16:00Z is midnight in Beijing.
        assert_eq!(d.start_ms(), 1_749_398_400_000);
        assert_eq!(LocalDate::at(d.start_ms()), d);
        assert_eq!(LocalDate::at(d.start_ms() - 1), d.add_days(-1));
        for bad in [
            "2025-02-29",
            "2025-13-01",
            "2025-6-9",
            "2025/06/09",
            "+025-06-09",
            "2025-06-0٩",
            "",
            "2025-06-09 ",
        ] {
            assert_eq!(LocalDate::parse(bad), None, "{bad:?}");
        }
        assert!(LocalDate::parse("2024-02-29").is_some());
        assert_eq!(
            iso_local(d.start_ms() + 570 * 60_000),
            "2025-06-09T09:30:00+08:00"
        );
    }

    #[test]
    fn slots_fill_the_opening_hours_in_half_hours() {
        let centre = halls::hall("dongcheng-district-centre").expect("seeded");
        let monday = LocalDate::parse("2025-06-09").expect("date");
        let s = slots(centre, monday);
        // 9:00–12:00 is six slots, 13:30–17:00 seven.
        assert_eq!(s.len(), 13);
        assert_eq!(s[0].id, "dongcheng-district-centre-20250609-0900");
        assert_eq!(iso_local(s[0].starts_at_ms), "2025-06-09T09:00:00+08:00");
        assert_eq!(iso_local(s[5].ends_at_ms), "2025-06-09T12:00:00+08:00");
        assert_eq!(iso_local(s[6].starts_at_ms), "2025-06-09T13:30:00+08:00");
        assert_eq!(iso_local(s[12].ends_at_ms), "2025-06-09T17:00:00+08:00");
        assert_eq!(
            slots(centre, monday.add_days(5)).len(),
            6,
            "Saturday morning"
        );
        assert!(slots(centre, monday.add_days(6)).is_empty(), "Sunday");
        let street = halls::hall("jingshan").expect("seeded");
        assert!(slots(street, monday.add_days(5)).is_empty());
        assert!(monday.in_window(monday) && monday.add_days(13).in_window(monday));
        assert!(!monday.add_days(14).in_window(monday) && !monday.add_days(-1).in_window(monday));
    }
}
