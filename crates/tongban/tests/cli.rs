//! The command line: config check, version, help, and refusals at start-up.

mod common;

use common::{temp_dir, tongban, write_config};

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = tongban();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run tongban");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_and_help_with_examples() {
    let (code, out, _) = run(&["version"], &[]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("tongban {}", env!("CARGO_PKG_VERSION")));
    for sub in [
        &["serve", "--help"][..],
        &["config", "check", "--help"],
        &["version", "--help"],
        &["--help"],
    ] {
        let (code, out, _) = run(sub, &[]);
        assert_eq!(code, 0, "{sub:?}");
        assert!(
            out.contains("Example"),
            "{sub:?} help shows an example: {out}"
        );
    }
}

#[test]
fn admin_token_prints_a_token_and_its_digest() {
    let (code, out, _) = run(&["admin-token"], &[]);
    assert_eq!(code, 0);
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("token (give to operators; shown once): "))
        .expect("token line");
    let digest = tongban_crypto::encoding::hex_encode(&tongban_crypto::sm3::sm3(token.as_bytes()));
    assert!(out.contains(&format!("token_sm3 = \"{digest}\"")), "{out}");
}

#[test]
fn config_check_prints_effective_config_with_secrets_masked() {
    let dir = temp_dir("cfg");
    let cfg = write_config(
        &dir,
        "[server]\nalways_200 = true\n[identity.face.http]\nurl = \"https://face.example\"\napi_key = \"FaceSecret123\"\n",
    );
    let (code, out, err) = run(
        &["config", "check", "--config", cfg.to_str().expect("path")],
        &[(
            "TONGBAN_STORAGE__URL",
            "postgres://tongban:Very5ecret@db.internal/tongban",
        )],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("always_200 = true"), "{out}");
    assert!(
        out.contains("postgres://tongban:******@db.internal/tongban"),
        "{out}"
    );
    assert!(!out.contains("Very5ecret"), "{out}");
    assert!(
        !out.contains("FaceSecret123"),
        "identity secrets are masked too: {out}"
    );
}

#[test]
fn invalid_config_names_key_and_line_and_fails() {
    let dir = temp_dir("cfg");
    let cfg = write_config(&dir, "profile = \"test\"\n[server]\nmax_body_bytes = -1\n");
    let (code, _, err) = run(
        &["config", "check", "--config", cfg.to_str().expect("path")],
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("line 3") && err.contains("max_body_bytes"),
        "{err}"
    );

    let (code, _, err) = run(
        &["config", "check"],
        &[("TONGBAN_SERVER__PUBLIC_ADDR", "nowhere")],
    );
    assert_ne!(code, 0);
    assert!(err.contains("TONGBAN_SERVER__PUBLIC_ADDR"), "{err}");

    let (code, _, err) = run(
        &["config", "check", "--config", "/nonexistent/tongban.toml"],
        &[],
    );
    assert_ne!(code, 0);
    assert!(err.contains("/nonexistent/tongban.toml"), "{err}");
}

#[test]
fn production_refuses_to_start_without_a_real_certificate() {
    let dir = temp_dir("prod");
    let keys = "[keys]\ncomponents = [\"file:/secure/root-1\", \"env:TB_ROOT_2\"]\n[admin]\ntoken_sm3 = \"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"\n";
    let cfg = write_config(&dir, &format!("profile = \"production\"\n{keys}"));
    let (code, _, err) = run(&["serve", "--config", cfg.to_str().expect("path")], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("tls.cert"), "{err}");
    // Nor without the root key's component locations, nor without an admin token.
    // Nor without the host names the certificate must cover.
    let unnamed = "profile = \"production\"\n[tls]\ncert = \"/etc/c.pem\"\nkey = \"/etc/k.pem\"\n";
    let cfg = write_config(&dir, unnamed);
    let (code, _, err) = run(&["serve", "--config", cfg.to_str().expect("path")], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("tls.server_names"), "{err}");
    let tls = "profile = \"production\"\n[tls]\ncert = \"/etc/c.pem\"\nkey = \"/etc/k.pem\"\nserver_names = [\"localhost\"]\n";
    let cfg = write_config(&dir, tls);
    let (code, _, err) = run(&["serve", "--config", cfg.to_str().expect("path")], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("keys.components"), "{err}");
    let cfg = write_config(
        &dir,
        &format!("{tls}[keys]\ncomponents = [\"file:/secure/root-1\", \"env:TB_ROOT_2\"]\n"),
    );
    let (code, _, err) = run(&["serve", "--config", cfg.to_str().expect("path")], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("admin.token_sm3"), "{err}");

    // A self-signed certificate is refused too.
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("gen");
    std::fs::write(dir.join("c.pem"), generated.cert.pem()).expect("write");
    std::fs::write(dir.join("k.pem"), generated.signing_key.serialize_pem()).expect("write");
    let cfg = write_config(
        &dir,
        &format!(
            "profile = \"production\"\n[server]\npublic_addr = \"127.0.0.1:0\"\nadmin_addr = \"127.0.0.2:0\"\n[tls]\ncert = \"{0}/c.pem\"\nkey = \"{0}/k.pem\"\nserver_names = [\"localhost\"]\n{keys}",
            dir.display()
        ),
    );
    let (code, out, err) = run(
        &[
            "serve",
            "--config",
            cfg.to_str().expect("path"),
            "--data-dir",
            dir.join("d").to_str().expect("p"),
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(err.contains("self-signed"), "{out}\n{err}");

    // Plain HTTP is refused in production, and off loopback in test.
    let cfg = write_config(
        &dir,
        "profile = \"production\"\n[server]\nplain_http = true\n",
    );
    let (code, _, err) = run(&["serve", "--config", cfg.to_str().expect("path")], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("server.plain_http"), "{err}");
    let (code, _, err) = run(&["serve"], &[("TONGBAN_SERVER__PLAIN_HTTP", "true")]);
    assert_ne!(code, 0);
    assert!(err.contains("loopback"), "{err}");
}
