use super::*;
use std::io::Write;

fn file(text: &str) -> tempfile_lite::File {
    tempfile_lite::File::with(text)
}

/// A tiny temporary file helper, so the core crate needs no extra dev-dependency.
mod tempfile_lite {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static N: AtomicUsize = AtomicUsize::new(0);

    pub(super) struct File(pub(super) PathBuf);

    impl File {
        pub(super) fn with(text: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "tongban-config-{}-{}.toml",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            let mut f = std::fs::File::create(&p).expect("create");
            super::Write::write_all(&mut f, text.as_bytes()).expect("write");
            File(p)
        }
    }

    impl Drop for File {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

#[test]
fn no_file_gives_safe_defaults() {
    let c = Config::load(None, no_env()).expect("defaults are valid");
    assert_eq!(c.profile, Profile::Test);
    assert_eq!(c.server.public_addr.to_string(), "0.0.0.0:8443");
    assert_eq!(c.server.admin_addr.to_string(), "127.0.0.1:9443");
    assert!(!c.server.plain_http);
    assert_eq!(c.storage_url(), "sqlite://data/tongban.db");
}

#[test]
fn file_and_env_combine_env_wins() {
    let f = file("profile = \"test\"\n[server]\nalways_200 = true\nmax_body_bytes = 2048\n");
    let env = vec![
        (
            "TONGBAN_SERVER__MAX_BODY_BYTES".to_owned(),
            "4096".to_owned(),
        ),
        (
            "TONGBAN_STORAGE__URL".to_owned(),
            "postgres://u:pw@127.0.0.1/test".to_owned(),
        ),
        ("OTHER".to_owned(), "ignored".to_owned()),
    ];
    let c = Config::load(Some(&f.0), env).expect("valid");
    assert!(c.server.always_200);
    assert_eq!(c.server.max_body_bytes, 4096);
    assert_eq!(c.storage.url, "postgres://u:pw@127.0.0.1/test");
}

#[test]
fn unknown_key_names_key_and_line() {
    let f = file("profile = \"test\"\n\n[server]\npublic_adr = \"0.0.0.0:1\"\n");
    let e = Config::load(Some(&f.0), no_env())
        .expect_err("typo must fail")
        .to_string();
    assert!(e.contains("public_adr"), "{e}");
    assert!(e.contains("line 4"), "{e}");
}

#[test]
fn wrong_type_names_key_and_line() {
    let f = file("[server]\nmax_body_bytes = \"lots\"\n");
    let e = Config::load(Some(&f.0), no_env())
        .expect_err("must fail")
        .to_string();
    assert!(e.contains("line 2"), "{e}");
    assert!(e.contains("max_body_bytes") || e.contains("integer"), "{e}");
}

#[test]
fn bad_env_override_names_the_variable() {
    let env = vec![(
        "TONGBAN_SERVER__PUBLIC_ADDR".to_owned(),
        "not-an-address".to_owned(),
    )];
    let e = Config::load(None, env).expect_err("must fail").to_string();
    assert!(e.contains("TONGBAN_SERVER__PUBLIC_ADDR"), "{e}");
}

#[test]
fn production_refuses_plain_http_and_missing_certificate() {
    let f = file("profile = \"production\"\n[server]\nplain_http = true\n");
    let e = Config::load(Some(&f.0), no_env())
        .expect_err("must fail")
        .to_string();
    assert!(
        e.contains("server.plain_http") && e.contains("line 3"),
        "{e}"
    );

    let f = file("profile = \"production\"\n");
    let e = Config::load(Some(&f.0), no_env())
        .expect_err("must fail")
        .to_string();
    assert!(e.contains("tls.cert"), "{e}");
}

#[test]
fn plain_http_only_on_loopback() {
    let f = file("[server]\nplain_http = true\n");
    let e = Config::load(Some(&f.0), no_env())
        .expect_err("0.0.0.0 is not loopback")
        .to_string();
    assert!(e.contains("server.public_addr"), "{e}");

    let f = file("[server]\nplain_http = true\npublic_addr = \"127.0.0.1:8080\"\n");
    Config::load(Some(&f.0), no_env()).expect("loopback plain HTTP in test profile");
}

#[test]
fn masked_output_hides_database_password() {
    let env = vec![(
        "TONGBAN_STORAGE__URL".to_owned(),
        "postgres://u:topsecret@db/x".to_owned(),
    )];
    let c = Config::load(None, env).expect("valid");
    let shown = c.to_masked_toml();
    assert!(!shown.contains("topsecret"), "{shown}");
    assert!(shown.contains("postgres://u:******@db/x"), "{shown}");
}

#[test]
fn key_components_need_two_kinds_of_place() {
    let f = file("[keys]\ncomponents = [\"file:/a\", \"file:/b\"]\n");
    let e = Config::load(Some(&f.0), no_env())
        .expect_err("one kind")
        .to_string();
    assert!(e.contains("keys.components") && e.contains("line 2"), "{e}");
    let f = file("[keys]\ncomponents = [\"file:/a\", \"vault:x\"]\n");
    assert!(Config::load(Some(&f.0), no_env()).is_err());
    let f = file("[keys]\ncomponents = [\"file:/a\", \"env:TB_ROOT_2\", \"db:root-3\"]\n");
    Config::load(Some(&f.0), no_env()).expect("three places, three kinds");
}

#[test]
fn trusted_proxies_take_addresses_and_ranges_and_refuse_the_rest() {
    let f = file("[cluster]\ntrusted_proxies = [\"10.0.0.2\", \"10.8.0.0/16\"]\n");
    let c = Config::load(Some(&f.0), no_env()).expect("valid");
    let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
    let trusted = |a: &str| c.cluster.trusted_proxies.iter().any(|n| n.contains(ip(a)));
    assert!(trusted("10.0.0.2") && trusted("10.8.7.7"));
    assert!(!trusted("10.0.0.3") && !trusted("10.9.0.1"));
    let f = file("[cluster]\ntrusted_proxies = [\"10.8.0.0/33\"]\n");
    let e = Config::load(Some(&f.0), no_env())
        .expect_err("a prefix past /32 is refused")
        .to_string();
    assert!(e.contains("10.8.0.0/33") && e.contains("line 2"), "{e}");
}

#[test]
fn worker_threads_are_bounded() {
    let f = file("[server]\nworkers = 4\n");
    assert_eq!(
        Config::load(Some(&f.0), no_env())
            .expect("valid")
            .server
            .workers,
        4
    );
    let f = file("[server]\nworkers = 100000\n");
    let e = Config::load(Some(&f.0), no_env())
        .expect_err("refused")
        .to_string();
    assert!(e.contains("server.workers") && e.contains("256"), "{e}");
}
