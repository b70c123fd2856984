use super::*;

#[test]
fn paths_follow_the_url_rules() {
    for p in table().paths() {
        let segments: Vec<&str> = p.trim_start_matches('/').split('/').collect();
        assert_eq!(&segments[..2], ["api", "v1"], "{p}");
        for s in &segments[2..] {
            if s.starts_with('{') {
                continue;
            }
            assert!(
                s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !s.starts_with('-')
                    && !s.ends_with('-')
                    && !s.contains("--"),
                "{p}: segment {s:?}"
            );
        }
        // The resource noun (first segment after the version) is plural.
        assert!(segments[2].ends_with('s'), "{p}");
    }
}
