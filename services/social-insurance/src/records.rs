//! What the citizen is answered: the person (masked unless it is the caller), the records of
//! the period and their totals, in fen. Free of I/O.

use serde::{Deserialize, Serialize};
use tongban_core::mask::{keep_ends, mask_name};
use zeroize::Zeroizing;

use crate::query::{InsuranceType, Month, Period};

/// The province's status of a month not paid: owed (欠缴). Paid (已缴) and paid late (补缴)
/// count as paid.
const ARREARS: &str = "欠缴";

/// One month of one insurance, as the province records it. Amounts in fen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) month: String,
    pub(crate) insurance_type: String,
    pub(crate) base: u64,
    pub(crate) personal: u64,
    pub(crate) employer: u64,
    pub(crate) employer_name: String,
    pub(crate) status: String,
}

/// The person as the province knows them.
#[derive(Deserialize)]
pub(crate) struct ProvincePerson {
    pub(crate) name: Zeroizing<String>,
    pub(crate) id_number: Zeroizing<String>,
    pub(crate) insured_since: Option<String>,
    #[serde(default)]
    pub(crate) insurance_types: Vec<String>,
}

/// The answer to either endpoint.
#[derive(Serialize)]
pub(crate) struct RecordsView {
    pub(crate) person: PersonView,
    pub(crate) period: PeriodView,
    pub(crate) records: Vec<Record>,
    pub(crate) totals: Totals,
}

#[derive(Serialize)]
pub(crate) struct PersonView {
    name: Zeroizing<String>,
    id_number: Zeroizing<String>,
    insured_since: Option<String>,
    insurance_types: Vec<String>,
    /// Whether `name` and `id_number` are masked (the person is not the caller).
    masked: bool,
}

#[derive(Serialize)]
pub(crate) struct PeriodView {
    from: String,
    to: String,
}

/// Sums over the records, fen; arrears apart from what was paid.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Totals {
    /// Months with at least one record.
    pub(crate) months: u32,
    /// Paid by the insured person (paid on time or late).
    pub(crate) personal: u64,
    /// Paid by employers.
    pub(crate) employer: u64,
    /// `personal` + `employer`.
    pub(crate) total: u64,
    /// Owed, the person's part.
    pub(crate) arrears_personal: u64,
    /// Owed, the employers' part.
    pub(crate) arrears_employer: u64,
    /// The same per insurance, in the province's order of types.
    pub(crate) by_type: Vec<TypeTotals>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub(crate) struct TypeTotals {
    pub(crate) insurance_type: String,
    pub(crate) months: u32,
    pub(crate) personal: u64,
    pub(crate) employer: u64,
    pub(crate) arrears_personal: u64,
    pub(crate) arrears_employer: u64,
}

// === impl PersonView ===

impl PersonView {
    /// The person, whole for the caller themself, else masked: `张*`, `1101**********002X`.
    pub(crate) fn new(p: &ProvincePerson, whole: bool) -> Self {
        let (name, id_number) = if whole {
            (p.name.clone(), p.id_number.clone())
        } else {
            (
                Zeroizing::new(mask_name(&p.name)),
                Zeroizing::new(keep_ends(&p.id_number, 4, 4)),
            )
        };
        Self {
            name,
            id_number,
            insured_since: p.insured_since.clone(),
            insurance_types: p.insurance_types.clone(),
            masked: !whole,
        }
    }
}

// === impl PeriodView ===

impl From<Period> for PeriodView {
    fn from(p: Period) -> Self {
        Self {
            from: p.from.to_string(),
            to: p.to.to_string(),
        }
    }
}

// === impl Record ===

impl Record {
    /// Whether the record belongs in the answer: inside the period (a province that answers
    /// more than it was asked must not widen what the citizen sees) and of the type asked.
    /// `None` when its month is unreadable.
    pub(crate) fn fits(&self, period: &Period, kind: Option<InsuranceType>) -> Option<bool> {
        let month = Month::parse(&self.month)?;
        Some(period.contains(month) && kind.is_none_or(|k| k.label() == self.insurance_type))
    }

    fn is_arrears(&self) -> bool {
        self.status == ARREARS
    }
}

// === impl Totals ===

impl Totals {
    /// Sums `records`; saturating, so an absurd answer cannot wrap.
    pub(crate) fn of(records: &[Record]) -> Self {
        let mut t = Totals::default();
        let mut months: Vec<&str> = records.iter().map(|r| r.month.as_str()).collect();
        months.sort_unstable();
        months.dedup();
        t.months = u32::try_from(months.len()).unwrap_or(u32::MAX);
        for r in records {
            let i = match t
                .by_type
                .iter()
                .position(|b| b.insurance_type == r.insurance_type)
            {
                Some(i) => i,
                None => {
                    t.by_type.push(TypeTotals::new(&r.insurance_type));
                    t.by_type.len() - 1
                }
            };
            let b = &mut t.by_type[i];
            b.months = b.months.saturating_add(1);
            if r.is_arrears() {
                t.arrears_personal = t.arrears_personal.saturating_add(r.personal);
                t.arrears_employer = t.arrears_employer.saturating_add(r.employer);
                b.arrears_personal = b.arrears_personal.saturating_add(r.personal);
                b.arrears_employer = b.arrears_employer.saturating_add(r.employer);
            } else {
                t.personal = t.personal.saturating_add(r.personal);
                t.employer = t.employer.saturating_add(r.employer);
                b.personal = b.personal.saturating_add(r.personal);
                b.employer = b.employer.saturating_add(r.employer);
            }
        }
        t.total = t.personal.saturating_add(t.employer);
        t
    }
}

impl TypeTotals {
    fn new(insurance_type: &str) -> Self {
        Self {
            insurance_type: insurance_type.to_owned(),
            months: 0,
            personal: 0,
            employer: 0,
            arrears_personal: 0,
            arrears_employer: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(month: &str, kind: &str, personal: u64, employer: u64, status: &str) -> Record {
        Record {
            month: month.to_owned(),
            insurance_type: kind.to_owned(),
            base: 1_000_000,
            personal,
            employer,
            employer_name: "北京万通机械制造有限公司".to_owned(),
            status: status.to_owned(),
        }
    }

    #[test]
    fn totals_keep_arrears_apart() {
        let records = [
            record("2024-01", "养老保险", 800, 1600, "已缴"),
            record("2024-01", "医疗保险", 200, 800, "补缴"),
            record("2024-02", "养老保险", 800, 1600, "欠缴"),
        ];
        let t = Totals::of(&records);
        assert_eq!(
            (t.months, t.personal, t.employer, t.total),
            (2, 1000, 2400, 3400)
        );
        assert_eq!((t.arrears_personal, t.arrears_employer), (800, 1600));
        assert_eq!(t.by_type.len(), 2);
        assert_eq!(t.by_type[0].insurance_type, "养老保险");
        assert_eq!(
            (
                t.by_type[0].months,
                t.by_type[0].personal,
                t.by_type[0].arrears_personal
            ),
            (2, 800, 800)
        );
        assert_eq!(Totals::of(&[]), Totals::default());
    }

    #[test]
    fn records_outside_the_period_or_type_are_left_out() {
        let period = Period::parse(Some("2024-01"), Some("2024-02")).expect("period");
        let r = record("2024-01", "养老保险", 1, 1, "已缴");
        assert_eq!(r.fits(&period, None), Some(true));
        assert_eq!(r.fits(&period, Some(InsuranceType::Pension)), Some(true));
        assert_eq!(r.fits(&period, Some(InsuranceType::Medical)), Some(false));
        assert_eq!(
            record("2024-03", "养老保险", 1, 1, "已缴").fits(&period, None),
            Some(false)
        );
        assert_eq!(
            record("March", "养老保险", 1, 1, "已缴").fits(&period, None),
            None
        );
    }

    #[test]
    fn another_persons_name_and_id_number_are_masked() {
        let p = ProvincePerson {
            name: Zeroizing::new("张三丰".to_owned()),
            id_number: Zeroizing::new("11010519491231002X".to_owned()),
            insured_since: Some("2010-06".to_owned()),
            insurance_types: vec!["养老保险".to_owned()],
        };
        let masked = serde_json::to_value(PersonView::new(&p, false)).expect("json");
        assert_eq!(masked["name"], "张*丰");
        assert_eq!(masked["id_number"], "1101**********002X");
        assert_eq!(masked["masked"], true);
        let whole = serde_json::to_value(PersonView::new(&p, true)).expect("json");
        assert_eq!(whole["id_number"], "11010519491231002X");
        assert_eq!(whole["insured_since"], "2010-06");
    }
}
