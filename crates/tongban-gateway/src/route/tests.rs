use super::*;

fn spec(prefix: &str) -> RouteSpec {
    serde_json::from_value(serde_json::json!({
        "id": "users",
        "prefix": prefix,
        "auth": "real_name",
        "upstream": {"instances": [{"address": "127.0.0.1:9000"}]}
    }))
    .expect("spec")
}

#[test]
fn url_rules_name_what_is_broken() {
    let e = url_rules::check("/Get_User").expect_err("refused");
    let rules: Vec<UrlRule> = e.broken.iter().map(|(r, _)| *r).collect();
    assert!(rules.contains(&UrlRule::Lowercase), "{rules:?}");
    assert!(rules.contains(&UrlRule::Hyphens), "{rules:?}");
    assert!(rules.contains(&UrlRule::NoVerbs), "{rules:?}");
    assert!(rules.contains(&UrlRule::PluralNouns), "{rules:?}");
    let text = e.to_string();
    assert!(
        text.contains("URL 须全部小写") && text.contains("连字符"),
        "{text}"
    );

    assert!(url_rules::check("/api/v1/services/{id}/materials").is_ok());
    assert!(url_rules::check("/api/v1/service-items").is_ok());
    assert!(url_rules::check("/").is_ok());
    let plural = url_rules::check("/api/v1/user/{id}").expect_err("singular");
    assert_eq!(
        plural.broken,
        vec![(UrlRule::PluralNouns, "user".to_owned())]
    );
    assert!(url_rules::check("/api/v1/users//x").is_err());
    assert!(url_rules::check("api/v1/users").is_err());
}

#[test]
fn a_route_without_an_auth_level_is_refused() {
    let mut s = spec("/api/v1/users");
    assert!(s.validate().is_ok());
    s.auth = None;
    assert_eq!(s.validate(), Err(RouteError::MissingAuth("users".into())));
    let json = serde_json::json!({"id": "x", "prefix": "/api/v1/xs", "upstream": {"instances": [{"address": "a:1"}]}});
    let s: RouteSpec = serde_json::from_value(json).expect("parses");
    assert!(matches!(s.validate(), Err(RouteError::MissingAuth(_))));
}

#[test]
fn bad_routes_are_refused() {
    assert!(matches!(
        spec("/Get_User").validate(),
        Err(RouteError::Url(_))
    ));
    let mut s = spec("/api/v1/users");
    s.upstream.instances.clear();
    assert!(s.validate().is_err());
    let mut s = spec("/api/v1/users");
    s.timeouts.total_ms = 10;
    assert!(s.validate().is_err());
    let mut s = spec("/api/v1/users");
    s.methods = vec!["GE T".into()];
    assert!(s.validate().is_err());
    let unknown = serde_json::json!({"id": "x", "prefix": "/xs", "auth": "anonymous", "upstream": {"instances": []}, "surprise": 1});
    assert!(serde_json::from_value::<RouteSpec>(unknown).is_err());
}

#[test]
fn longest_prefix_host_and_method_decide() {
    let t = Table::new(vec![
        (Matcher::new("/api/v1", None, vec![]), "api"),
        (
            Matcher::new("/api/v1/users", None, vec![Method::GET]),
            "users-get",
        ),
        (
            Matcher::new("/api/v1/users", Some("admin.example".into()), vec![]),
            "users-admin",
        ),
        (
            Matcher::new("/api/v1/services/{id}/materials", None, vec![]),
            "materials",
        ),
    ]);
    assert_eq!(
        t.find(None, &Method::GET, "/api/v1/users/7"),
        Match::Found(&"users-get")
    );
    assert_eq!(
        t.find(None, &Method::HEAD, "/api/v1/users"),
        Match::Found(&"users-get")
    );
    assert_eq!(
        t.find(Some("admin.example:8443"), &Method::POST, "/api/v1/users"),
        Match::Found(&"users-admin")
    );
    // POST to users without the admin host falls to the shorter /api/v1 prefix.
    assert_eq!(
        t.find(None, &Method::POST, "/api/v1/users"),
        Match::Found(&"api")
    );
    assert_eq!(
        t.find(None, &Method::GET, "/api/v1/usersx"),
        Match::Found(&"api")
    );
    assert_eq!(
        t.find(None, &Method::GET, "/api/v1/services/9/materials/2"),
        Match::Found(&"materials")
    );
    assert_eq!(t.find(None, &Method::GET, "/other"), Match::None);
    // Segments are whole: empty ones (doubled or trailing slashes) do not count, a prefix of
    // a segment is not the segment, and a path shorter than the prefix does not match.
    assert_eq!(
        t.find(None, &Method::GET, "//api//v1/users/"),
        Match::Found(&"users-get")
    );
    assert_eq!(
        t.find(None, &Method::GET, "/api/v1/services//materials"),
        Match::Found(&"api")
    );
    assert_eq!(t.find(None, &Method::GET, "/api/v"), Match::None);
    assert_eq!(t.find(None, &Method::GET, "/api/"), Match::None);
    assert_eq!(t.find(None, &Method::GET, ""), Match::None);

    let only_get = Table::new(vec![(
        Matcher::new("/api/v1/users", None, vec![Method::GET]),
        "g",
    )]);
    assert_eq!(
        only_get.find(None, &Method::DELETE, "/api/v1/users/1"),
        Match::WrongMethod
    );
}

#[test]
fn strip_removes_the_prefix_segments() {
    assert_eq!(strip("/api/v1/users/7", 3), "/7");
    assert_eq!(strip("/api/v1/users", 3), "/");
    assert_eq!(strip("/api/v1/users/7/", 3), "/7/");
}
