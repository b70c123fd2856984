use super::*;

#[test]
fn a_toml_section_chooses_the_adapters() {
    let cfg: IdentityConfig = toml::from_str(
        r#"
        access_ttl_secs = 1500
        face_max_failures = 3

        [login.oidc]
        issuer = "https://id.example.gov.cn"
        client_id = "tongban"
        client_secret = "s"
        redirect_uri = "https://tongban.example.gov.cn/api/v1/login-callbacks"
        real_name_acr = ["urn:loa:2"]

        [face.http]
        url = "https://face.example.gov.cn/verify"
        api_key = "k"

        [real_name.http]
        url = "https://rn.example.gov.cn/check"
        api_key = "k"
        timeout_secs = 3
        "#,
    )
    .expect("parse");
    assert_eq!(cfg.face_max_failures, 3);
    assert_eq!(cfg.face_window_secs, 600, "defaults fill the rest");
    assert!(matches!(&cfg.login, Some(LoginConfig::Oidc(o)) if o.scopes == ["openid"]));
    assert!(matches!(&cfg.real_name, RealNameConfig::Http(h) if h.timeout_secs == 3));
    assert!(cfg.simulators_in_use().is_empty());
    let d = IdentityConfig::default();
    assert_eq!(
        (d.access_ttl_secs, d.session_ttl_secs),
        (25 * 60, 30 * 24 * 3600)
    );
    assert_eq!(d.simulators_in_use(), ["face", "real_name"]);
    assert!(
        toml::from_str::<IdentityConfig>("acces_ttl_secs = 1").is_err(),
        "typos are refused"
    );
    assert!(toml::from_str::<IdentityConfig>("[login.saml]\nx = 1").is_err());
}
