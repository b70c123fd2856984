//! GB 11643-1999 resident ID numbers: the check character, in the one place that computes it.

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: &[u8; 11] = b"10X98765432";

/// The check character for the first 17 digits, or `None` if they are not 17 ASCII digits.
pub fn check_char(first17: &[u8]) -> Option<char> {
    if first17.len() != 17 || !first17.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    Some(char::from(CHECK[(sum % 11) as usize]))
}

/// Whether `v` is 18 characters whose last is the right check character (`x` taken as `X`).
pub fn is_valid(v: &[u8]) -> bool {
    v.len() == 18 && check_char(&v[..17]).is_some_and(|c| c as u8 == v[17].to_ascii_uppercase())
}

/// Completes 17 digits with their check character (for generating test data).
pub fn with_check_char(first17: &str) -> Option<String> {
    check_char(first17.as_bytes()).map(|c| format!("{first17}{c}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_numbers() {
        assert_eq!(check_char(b"11010519491231002"), Some('X'));
        assert!(is_valid(b"11010519491231002X"));
        assert!(is_valid(b"11010519491231002x"));
        assert!(!is_valid(b"110105194912310021"));
        assert!(!is_valid(b"1101051949123100"));
        assert_eq!(check_char(b"1101051949123100a"), None);
        assert_eq!(
            with_check_char("11010519491231002").as_deref(),
            Some("11010519491231002X")
        );
    }
}
