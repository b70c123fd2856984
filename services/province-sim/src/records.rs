//! Contribution records: a career per person, made from a generator seeded with the ID number
//! (one to three employers, bases that rise yearly within the year's floor and ceiling, a few
//! back-paid months and some arrears), priced at the contribution rates in force.
//!
//! Rates (share of the base, personal / employer): pension 8 % / 16 % (20 % before May 2016,
//! 19 % until April 2019), medical 2 % / 8 %, unemployment 0.5 % / 0.5 %, work injury employer
//! only, 0.2 %–1 % by the employer's industry. Bases lie between a floor and a ceiling that
//! follow Beijing's 2024 figures (6,821 and 35,283 yuan a month), 6 % lower for each earlier
//! year. Amounts are in fen.

use std::fmt;
use std::str::FromStr;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde::{Serialize, Serializer};

use crate::population::Person;

/// A calendar month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    /// Months since year 0: ordering and arithmetic are on this.
    index: u32,
}

/// The four kinds of social insurance the system records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum InsuranceType {
    Pension,
    Medical,
    Unemployment,
    Injury,
}

/// Whether a month's contribution was paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Paid on time (已缴).
    Paid,
    /// Owed (欠缴).
    Arrears,
    /// Paid late (补缴).
    BackPaid,
}

/// One month of one insurance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Record {
    pub month: Month,
    pub insurance_type: InsuranceType,
    /// The contribution base, fen.
    pub base: u64,
    /// The insured person's part, fen.
    pub personal: u64,
    /// The employer's part, fen.
    pub employer: u64,
    pub employer_name: String,
    pub status: Status,
}

/// A person's working life as the system knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Career {
    stints: Vec<Stint>,
    /// Months not paid on time, and how they stand.
    episodes: Vec<(Month, Month, Status)>,
}

#[derive(Clone, Debug, PartialEq)]
struct Stint {
    employer: String,
    /// Work-injury rate, basis points.
    injury_bp: u64,
    first: Month,
    /// The last month insured here (for the last employer, the month before retirement).
    last: Month,
    /// The base in `first`'s year, yuan.
    start_base: f64,
    /// Yearly rise of the base.
    raise: f64,
}

/// Records start with the province's electronic register.
const REGISTER_START: Month = Month::new(1995, 1);
/// The year the base floor and ceiling are given for.
const BASE_YEAR: u32 = 2024;
const FLOOR_YUAN: f64 = 6_821.0;
const CEILING_YUAN: f64 = 35_283.0;

/// Brand and industry of the made-up employers; the industry sets the work-injury rate.
const BRANDS: &[&str] = &[
    "华信", "恒远", "中泰", "鼎盛", "博达", "金桥", "瑞丰", "天成", "宏图", "东方", "京诚", "万通",
    "安和", "联创", "嘉禾", "新元",
];
const INDUSTRIES: &[(&str, u64)] = &[
    ("信息技术", 20),
    ("科技", 20),
    ("文化传媒", 20),
    ("商贸", 40),
    ("餐饮管理", 50),
    ("物业管理", 50),
    ("医药", 40),
    ("物流", 80),
    ("建筑工程", 100),
    ("机械制造", 80),
];

// === impl Month ===

impl Month {
    pub const fn new(year: u32, month: u32) -> Self {
        Self {
            index: year * 12 + month - 1,
        }
    }

    pub fn year(self) -> u32 {
        self.index / 12
    }

    pub fn month(self) -> u32 {
        self.index % 12 + 1
    }

    /// `n` months later.
    pub fn plus(self, n: u32) -> Self {
        Self {
            index: self.index + n,
        }
    }

    /// The month before, or this one at year 0.
    pub fn prev(self) -> Self {
        Self {
            index: self.index.saturating_sub(1),
        }
    }

    /// Months from `self` to `later`, both counted (0 if `later` is earlier).
    pub fn span(self, later: Self) -> u32 {
        (later.index + 1).saturating_sub(self.index)
    }

    fn iter_to(self, last: Self) -> impl Iterator<Item = Month> {
        (self.index..=last.index).map(|index| Month { index })
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

/// `YYYY-MM`, exactly.
impl FromStr for Month {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let b = s.as_bytes();
        if b.len() != 7 || b[4] != b'-' {
            return Err(());
        }
        let digits = |r: std::ops::Range<usize>| {
            b[r].iter().try_fold(0u32, |acc, c| {
                c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
            })
        };
        match (digits(0..4), digits(5..7)) {
            (Some(y), Some(m)) if (1..=12).contains(&m) && y >= 1900 => Ok(Self::new(y, m)),
            _ => Err(()),
        }
    }
}

impl Serialize for Month {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

// === impl InsuranceType ===

impl InsuranceType {
    pub const ALL: [Self; 4] = [
        Self::Pension,
        Self::Medical,
        Self::Unemployment,
        Self::Injury,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Pension => "养老保险",
            Self::Medical => "医疗保险",
            Self::Unemployment => "失业保险",
            Self::Injury => "工伤保险",
        }
    }

    /// The first month the register holds this insurance for anyone.
    fn since(self) -> Month {
        match self {
            Self::Pension => REGISTER_START,
            Self::Unemployment => Month::new(1999, 1),
            Self::Medical => Month::new(2001, 4),
            Self::Injury => Month::new(2004, 1),
        }
    }

    /// Personal and employer rates in basis points; work injury's employer rate is the
    /// employer's own.
    fn rates(self, month: Month, injury_bp: u64) -> (u64, u64) {
        match self {
            Self::Pension if month < Month::new(2016, 5) => (800, 2000),
            Self::Pension if month < Month::new(2019, 5) => (800, 1900),
            Self::Pension => (800, 1600),
            Self::Medical => (200, 800),
            Self::Unemployment => (50, 50),
            Self::Injury => (0, injury_bp),
        }
    }
}

impl Serialize for InsuranceType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

// === impl Status ===

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Self::Paid => "已缴",
            Self::Arrears => "欠缴",
            Self::BackPaid => "补缴",
        }
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

// === impl Career ===

impl Career {
    /// The career of `person`: the same for the same ID number, every time.
    pub fn of(person: &Person) -> Self {
        let mut rng = StdRng::seed_from_u64(seed(&person.id_number));
        let birth_year: u32 = person.birth_date[..4].parse().unwrap_or(1980);
        let birth_month: u32 = person.birth_date[5..7].parse().unwrap_or(1);
        // Work starts at 18 to 24, and by 2024 for the youngest.
        let start_age = rng.random_range(18..=24u32.min(2024 - birth_year.min(2006)));
        let first = Month::new(birth_year + start_age, rng.random_range(1..=12))
            .max(REGISTER_START)
            .min(Month::new(2024, 12));
        let retirement = Month::new(birth_year + if person.male { 60 } else { 55 }, birth_month);
        let last_month = retirement.prev();
        let employers = rng.random_range(1..=3);
        let mut stints: Vec<Stint> = Vec::with_capacity(employers);
        let mut cursor = first;
        let mut base = floor(first.year()) * rng.random_range(1.0..2.2);
        for i in 0..employers {
            if cursor > last_month {
                break;
            }
            let last = if i + 1 == employers {
                last_month
            } else {
                cursor.plus(rng.random_range(24..=120)).min(last_month)
            };
            let (industry, injury_bp) =
                INDUSTRIES.choose(&mut rng).copied().unwrap_or(("科技", 20));
            let brand = BRANDS.choose(&mut rng).copied().unwrap_or("华信");
            let stint = Stint {
                employer: format!("北京{brand}{industry}有限公司"),
                injury_bp,
                first: cursor,
                last,
                start_base: base,
                raise: rng.random_range(0.03..0.10),
            };
            // A new employer pays somewhat more than the last one did.
            base = stint.base_yuan(last.year()) * rng.random_range(1.05..1.35);
            cursor = last.plus(1 + rng.random_range(0..=6));
            stints.push(stint);
        }
        let mut episodes = Vec::new();
        // About a third of people had months paid late…
        if rng.random_bool(0.3)
            && let Some(s) = stints.choose(&mut rng)
        {
            let len = rng.random_range(1..=4);
            let from = s.first.plus(rng.random_range(0..s.first.span(s.last)));
            episodes.push((from, from.plus(len - 1).min(s.last), Status::BackPaid));
        }
        // …and one in eight has an employer that owes the last few months of 2024.
        if rng.random_bool(0.125)
            && let Some(s) = stints.last()
        {
            let from = Month::new(2024, rng.random_range(6..=10)).max(s.first);
            let len = rng.random_range(1..=3);
            if from <= s.last {
                episodes.push((from, from.plus(len - 1).min(s.last), Status::Arrears));
            }
        }
        Self { stints, episodes }
    }

    /// The first month insured.
    pub fn insured_since(&self) -> Option<Month> {
        self.stints.first().map(|s| s.first)
    }

    /// The insurances the person ever had.
    pub fn insurance_types(&self) -> Vec<InsuranceType> {
        let last = self.stints.last().map(|s| s.last);
        InsuranceType::ALL
            .into_iter()
            .filter(|t| last.is_some_and(|l| l >= t.since()))
            .collect()
    }

    /// Every record from `from` to `to`, both included, by month then insurance.
    pub fn records(&self, from: Month, to: Month) -> Vec<Record> {
        let mut out = Vec::new();
        for s in &self.stints {
            let (a, b) = (from.max(s.first), to.min(s.last));
            if a > b {
                continue;
            }
            for month in a.iter_to(b) {
                let base = fen(s.base_yuan(month.year()));
                let status = self
                    .episodes
                    .iter()
                    .find(|(f, l, _)| (*f..=*l).contains(&month))
                    .map_or(Status::Paid, |e| e.2);
                for t in InsuranceType::ALL {
                    if month < t.since() {
                        continue;
                    }
                    let (p, e) = t.rates(month, s.injury_bp);
                    out.push(Record {
                        month,
                        insurance_type: t,
                        base,
                        personal: share(base, p),
                        employer: share(base, e),
                        employer_name: s.employer.clone(),
                        status,
                    });
                }
            }
        }
        out
    }
}

// === impl Stint ===

impl Stint {
    /// The base in `year`, yuan: risen yearly, held within the year's floor and ceiling.
    fn base_yuan(&self, year: u32) -> f64 {
        let years = year.saturating_sub(self.first.year());
        let raised = self.start_base * (1.0 + self.raise).powi(i32::try_from(years).unwrap_or(0));
        raised.clamp(floor(year), ceiling(year)).round()
    }
}

fn growth(year: u32) -> f64 {
    1.06f64.powi(i32::try_from(year).unwrap_or(0) - i32::try_from(BASE_YEAR).unwrap_or(0))
}

fn floor(year: u32) -> f64 {
    (FLOOR_YUAN * growth(year)).round()
}

fn ceiling(year: u32) -> f64 {
    (CEILING_YUAN * growth(year)).round()
}

/// Yuan to fen; bases are whole yuan well inside `u64`.
fn fen(yuan: f64) -> u64 {
    // Rounded, positive and below 10⁸ yuan by construction.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let f = (yuan * 100.0).round().max(0.0) as u64;
    f
}

/// `bp` basis points of `base`, rounded to the fen.
fn share(base: u64, bp: u64) -> u64 {
    (base * bp + 5_000) / 10_000
}

/// FNV-1a of the ID number: a seed that depends on nothing but the number.
fn seed(id_number: &str) -> u64 {
    id_number
        .to_ascii_uppercase()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::population::persons;

    #[test]
    fn months_parse_print_and_count() {
        let m: Month = "2024-01".parse().expect("month");
        assert_eq!(m.to_string(), "2024-01");
        assert_eq!(m.prev().to_string(), "2023-12");
        assert_eq!(m.plus(13).to_string(), "2025-02");
        assert_eq!(m.span(Month::new(2024, 12)), 12);
        for bad in [
            "2024-13",
            "2024-00",
            "2024-1",
            "24-01",
            "2024/01",
            "２０２４-01",
            "",
        ] {
            assert!(bad.parse::<Month>().is_err(), "{bad}");
        }
    }

    #[test]
    fn careers_are_deterministic_per_id_number() {
        let p = &persons()[5];
        assert_eq!(Career::of(p), Career::of(p));
        let from = Month::new(1995, 1);
        let to = Month::new(2030, 12);
        assert_eq!(
            Career::of(p).records(from, to),
            Career::of(p).records(from, to)
        );
        let other = &persons()[6];
        assert_ne!(Career::of(p), Career::of(other));
    }

    #[test]
    fn records_are_priced_at_the_rates_and_within_the_bounds() {
        let (from, to) = (Month::new(2024, 1), Month::new(2024, 12));
        let mut seen = 0;
        for p in persons() {
            let career = Career::of(p);
            let records = career.records(from, to);
            for r in &records {
                seen += 1;
                let yuan = r.base / 100;
                assert_eq!(r.base % 100, 0, "whole yuan");
                assert!((6_821..=35_283).contains(&yuan), "{yuan}");
                let (p_bp, e_bp) = match r.insurance_type {
                    InsuranceType::Pension => (800, 1600),
                    InsuranceType::Medical => (200, 800),
                    InsuranceType::Unemployment => (50, 50),
                    InsuranceType::Injury => {
                        assert_eq!(r.personal, 0, "work injury is the employer's alone");
                        assert!(
                            INDUSTRIES
                                .iter()
                                .any(|(_, bp)| r.employer == (r.base * bp + 5_000) / 10_000),
                            "0.2 %–1 % of the base"
                        );
                        continue;
                    }
                };
                assert_eq!(r.personal, (r.base * p_bp + 5_000) / 10_000);
                assert_eq!(r.employer, (r.base * e_bp + 5_000) / 10_000);
                assert!(
                    r.employer_name.starts_with("北京") && r.employer_name.ends_with("有限公司")
                );
            }
            assert!(
                records.windows(2).all(|w| w[0].month <= w[1].month),
                "by month"
            );
        }
        assert!(seen > 1_000, "most of the population works in 2024: {seen}");
    }

    #[test]
    fn careers_look_like_working_lives() {
        let mut employers = [0usize; 4];
        let (mut arrears, mut back_paid) = (0, 0);
        for p in persons() {
            let c = Career::of(p);
            let since = c.insured_since().expect("everyone has worked");
            let birth: u32 = p.birth_date[..4].parse().expect("year");
            assert!(since >= REGISTER_START);
            assert!(
                since.year() >= birth + 18 || since == REGISTER_START,
                "{since}"
            );
            employers[c.stints.len()] += 1;
            for w in c.stints.windows(2) {
                assert!(w[0].last < w[1].first, "one employer at a time");
                assert!(
                    w[1].base_yuan(w[1].first.year()) >= w[0].base_yuan(w[0].last.year()) - 1.0,
                    "a change of employer does not lower the base (beyond the ceiling)"
                );
            }
            for s in &c.stints {
                let bases: Vec<f64> = (s.first.year()..=s.last.year().min(2024))
                    .map(|y| s.base_yuan(y))
                    .collect();
                assert!(bases.windows(2).all(|w| w[0] <= w[1]), "bases rise yearly");
            }
            let all = c.records(REGISTER_START, Month::new(2060, 12));
            arrears += all.iter().filter(|r| r.status == Status::Arrears).count();
            back_paid += all.iter().filter(|r| r.status == Status::BackPaid).count();
            let retire = if p.male { 60 } else { 55 };
            assert!(all.last().is_none_or(|r| r.month.year() <= birth + retire));
            assert!(c.insurance_types().contains(&InsuranceType::Pension));
        }
        assert!(
            employers[1] > 0 && employers[2] > 0 && employers[3] > 0,
            "{employers:?}"
        );
        assert!(
            arrears > 0 && back_paid > 0,
            "a few months owed and paid late"
        );
    }
}
