//! The halls of one district, 北京市东城区: its 政务服务中心 and a few 街道 centres, with
//! their opening hours and the matters they handle. Seed data for the demo, kept in code rather
//! than in the database because it changes with a release, not at run time; the district
//! centre's address is the real one (珠市口东大街 since March 2024), the street centres' are
//! plausible and should be checked before anyone relies on them.

use serde::Serialize;

/// A span of opening hours, in minutes after local midnight (Asia/Shanghai).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub from: u16,
    pub to: u16,
}

/// A matter a hall handles (办理事项), named by a stable code the client sends back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Matter {
    pub code: &'static str,
    pub name: &'static str,
}

/// A service hall where citizens book a 30-minute slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hall {
    /// Lowercase words with hyphens: it leads the ids of the hall's time slots.
    pub id: &'static str,
    pub name: &'static str,
    pub address: &'static str,
    /// Monday to Friday.
    pub weekdays: &'static [Period],
    /// Saturday; empty where the hall is closed on Saturdays. Closed on Sundays.
    pub saturday: &'static [Period],
    /// Citizens served per 30-minute slot (the windows open for appointments).
    pub capacity: u32,
    /// Codes of the [`MATTERS`] handled here.
    pub matters: &'static [&'static str],
}

/// The district every hall is in.
pub const DISTRICT: &str = "北京市东城区";

/// Every matter any hall handles.
pub static MATTERS: &[Matter] = &[
    Matter {
        code: "business-registration",
        name: "企业开办（设立、变更、注销登记）",
    },
    Matter {
        code: "tax",
        name: "税务办理",
    },
    Matter {
        code: "real-estate-registration",
        name: "不动产登记",
    },
    Matter {
        code: "social-insurance",
        name: "社会保险参保登记与缴费",
    },
    Matter {
        code: "social-security-card",
        name: "社会保障卡申领与补换",
    },
    Matter {
        code: "medical-insurance",
        name: "医疗保障（参保登记、费用报销）",
    },
    Matter {
        code: "housing-fund",
        name: "住房公积金提取与贷款",
    },
    Matter {
        code: "employment",
        name: "就业创业（失业登记、就业困难人员认定）",
    },
    Matter {
        code: "residence-permit",
        name: "居住登记与居住证",
    },
    Matter {
        code: "civil-affairs",
        name: "社会救助（低保、临时救助）",
    },
    Matter {
        code: "elderly-and-disability",
        name: "老年人与残疾人服务",
    },
    Matter {
        code: "birth-registration",
        name: "生育服务登记",
    },
];

const fn p(from_h: u16, from_m: u16, to_h: u16, to_m: u16) -> Period {
    Period {
        from: from_h * 60 + from_m,
        to: to_h * 60 + to_m,
    }
}

/// 9:00–12:00 and 13:30–17:00, the district's office hours.
const OFFICE_HOURS: &[Period] = &[p(9, 0, 12, 0), p(13, 30, 17, 0)];
/// Saturday mornings, where a hall opens them.
const SATURDAY_MORNING: &[Period] = &[p(9, 0, 12, 0)];

const DISTRICT_MATTERS: &[&str] = &[
    "business-registration",
    "tax",
    "real-estate-registration",
    "social-insurance",
    "social-security-card",
    "medical-insurance",
    "housing-fund",
    "employment",
];

const STREET_MATTERS: &[&str] = &[
    "social-insurance",
    "social-security-card",
    "medical-insurance",
    "employment",
    "residence-permit",
    "civil-affairs",
    "elderly-and-disability",
    "birth-registration",
];

const fn street(
    id: &'static str,
    name: &'static str,
    address: &'static str,
    saturday: &'static [Period],
) -> Hall {
    Hall {
        id,
        name,
        address,
        weekdays: OFFICE_HOURS,
        saturday,
        capacity: 4,
        matters: STREET_MATTERS,
    }
}

/// The halls, the district centre first.
pub static HALLS: &[Hall] = &[
    Hall {
        id: "dongcheng-district-centre",
        name: "北京市东城区政务服务中心",
        address: "北京市东城区珠市口东大街12号",
        weekdays: OFFICE_HOURS,
        saturday: SATURDAY_MORNING,
        capacity: 10,
        matters: DISTRICT_MATTERS,
    },
    street(
        "donghuamen",
        "东城区东华门街道政务服务中心",
        "北京市东城区东华门大街40号",
        &[],
    ),
    street(
        "jingshan",
        "东城区景山街道政务服务中心",
        "北京市东城区景山东街5号",
        &[],
    ),
    street(
        "jiaodaokou",
        "东城区交道口街道政务服务中心",
        "北京市东城区交道口南大街136号",
        &[],
    ),
    street(
        "dongsi",
        "东城区东四街道政务服务中心",
        "北京市东城区东四西大街158号",
        SATURDAY_MORNING,
    ),
    street(
        "hepingli",
        "东城区和平里街道政务服务中心",
        "北京市东城区和平里中街14号",
        SATURDAY_MORNING,
    ),
    street(
        "qianmen",
        "东城区前门街道政务服务中心",
        "北京市东城区前门东大街9号",
        &[],
    ),
    street(
        "tiantan",
        "东城区天坛街道政务服务中心",
        "北京市东城区天坛东里46号",
        &[],
    ),
];

/// The hall with `id`.
pub fn hall(id: &str) -> Option<&'static Hall> {
    HALLS.iter().find(|h| h.id == id)
}

/// The matter with `code`.
pub fn matter(code: &str) -> Option<&'static Matter> {
    MATTERS.iter().find(|m| m.code == code)
}

// === impl Hall ===

impl Hall {
    /// The opening hours of a weekday (1 = Monday … 7 = Sunday).
    pub fn periods(&self, weekday: u8) -> &'static [Period] {
        match weekday {
            1..=5 => self.weekdays,
            6 => self.saturday,
            _ => &[],
        }
    }

    pub fn handles(&self, matter: &str) -> bool {
        self.matters.contains(&matter)
    }
}

// === impl Period ===

impl Period {
    /// `HH:MM` of a minute of the day.
    pub fn clock(minute: u16) -> String {
        format!("{:02}:{:02}", minute / 60, minute % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_is_consistent() {
        for (i, h) in HALLS.iter().enumerate() {
            assert!(
                h.id.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{}",
                h.id
            );
            assert!(HALLS[..i].iter().all(|o| o.id != h.id), "{}", h.id);
            assert!(h.address.starts_with(DISTRICT), "{}", h.name);
            assert!(h.capacity > 0);
            for m in h.matters {
                assert!(matter(m).is_some(), "{m}");
            }
            for p in h.weekdays.iter().chain(h.saturday) {
                assert!(p.from < p.to && p.to <= 24 * 60 && (p.to - p.from) % 30 == 0);
            }
        }
        assert!(HALLS.iter().any(|h| !h.saturday.is_empty()));
        assert!(HALLS.iter().any(|h| h.saturday.is_empty()));
        assert_eq!(Period::clock(13 * 60 + 30), "13:30");
    }
}
