use super::*;
use proptest::prelude::*;

fn ok(p: &str) -> String {
    normalize(p)
        .unwrap_or_else(|e| panic!("{p:?} refused: {e}"))
        .into_owned()
}

#[test]
fn canonical_paths_are_borrowed_unchanged() {
    for p in [
        "/",
        "/api/v1/items",
        "/api/v1/items/",
        "/api/v1/items/12",
        "/a.b/c..d/...",
        "/a/.b/..c",
        "/a;b=1/c",
        "/服务/事项",
    ] {
        assert!(
            matches!(normalize(p), Ok(Cow::Borrowed(q)) if q == p),
            "{p:?}"
        );
    }
}

#[test]
fn dot_segments_are_removed_as_rfc_3986_says() {
    for (p, want) in [
        (
            "/api/v1/public-items/../private-items/1",
            "/api/v1/private-items/1",
        ),
        (
            "/api/v1/public-items/%2e%2e/private-items/1",
            "/api/v1/private-items/1",
        ),
        (
            "/api/v1/public-items/%2E%2E/private-items/1",
            "/api/v1/private-items/1",
        ),
        (
            "/api/v1/public-items/.%2e/private-items/1",
            "/api/v1/private-items/1",
        ),
        (
            "/api/v1/public-items/%2e./private-items/1",
            "/api/v1/private-items/1",
        ),
        ("/a/b/../../c", "/c"),
        ("/a/./b", "/a/b"),
        ("/a/b/.", "/a/b/"),
        ("/a/b/..", "/a/"),
        ("/a/b/%2e", "/a/b/"),
        ("/.", "/"),
        ("/a/..", "/"),
        ("/a//b///c", "/a/b/c"),
        ("//a", "/a"),
        ("/a//", "/a/"),
        ("/a/./../b", "/b"),
    ] {
        assert_eq!(ok(p), want, "{p:?}");
    }
}

#[test]
fn escapes_of_unreserved_characters_are_decoded_and_others_uppercased() {
    assert_eq!(ok("/api/v1/%69tems"), "/api/v1/items");
    assert_eq!(ok("/a/%7e%2D%5f%2E"), "/a/~-_.");
    assert_eq!(ok("/a/%e6%9c%8d"), "/a/%E6%9C%8D");
    assert_eq!(ok("/a/b%20c"), "/a/b%20c");
    assert_eq!(ok("/a/%3f%23"), "/a/%3F%23");
}

#[test]
fn what_cannot_be_made_canonical_safely_is_refused() {
    for (p, why) in [
        ("a/b", PathError::NotAbsolute),
        ("", PathError::NotAbsolute),
        ("/a/%2f/b", PathError::EncodedSeparator),
        ("/a/%2F/b", PathError::EncodedSeparator),
        ("/a/%5c/b", PathError::EncodedSeparator),
        ("/a/%5C..%5Cb", PathError::EncodedSeparator),
        ("/a\\..\\b", PathError::Backslash),
        ("/a/%00", PathError::Control),
        ("/a/%0d%0aX-Evil:1", PathError::Control),
        ("/a/%7f", PathError::Control),
        ("/a/%", PathError::BadEscape),
        ("/a/%2", PathError::BadEscape),
        ("/a/%zz", PathError::BadEscape),
        ("/a/%ff", PathError::NotUtf8),
        ("/a/%c3", PathError::NotUtf8),
        ("/a/..;/b", PathError::DotParameter),
        ("/a/.;x/b", PathError::DotParameter),
        ("/a/%2e%2e;/b", PathError::DotParameter),
        ("/..", PathError::AboveRoot),
        ("/../a", PathError::AboveRoot),
        ("/a/b/../../../", PathError::AboveRoot),
        ("/a/%2e%2e/%2e%2e", PathError::AboveRoot),
    ] {
        assert_eq!(normalize(p).err(), Some(why), "{p:?}");
    }
}

#[test]
fn a_uri_keeps_its_query_and_authority() {
    let mut u: http::Uri = "/a/../b//c?x=1&y=/../".parse().expect("uri");
    normalize_uri(&mut u).expect("normalized");
    assert_eq!(u, "/b/c?x=1&y=/../");
    let mut u: http::Uri = "https://gov.example/a/%2e%2e/b".parse().expect("uri");
    normalize_uri(&mut u).expect("normalized");
    assert_eq!(u, "https://gov.example/b");
    let mut u: http::Uri = "/a/%2f".parse().expect("uri");
    assert_eq!(normalize_uri(&mut u), Err(PathError::EncodedSeparator));
}

/// A segment of a generated path: plain, dots in their spellings, empty, or escaped.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{1,6}",
        Just(".".to_string()),
        Just("..".to_string()),
        Just("%2e".to_string()),
        Just("%2E%2e".to_string()),
        Just(".%2e".to_string()),
        Just(String::new()),
        Just("%41b".to_string()),
        Just("%e4%bd%a0".to_string()),
    ]
}

proptest! {
    /// Normalizing is idempotent, and its output never keeps a dot-segment or an empty one.
    #[test]
    fn normal_forms_are_fixed_points(segs in proptest::collection::vec(segment(), 0..10)) {
        let p = format!("/{}", segs.join("/"));
        if let Ok(n) = normalize(&p) {
            let again = normalize(&n).expect("a normal form is accepted");
            prop_assert_eq!(&again, &n, "{:?}", p);
            if !n.contains('%') {
                prop_assert!(matches!(again, Cow::Borrowed(_)), "{p:?} -> {n:?}");
            }
            let inner: Vec<&str> = n[1..].split('/').collect();
            for (i, s) in inner.iter().enumerate() {
                prop_assert!(*s != "." && *s != "..", "{p:?} -> {n:?}");
                prop_assert!(!s.is_empty() || i == inner.len() - 1, "{p:?} -> {n:?}");
            }
        }
    }

    /// Any string is normalized or refused, never a panic; what is accepted starts with `/`.
    #[test]
    fn any_path_is_normalized_or_refused(p in "/[ -~]{0,40}") {
        if let Ok(n) = normalize(&p) {
            prop_assert!(n.starts_with('/'));
        }
    }
}
