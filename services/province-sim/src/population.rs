//! The insured population: a few hundred fake residents of Beijing's Chaoyang district and the
//! districts around it, generated from a fixed seed, plus the identity simulator's three test
//! accounts. The demo services seed their own data from [`persons`], so every part of a demo
//! speaks of the same people.
//!
//! The people are made up; their ID numbers have real region codes and valid check characters
//! (GB 11643), so they pass every check a real number passes.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// A resident the system knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Person {
    pub name: String,
    /// 18 characters, check character uppercase.
    pub id_number: String,
    /// `YYYY-MM-DD`, as the ID number says.
    pub birth_date: String,
    pub male: bool,
}

/// The identity simulator's test accounts (`tongban_identity::ticket::simulator::DEV_ACCOUNTS`):
/// name and the first 17 characters of the ID number.
pub const DEV_ACCOUNTS: [(&str, &str); 3] = [
    ("张伟", "11010519900307001"),
    ("李娜", "11010519851114002"),
    ("王芳", "11010519780521003"),
];

/// How many people are generated besides the test accounts.
pub const GENERATED: usize = 300;

/// Fixes the population: the same people on every run of the same build.
const SEED: u64 = 0x7061_6e67_0110_0105;

/// Chaoyang district first (most of the population) and its neighbours, GB/T 2260 codes.
const REGIONS: [(u32, u32); 8] = [
    (110_105, 12), // 朝阳区
    (110_101, 2),  // 东城区
    (110_106, 2),  // 丰台区
    (110_108, 2),  // 海淀区
    (110_112, 1),  // 通州区
    (110_113, 1),  // 顺义区
    (110_114, 1),  // 昌平区
    (110_115, 1),  // 大兴区
];

/// Common surnames, roughly by frequency (the first ones repeat to weigh them).
const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐",
    "孙", "马", "朱", "胡", "郭", "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩",
    "冯", "邓", "曹", "彭", "曾", "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶",
    "程", "苏", "魏", "吕", "丁", "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范",
    "金", "石", "廖", "贾", "夏", "韦", "付", "方", "白", "邹", "孟", "熊", "秦", "邱", "江", "尹",
    "薛", "闫", "段", "雷", "侯", "龙", "史", "陶", "黎", "贺", "顾", "毛", "郝", "龚", "邵", "万",
    "钱", "严", "武", "戴", "欧阳", "司马",
];

const MALE_CHARS: &[&str] = &[
    "伟", "强", "磊", "军", "洋", "勇", "杰", "涛", "明", "超", "刚", "平", "辉", "鹏", "华", "飞",
    "鑫", "波", "斌", "宇", "浩", "凯", "健", "俊", "帆", "旭", "宁", "龙", "林", "博", "文", "建",
    "国", "志", "成", "海", "峰", "亮", "东", "晨", "振", "嘉", "子", "思", "一",
];

const FEMALE_CHARS: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀", "玲", "桂", "英", "燕", "红", "梅", "琳",
    "雪", "慧", "婷", "洁", "颖", "琴", "倩", "晶", "月", "欣", "悦", "佳", "怡", "萍", "兰", "凤",
    "璐", "瑶", "诗", "雨", "子", "思", "一", "嘉",
];

static PERSONS: LazyLock<Vec<Person>> = LazyLock::new(generate);

static BY_ID: LazyLock<HashMap<&'static str, usize>> = LazyLock::new(|| {
    PERSONS
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id_number.as_str(), i))
        .collect()
});

/// Everyone the system knows: the test accounts first, then the generated people.
pub fn persons() -> &'static [Person] {
    &PERSONS
}

/// The person with this ID number (a lowercase `x` is the same as `X`).
pub fn find(id_number: &str) -> Option<&'static Person> {
    let upper = id_number.to_ascii_uppercase();
    BY_ID.get(upper.as_str()).map(|&i| &PERSONS[i])
}

fn generate() -> Vec<Person> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut out = Vec::with_capacity(DEV_ACCOUNTS.len() + GENERATED);
    let mut seen = HashSet::new();
    for (name, first17) in DEV_ACCOUNTS {
        if let Some(p) = person(name, first17) {
            seen.insert(p.id_number.clone());
            out.push(p);
        }
    }
    while out.len() < DEV_ACCOUNTS.len() + GENERATED {
        let male = rng.random_bool(0.5);
        let first17 = id_digits(&mut rng, male);
        let name = full_name(&mut rng, male);
        if let Some(p) = person(&name, &first17)
            && seen.insert(p.id_number.clone())
        {
            out.push(p);
        }
    }
    out
}

/// A person from a name and the first 17 characters of an ID number.
fn person(name: &str, first17: &str) -> Option<Person> {
    let id_number = tongban_core::idcard::with_check_char(first17)?;
    let d = |r: std::ops::Range<usize>| first17.get(r).unwrap_or_default();
    let gender_digit = first17.as_bytes().get(16).copied().unwrap_or(b'0');
    Some(Person {
        name: name.to_owned(),
        birth_date: format!("{}-{}-{}", d(6..10), d(10..12), d(12..14)),
        male: (gender_digit - b'0') % 2 == 1,
        id_number,
    })
}

/// Region, birth date 1960–2004, two sequence digits and the gender digit (odd for men).
fn id_digits(rng: &mut StdRng, male: bool) -> String {
    let total: u32 = REGIONS.iter().map(|r| r.1).sum();
    let mut pick = rng.random_range(0..total);
    let region = REGIONS
        .iter()
        .find(|(_, w)| {
            if pick < *w {
                true
            } else {
                pick -= w;
                false
            }
        })
        .map_or(REGIONS[0].0, |r| r.0);
    let year = rng.random_range(1960..=2004);
    let month = rng.random_range(1..=12);
    let day = rng.random_range(1..=days_in_month(year, month));
    let seq = rng.random_range(0..100);
    let gender = 2 * rng.random_range(0..5) + u32::from(male);
    format!("{region}{year:04}{month:02}{day:02}{seq:02}{gender}")
}

fn full_name(rng: &mut StdRng, male: bool) -> String {
    let chars = if male { MALE_CHARS } else { FEMALE_CHARS };
    let mut name = String::new();
    name.push_str(SURNAMES.choose(rng).copied().unwrap_or("王"));
    let given = if rng.random_bool(0.35) { 1 } else { 2 };
    for _ in 0..given {
        name.push_str(chars.choose(rng).copied().unwrap_or("一"));
    }
    name
}

pub(crate) fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_accounts_come_first_with_valid_numbers() {
        let p = persons();
        assert_eq!(p.len(), DEV_ACCOUNTS.len() + GENERATED);
        for (person, (name, first17)) in p.iter().zip(DEV_ACCOUNTS) {
            assert_eq!(person.name, name);
            assert!(person.id_number.starts_with(first17));
            assert!(tongban_core::idcard::is_valid(person.id_number.as_bytes()));
        }
        assert_eq!(p[0].birth_date, "1990-03-07");
        assert!(p[0].male, "the sequence digit of 张伟's number is odd");
        assert!(!p[1].male);
    }

    #[test]
    fn every_number_is_unique_valid_and_from_the_regions() {
        let mut seen = HashSet::new();
        for p in persons() {
            assert!(seen.insert(&p.id_number), "duplicate");
            assert!(tongban_core::idcard::is_valid(p.id_number.as_bytes()));
            let region: u32 = p.id_number[..6].parse().expect("digits");
            assert!(REGIONS.iter().any(|r| r.0 == region), "{region}");
            let year: u32 = p.id_number[6..10].parse().expect("digits");
            assert!((1960..=2004).contains(&year), "{year}");
            let gender = p.id_number.as_bytes()[16] - b'0';
            assert_eq!(p.male, gender % 2 == 1);
            let n = p.name.chars().count();
            assert!((2..=4).contains(&n), "{n}");
            assert_eq!(find(&p.id_number), Some(p));
        }
        let (men, women): (Vec<_>, Vec<_>) = persons().iter().partition(|p| p.male);
        assert!(men.len() > 100 && women.len() > 100, "both sexes");
    }

    #[test]
    fn lookups_take_a_lowercase_check_character() {
        let x = persons()
            .iter()
            .find(|p| p.id_number.ends_with('X'))
            .expect("about one number in eleven ends in X");
        assert_eq!(find(&x.id_number.to_ascii_lowercase()), Some(x));
        assert_eq!(find("110105199003070010"), None);
    }
}
