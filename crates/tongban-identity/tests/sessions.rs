//! Sessions, tokens and every login code of Appendix A that the identity service answers,
//! on a manual clock: 10006, 10002 (+ silent re-login), 10017, 10012, 10003, 10008, 10013,
//! 10014, 10016, 10015, 10024, 10023, 10025, 10027. Session fixation and sign-out everywhere.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use Call::*;
use common::{Env, LIVE_FACE, env, id_number};
use tongban_core::{ApiError, AuthLevel};
use tongban_identity::login::ReportedPerson;
use tongban_identity::{Caller, ExternalIdentity, Issued};

const MIN: u64 = 60;

fn ext(subject: &str) -> ExternalIdentity {
    ExternalIdentity {
        provider: "test".to_owned(),
        subject: subject.to_owned(),
        real_name: false,
        person: None,
        acr: Some("urn:test:loa:1".to_owned()),
        amr: vec!["pwd".to_owned(), "otp".to_owned()],
    }
}

async fn login(env: &Env, subject: &str, device: Option<&str>) -> Issued {
    env.id
        .login_external(&ext(subject), device)
        .await
        .expect("login")
}

/// One call to the identity service, as a row of a table of expected answers.
#[derive(Debug)]
enum Call<'a> {
    /// `resolve(token, device)`
    Resolve(&'a str, Option<&'a str>),
    /// `resolve_at_least(token, device, level)`
    ResolveAtLeast(&'a str, Option<&'a str>, AuthLevel),
    /// `resolve_stored(token, device)`
    ResolveStored(&'a str, Option<&'a str>),
    /// `require(caller, level)`
    Require(&'a Caller, AuthLevel),
    /// `relogin(credential, device)`
    Relogin(&'a str, Option<&'a str>),
    /// `login_external(identity, device)`
    LoginExternal(&'a ExternalIdentity, Option<&'a str>),
    Unbind(&'a Caller),
    /// `verify_real_name(caller, name, id_number)`
    VerifyRealName(&'a Caller, &'a str, &'a str),
    VerifyFace(&'a Caller, &'a [u8]),
    Phone(&'a Caller),
    /// `collect(caller, purpose, values)`
    Collect(&'a Caller, &'a str, &'a BTreeMap<String, String>),
    /// `grant_consent(caller, purpose, notice_version)`
    GrantConsent(&'a Caller, &'a str, &'a str),
    /// `withdraw_consent(caller, purpose)`
    WithdrawConsent(&'a Caller, &'a str),
}

impl Call<'_> {
    /// The code of the error the call answers; `None` if it succeeds.
    async fn code(&self, env: &Env) -> Option<u32> {
        fn err<T, E: Into<ApiError>>(r: Result<T, E>) -> Option<u32> {
            r.err().map(|e| e.into().code.0)
        }
        let id = &env.id;
        match *self {
            Resolve(t, d) => err(id.resolve(t, d).await),
            ResolveAtLeast(t, d, l) => err(id.resolve_at_least(t, d, l).await),
            ResolveStored(t, d) => err(id.resolve_stored(t, d).await),
            Require(c, l) => err(id.require(c, l)),
            Relogin(c, d) => err(id.relogin(c, d).await),
            LoginExternal(e, d) => err(id.login_external(e, d).await),
            Unbind(c) => err(id.unbind(c).await),
            VerifyRealName(c, name, number) => err(id.verify_real_name(c, name, number).await),
            VerifyFace(c, image) => err(id.verify_face(c, image).await),
            Phone(c) => err(id.phone(c).await),
            Collect(c, purpose, values) => err(id.collect(c, purpose, values).await),
            GrantConsent(c, purpose, version) => err(id.grant_consent(c, purpose, version).await),
            WithdrawConsent(c, purpose) => err(id.withdraw_consent(c, purpose).await),
        }
    }
}

/// Makes each call in turn (in order: a call can change what the next one answers) and checks
/// that it answers the error code of its row.
async fn answers(env: &Env, table: &[(Call<'_>, u32)]) {
    for (row, (call, code)) in table.iter().enumerate() {
        assert_eq!(
            call.code(env).await,
            Some(*code),
            "row {row}: {call:?} should answer {code}"
        );
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test]
async fn missing_and_unknown_tokens_answer_10006() {
    let env = env().await;
    answers(
        &env,
        &[
            (Resolve("", None), 10006),
            (Resolve("   ", None), 10006),
            (Resolve("not-a-token", None), 10006),
        ],
    )
    .await;
}

#[tokio::test]
async fn access_token_lapses_at_25_minutes_and_renews_silently_on_the_same_device() {
    let env = env().await;
    let s = login(&env, "alice", Some("dev-A")).await;
    let c = env
        .id
        .resolve(&s.access_token, Some("dev-A"))
        .await
        .expect("fresh");
    assert_eq!(c.session_id, s.session_id);
    assert_eq!(c.level, AuthLevel::Anonymous);
    assert_eq!(c.acr.as_deref(), Some("urn:test:loa:1"));
    assert_eq!(c.amr, vec!["pwd", "otp"]);
    env.clock.advance(secs(25 * MIN) - Duration::from_millis(1));
    env.id
        .resolve(&s.access_token, Some("dev-A"))
        .await
        .expect("still valid");
    env.clock.advance(Duration::from_millis(1));
    answers(&env, &[(Resolve(&s.access_token, Some("dev-A")), 10002)]).await;

    let r = env
        .id
        .relogin(&s.relogin_credential, Some("dev-A"))
        .await
        .expect("renew");
    assert_eq!(r.session_id, s.session_id, "same session, new access token");
    assert_ne!(r.access_token, s.access_token);
    assert_ne!(r.relogin_credential, s.relogin_credential);
    env.id
        .resolve(&r.access_token, Some("dev-A"))
        .await
        .expect("renewed");
    let dev = Some("dev-A");
    answers(
        &env,
        &[
            // The old access token is gone.
            (Resolve(&s.access_token, dev), 10006),
            // A credential works once; replaying it revokes the session (one of the two was
            // a thief).
            (Relogin(&s.relogin_credential, dev), 10017),
            (Resolve(&r.access_token, dev), 10017),
            (Relogin(&r.relogin_credential, dev), 10017),
            // Garbage is not a credential of this device.
            (Relogin("AQhwaWkuZGF0YQ", dev), 10012),
            (Relogin("", dev), 10006),
        ],
    )
    .await;
}

#[tokio::test]
async fn session_lapses_at_30_days_then_only_a_manual_login_helps() {
    let env = env().await;
    let s = login(&env, "bob", Some("dev-B")).await;
    env.clock.advance(secs(30 * 24 * 3600) - secs(1));
    answers(&env, &[(Resolve(&s.access_token, Some("dev-B")), 10002)]).await;
    let r = env
        .id
        .relogin(&s.relogin_credential, Some("dev-B"))
        .await
        .expect("renew");
    assert!(
        r.session_expires_at == s.session_expires_at,
        "renewal does not extend the session"
    );
    env.clock.advance(secs(1));
    answers(
        &env,
        &[
            (Resolve(&r.access_token, Some("dev-B")), 10017),
            (Relogin(&r.relogin_credential, Some("dev-B")), 10017),
        ],
    )
    .await;
    let again = login(&env, "bob", Some("dev-B")).await;
    env.id
        .resolve(&again.access_token, Some("dev-B"))
        .await
        .expect("manual login");
}

#[tokio::test]
async fn a_token_from_one_device_is_refused_on_another() {
    let env = env().await;
    let s = login(&env, "carol", Some("phone-1")).await;
    answers(
        &env,
        &[
            (Resolve(&s.access_token, Some("phone-2")), 10012),
            (Resolve(&s.access_token, None), 10012),
            (Relogin(&s.relogin_credential, Some("phone-2")), 10012),
            (Relogin(&s.relogin_credential, None), 10012),
        ],
    )
    .await;
    // Refusals did not spend the credential.
    env.id
        .resolve(&s.access_token, Some("phone-1"))
        .await
        .expect("own device");
    // Served from the session cache now, which remembers the device that matched: others
    // are still refused.
    answers(
        &env,
        &[
            (Resolve(&s.access_token, Some("phone-2")), 10012),
            (Resolve(&s.access_token, None), 10012),
        ],
    )
    .await;
    env.id
        .resolve(&s.access_token, Some("phone-1"))
        .await
        .expect("own device, cached");
    env.id
        .relogin(&s.relogin_credential, Some("phone-1"))
        .await
        .expect("own device");
}

#[tokio::test]
async fn every_login_makes_a_new_session_so_fixation_is_impossible() {
    let env = env().await;
    let a = login(&env, "dave", Some("d")).await;
    let b = login(&env, "dave", Some("d")).await;
    assert_ne!(a.session_id, b.session_id);
    assert_ne!(a.access_token, b.access_token);
    // Neither a session id nor a credential is accepted as an access token.
    answers(
        &env,
        &[
            (Resolve(&a.session_id, Some("d")), 10006),
            (Resolve(&a.relogin_credential, Some("d")), 10006),
        ],
    )
    .await;
    // Tokens are opaque, 256-bit, and never the session id.
    assert_eq!(a.access_token.len(), 43);
    assert!(!a.access_token.contains(&a.session_id));
}

#[tokio::test]
async fn sign_out_ends_one_session_and_sign_out_everywhere_ends_all() {
    let env = env().await;
    let a = login(&env, "erin", Some("a")).await;
    let b = login(&env, "erin", Some("b")).await;
    let c = login(&env, "erin", Some("c")).await;
    let ca = env.id.resolve(&a.access_token, Some("a")).await.expect("a");
    env.id.sign_out(&ca).await.expect("sign out");
    answers(&env, &[(Resolve(&a.access_token, Some("a")), 10017)]).await;
    let cb = env
        .id
        .resolve(&b.access_token, Some("b"))
        .await
        .expect("b still in");
    assert_eq!(
        env.id.sign_out_everywhere(&cb).await.expect("everywhere"),
        2
    );
    answers(
        &env,
        &[
            (Resolve(&b.access_token, Some("b")), 10017),
            (Resolve(&c.access_token, Some("c")), 10017),
            (Relogin(&c.relogin_credential, Some("c")), 10017),
        ],
    )
    .await;
}

#[tokio::test]
async fn unbinding_answers_10023_until_the_next_platform_login() {
    let env = env().await;
    let s = login(&env, "frank", Some("f")).await;
    let c = env
        .id
        .resolve(&s.access_token, Some("f"))
        .await
        .expect("in");
    env.id.unbind(&c).await.expect("unbind");
    answers(
        &env,
        &[
            (Resolve(&s.access_token, Some("f")), 10023),
            (Relogin(&s.relogin_credential, Some("f")), 10023),
            (Unbind(&c), 10023),
        ],
    )
    .await;
    let again = login(&env, "frank", Some("f")).await;
    env.id
        .resolve(&again.access_token, Some("f"))
        .await
        .expect("bound again");
}

async fn real_named(env: &Env, subject: &str, device: &str, name: &str, id: &str) -> Issued {
    let s = login(env, subject, Some(device)).await;
    let c = env
        .id
        .resolve(&s.access_token, Some(device))
        .await
        .expect("in");
    env.id
        .verify_real_name(&c, name, id)
        .await
        .expect("real name");
    s
}

#[tokio::test]
async fn real_name_checks_answer_10016_10014_and_10013() {
    let env = env().await;
    let s = login(&env, "grace", Some("g")).await;
    let c = env
        .id
        .resolve(&s.access_token, Some("g"))
        .await
        .expect("in");
    let good = id_number("11010519900307777");
    let mut bad_check = good.clone();
    bad_check.replace_range(17.., if good.ends_with('0') { "1" } else { "0" });
    let (bad_region, bad_birth) = (
        id_number("99010519900307777"),
        id_number("11010519901307777"),
    );
    // Local checks: check digit, region, birth date, shape, name.
    answers(
        &env,
        &[
            (VerifyRealName(&c, "张三", &bad_check), 10016),
            (VerifyRealName(&c, "张三", &bad_region), 10016),
            (VerifyRealName(&c, "张三", &bad_birth), 10016),
            (VerifyRealName(&c, "张三", "1101051990"), 10016),
            (VerifyRealName(&c, "张", &good), 10016),
        ],
    )
    .await;
    // The provider: a different name is 10014; a record it cannot check is 10016.
    env.real_name.register("张三", &good);
    answers(&env, &[(VerifyRealName(&c, "李四", &good), 10014)]).await;
    env.real_name.set_accept_unknown(false);
    let unknown = id_number("11010519850101123");
    answers(&env, &[(VerifyRealName(&c, "王五", &unknown), 10016)]).await;
    env.real_name.set_accept_unknown(true);
    // Still anonymous after all that.
    assert_eq!(
        env.id
            .resolve(&s.access_token, Some("g"))
            .await
            .expect("in")
            .level,
        AuthLevel::Anonymous
    );
    let ok = env
        .id
        .verify_real_name(&c, "张三", &good.to_lowercase())
        .await
        .expect("pass");
    assert_eq!(ok.level, AuthLevel::RealName);
    assert!(!ok.id_number.contains("19900307"), "masked");
    assert_eq!(
        env.id
            .resolve(&s.access_token, Some("g"))
            .await
            .expect("in")
            .level,
        AuthLevel::RealName
    );
    // Idempotent for the same person.
    env.id
        .verify_real_name(&c, "张三", &good)
        .await
        .expect("again");
    // The same person cannot bind a second account, nor this account a second person.
    let other = login(&env, "heidi", Some("h")).await;
    let oc = env
        .id
        .resolve(&other.access_token, Some("h"))
        .await
        .expect("in");
    let another = id_number("11010519800101888");
    answers(
        &env,
        &[
            (VerifyRealName(&oc, "张三", &good), 10013),
            (VerifyRealName(&c, "赵六", &another), 10013),
        ],
    )
    .await;
    // Found again by blind index: one person row, nothing stored for the refused attempts.
    assert_eq!(env.store.persons().count().await.expect("count"), 1);
}

#[tokio::test]
async fn routes_needing_a_face_check_answer_10003_with_how_to_step_up() {
    let env = env().await;
    let anon = login(&env, "ivan", Some("i")).await;
    let ac = env
        .id
        .resolve(&anon.access_token, Some("i"))
        .await
        .expect("in");
    env.id
        .require(&ac, AuthLevel::Anonymous)
        .expect("anonymous routes");
    answers(
        &env,
        &[
            (Require(&ac, AuthLevel::RealName), 10008),
            // Face verification needs a real-name record first.
            (VerifyFace(&ac, LIVE_FACE), 10008),
        ],
    )
    .await;

    let s = real_named(
        &env,
        "judy",
        "j",
        "欧阳娜娜",
        &id_number("44030419950505123"),
    )
    .await;
    let c = env
        .id
        .resolve(&s.access_token, Some("j"))
        .await
        .expect("in");
    let e = env
        .id
        .require(&c, AuthLevel::FaceVerified)
        .expect_err("needs face");
    assert_eq!(e.code.0, 10003);
    let data = e.data.expect("step-up data");
    assert_eq!(data["required"], "face_verified");
    assert_eq!(data["max_age"], 600);
    answers(
        &env,
        &[(
            ResolveAtLeast(&s.access_token, Some("j"), AuthLevel::FaceVerified),
            10003,
        )],
    )
    .await;

    let passed = env.id.verify_face(&c, LIVE_FACE).await.expect("pass");
    assert_eq!(passed.max_age, 600);
    let c = env
        .id
        .resolve_at_least(&s.access_token, Some("j"), AuthLevel::FaceVerified)
        .await
        .expect("verified");
    assert_eq!(c.level, AuthLevel::FaceVerified);
    assert!(c.face_verified_at.is_some());
    // It lapses on its own after the maximum age.
    env.clock.advance(secs(600));
    let c = env
        .id
        .resolve(&s.access_token, Some("j"))
        .await
        .expect("in");
    assert_eq!(c.level, AuthLevel::RealName);
    answers(&env, &[(Require(&c, AuthLevel::FaceVerified), 10003)]).await;
    // A face check belongs to the session: another session of the same user is not verified.
    let other = login(&env, "judy", Some("j2")).await;
    let oc = env
        .id
        .resolve(&other.access_token, Some("j2"))
        .await
        .expect("in");
    assert_eq!(oc.level, AuthLevel::RealName);
}

#[tokio::test]
async fn face_failures_answer_10025_then_lock_out_with_10027_and_every_attempt_is_audited() {
    let env = env().await;
    let s = real_named(
        &env,
        "mallory",
        "m",
        "陈静",
        &id_number("32010219880808456"),
    )
    .await;
    let c = env
        .id
        .resolve(&s.access_token, Some("m"))
        .await
        .expect("in");
    for i in 0..5 {
        let e = ApiError::from(
            env.id
                .verify_face(&c, b"someone else")
                .await
                .expect_err("fail"),
        );
        assert_eq!(e.code.0, 10025, "attempt {i}");
        assert_eq!(e.data.expect("data")["attempts_left"], 4 - i);
        env.clock.advance(secs(60));
    }
    // Locked: even the right face is refused, without asking the provider.
    let e = ApiError::from(env.id.verify_face(&c, LIVE_FACE).await.expect_err("locked"));
    assert_eq!(e.code.0, 10027);
    assert_eq!(e.code.http_status(), http::StatusCode::TOO_MANY_REQUESTS);
    answers(
        &env,
        &[(
            ResolveAtLeast(&s.access_token, Some("m"), AuthLevel::FaceVerified),
            10003,
        )],
    )
    .await;
    // When the first failure leaves the 10-minute window, one more attempt is allowed.
    env.clock.advance(secs(5 * 60 + 1));
    env.id.verify_face(&c, LIVE_FACE).await.expect("unlocked");
    let audit = env
        .store
        .identity()
        .face_attempts_of(&c.user_id)
        .await
        .expect("audit");
    let outcomes: Vec<&str> = audit.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(
        outcomes,
        ["fail", "fail", "fail", "fail", "fail", "locked", "pass"]
    );
    assert!(
        audit
            .iter()
            .all(|a| a.session_id == c.session_id && a.provider == "simulator")
    );
}

#[tokio::test]
async fn platform_reported_person_is_stored_through_the_vault_and_real_named() {
    let env = env().await;
    let id = id_number("11010519491231002");
    let e = ExternalIdentity {
        real_name: true,
        person: Some(ReportedPerson {
            name: "刘洋".to_owned().into(),
            id_number: id.clone().into(),
        }),
        ..ext("platform-user-1")
    };
    let s = env.id.login_external(&e, Some("p")).await.expect("login");
    assert_eq!(s.level, AuthLevel::RealName);
    let c = env
        .id
        .resolve(&s.access_token, Some("p"))
        .await
        .expect("in");
    assert_eq!(c.level, AuthLevel::RealName);
    let export = env.id.export(&c).await.expect("export");
    assert_eq!(export["person"]["name"], "刘洋");
    assert_eq!(export["person"]["id_number"], id);
    // Another platform account reporting the same person: 10013.
    let dup = ExternalIdentity {
        subject: "platform-user-2".to_owned(),
        ..e.clone()
    };
    answers(&env, &[(LoginExternal(&dup, Some("p")), 10013)]).await;
}

#[tokio::test]
async fn phone_consent_collection_export_and_deletion() {
    let env = env().await;
    let s = real_named(&env, "nina", "n", "黄丽", &id_number("51010419920202321")).await;
    let c = env
        .id
        .resolve(&s.access_token, Some("n"))
        .await
        .expect("in");
    let phone = || BTreeMap::from([("phone".to_owned(), "13800138000".to_owned())]);
    let extra = BTreeMap::from([("address".to_owned(), "北京市东城区".to_owned())]);
    answers(
        &env,
        &[
            // No consent covers the phone yet.
            (Phone(&c), 10024),
            // Collecting needs consent (10008) and only the purpose's fields (20000).
            (Collect(&c, "contact", &phone()), 10008),
            // An outdated notice, an unknown purpose.
            (GrantConsent(&c, "contact", "0"), 20000),
            (GrantConsent(&c, "marketing", "1"), 20000),
        ],
    )
    .await;
    let granted = env
        .id
        .grant_consent(&c, "contact", "1")
        .await
        .expect("consent");
    assert_eq!(granted.fields, vec!["phone"]);
    answers(
        &env,
        &[
            // Consented but not given.
            (Phone(&c), 10015),
            (Collect(&c, "contact", &extra), 20000),
        ],
    )
    .await;
    env.id
        .collect(&c, "contact", &phone())
        .await
        .expect("collect");
    assert_eq!(env.id.phone(&c).await.expect("phone"), "13800138000");

    let export = env.id.export(&c).await.expect("export");
    assert_eq!(export["fields"]["phone"]["value"], "13800138000");
    assert_eq!(export["person"]["name"], "黄丽");
    assert_eq!(export["consents"][0]["purpose"], "contact");
    assert_eq!(export["consents"][0]["notice_version"], "1");
    assert!(export["consents"][0]["granted_at"].as_i64().is_some());

    // Withdrawing deletes what the purpose collected.
    assert_eq!(
        env.id
            .withdraw_consent(&c, "contact")
            .await
            .expect("withdraw"),
        1
    );
    answers(
        &env,
        &[(WithdrawConsent(&c, "contact"), 10022), (Phone(&c), 10024)],
    )
    .await;
    assert!(
        env.store
            .identity()
            .fields_of(&c.user_id)
            .await
            .expect("fields")
            .is_empty()
    );

    // Deleting the user's data removes the person and ends every session.
    env.id
        .grant_consent(&c, "contact", "1")
        .await
        .expect("consent");
    env.id
        .collect(&c, "contact", &phone())
        .await
        .expect("collect");
    env.id.delete_data(&c).await.expect("delete");
    assert_eq!(env.store.persons().count().await.expect("persons"), 0);
    assert!(
        env.store
            .identity()
            .fields_of(&c.user_id)
            .await
            .expect("fields")
            .is_empty()
    );
    assert!(
        env.store
            .identity()
            .consents_of(&c.user_id)
            .await
            .expect("consents")
            .is_empty()
    );
    answers(&env, &[(Resolve(&s.access_token, Some("n")), 10017)]).await;
    let again = login(&env, "nina", Some("n")).await;
    let c2 = env
        .id
        .resolve(&again.access_token, Some("n"))
        .await
        .expect("in");
    assert_eq!(c2.level, AuthLevel::Anonymous);
    let export = env.id.export(&c2).await.expect("export");
    assert!(export["person"].is_null());
    assert!(export["fields"].as_object().expect("map").is_empty());
}

/// Two instances on one PostgreSQL database, as in a cluster: a sign-out on one takes effect
/// there at once and on the other within `session_cache_ms`, never later.
#[tokio::test]
async fn a_sign_out_on_another_instance_takes_effect_within_the_cache_time() {
    let store = common::postgres().await;
    let clock = std::sync::Arc::new(tongban_core::clock::ManualClock::at_ms(common::T0));
    let cfg = tongban_identity::IdentityConfig {
        session_cache_ms: 300,
        ..common::config()
    };
    let a = common::env_with(store.clone(), cfg.clone(), clock.clone(), None);
    let b = common::env_with(store, cfg, clock, None);
    let s = login(&a, "frank", Some("d")).await;
    let on_b =
        b.id.resolve(&s.access_token, Some("d"))
            .await
            .expect("b reads the session and keeps it");
    a.id.sign_out(&on_b).await.expect("sign out on a");
    // The instance that signed out never serves the session again.
    answers(&a, &[(Resolve(&s.access_token, Some("d")), 10017)]).await;
    // b may still answer from what it read (that is the bound being tested), but only until
    // the cache time has passed.
    tokio::time::sleep(Duration::from_millis(350)).await;
    answers(&b, &[(Resolve(&s.access_token, Some("d")), 10017)]).await;
    // Expiry is checked on every request, cached rows or not.
    let s2 = login(&b, "frank", Some("d")).await;
    b.id.resolve(&s2.access_token, Some("d"))
        .await
        .expect("cached now");
    b.clock.advance(secs(26 * MIN));
    answers(&b, &[(Resolve(&s2.access_token, Some("d")), 10002)]).await;
}

/// Hands one instance's changes to another at once, as the cluster's notices (NATS) do.
#[derive(Debug)]
struct Notify(std::sync::Weak<tongban_identity::Identity>);

impl tongban_identity::ChangeFeed for Notify {
    fn announce(&self, user: Option<&str>) {
        if let Some(other) = self.0.upgrade() {
            other.changed_elsewhere(user);
        }
    }
}

/// With the instances told of each other's changes, a sign-out on one is refused on the other
/// at once, though its cache would keep the session for a minute; other accounts stay cached
/// there, and an instance told to resync forgets everything it cached.
#[tokio::test]
async fn a_change_heard_from_another_instance_takes_effect_at_once() {
    let store = common::postgres().await;
    let clock = std::sync::Arc::new(tongban_core::clock::ManualClock::at_ms(common::T0));
    let cfg = tongban_identity::IdentityConfig {
        session_cache_ms: 60_000,
        ..common::config()
    };
    let a = common::env_with(store.clone(), cfg.clone(), clock.clone(), None);
    let b = common::env_with(store, cfg, clock, None);
    assert!(
        a.id.set_change_feed(std::sync::Arc::new(Notify(std::sync::Arc::downgrade(
            &b.id
        ))))
    );
    assert!(
        b.id.set_change_feed(std::sync::Arc::new(Notify(std::sync::Arc::downgrade(
            &a.id
        ))))
    );
    assert!(
        !b.id
            .set_change_feed(std::sync::Arc::new(Notify(std::sync::Weak::new()))),
        "a feed is set once"
    );
    let ivan = login(&a, "ivan", Some("d")).await;
    let judy = login(&a, "judy", Some("d")).await;
    let cached = |env: &Env, token: &str| env.id.resolve_cached(token, Some("d"));
    for token in [&ivan.access_token, &judy.access_token] {
        let on_b = b.id.resolve(token, Some("d")).await.expect("b reads it");
        assert!(matches!(cached(&b, token), Some(Ok(_))), "and keeps it");
        if token == &ivan.access_token {
            a.id.resolve(token, Some("d"))
                .await
                .expect("a keeps it too");
            assert_eq!(on_b.session_id, ivan.session_id);
        }
    }
    let caller =
        a.id.resolve(&ivan.access_token, Some("d"))
            .await
            .expect("in");
    a.id.sign_out(&caller).await.expect("sign out on a");
    assert!(cached(&b, &ivan.access_token).is_none(), "b dropped it");
    answers(&b, &[(Resolve(&ivan.access_token, Some("d")), 10017)]).await;
    assert!(
        matches!(cached(&b, &judy.access_token), Some(Ok(_))),
        "another account stays cached on b"
    );
    // b's own change reaches a the same way.
    a.id.resolve(&judy.access_token, Some("d"))
        .await
        .expect("a keeps it");
    assert!(matches!(cached(&a, &judy.access_token), Some(Ok(_))));
    let on_b =
        b.id.resolve(&judy.access_token, Some("d"))
            .await
            .expect("in");
    b.id.sign_out(&on_b).await.expect("sign out on b");
    assert!(cached(&a, &judy.access_token).is_none(), "a dropped it");
    answers(&a, &[(Resolve(&judy.access_token, Some("d")), 10017)]).await;
    // Told that notices may have been missed, b forgets everything.
    let kim = login(&a, "kim", Some("d")).await;
    b.id.resolve(&kim.access_token, Some("d"))
        .await
        .expect("in");
    assert!(matches!(cached(&b, &kim.access_token), Some(Ok(_))));
    b.id.changed_elsewhere(None);
    assert!(cached(&b, &kim.access_token).is_none());
}

/// A busy session is read again ahead of its cache time by one request, while the others are
/// still answered from the cache: no burst of store reads when the entry would expire, and a
/// change made on another instance is seen sooner.
///
/// The cache ages its entries on the monotonic clock (`tongban_core::clock::instant`), not on
/// the injected one, so this test waits in real time for the refresh, with a bound, and asserts
/// no duration: it polls the cache until the first request is told to read the store.
#[tokio::test]
async fn one_request_refreshes_a_busy_session_ahead_of_the_cache_time() {
    let store = common::postgres().await;
    let clock = std::sync::Arc::new(tongban_core::clock::ManualClock::at_ms(common::T0));
    let cfg = tongban_identity::IdentityConfig {
        session_cache_ms: 3000,
        ..common::config()
    };
    let a = common::env_with(store.clone(), cfg.clone(), clock.clone(), None);
    let b = common::env_with(store, cfg, clock, None);
    let s = login(&a, "grace", Some("d")).await;
    let on_b =
        b.id.resolve(&s.access_token, Some("d"))
            .await
            .expect("b reads the session and keeps it");
    // b is not told of the sign-out: it serves the session from its cache until the refresh.
    a.id.sign_out(&on_b).await.expect("sign out on a");
    let cached = |token: &str| b.id.resolve_cached(token, Some("d"));
    let mut served = 0u32;
    let refresh = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match cached(&s.access_token) {
                Some(Ok(_)) => served += 1,
                // Past three quarters of the cache time: the first request to ask.
                None => return,
                Some(Err(e)) => panic!("a refusal before any store read: {e:?}"),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(refresh.is_ok(), "no request was told to read the store");
    assert!(served > 0, "the entry was served from the cache before");
    for _ in 0..10 {
        assert!(
            matches!(cached(&s.access_token), Some(Ok(_))),
            "the others are answered from the cache meanwhile"
        );
    }
    // The reading request finds the sign-out.
    answers(&b, &[(ResolveStored(&s.access_token, Some("d")), 10017)]).await;
    assert_eq!(
        cached(&s.access_token).map(|r| r.expect_err("signed out").code.0),
        Some(10017),
        "and every later request on b sees it"
    );
    answers(&b, &[(ResolveStored("  ", Some("d")), 10006)]).await;
}

/// Requests that miss the cache together (a cold instance, 32 at once) take turns to read the
/// session: each gets its caller, whether it read the store or found what another put.
#[tokio::test]
async fn requests_that_miss_together_all_resolve() {
    let store = common::postgres().await;
    let clock = std::sync::Arc::new(tongban_core::clock::ManualClock::at_ms(common::T0));
    let a = common::env_with(store.clone(), common::config(), clock.clone(), None);
    let cold = common::env_with(store, common::config(), clock, None);
    let s = login(&a, "heidi", Some("d")).await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..32 {
        let (id, token) = (cold.id.clone(), s.access_token.clone());
        // Every fourth on another device: a waiter checks its own device, not the reader's.
        let device = if i % 4 == 3 { "other" } else { "d" };
        set.spawn(async move { id.resolve(&token, Some(device)).await.map(|c| (c, device)) });
    }
    let (mut ok, mut refused) = (0, 0);
    while let Some(r) = set.join_next().await {
        match r.expect("joined") {
            Ok((c, device)) => {
                assert_eq!(device, "d");
                assert_eq!(c.session_id, s.session_id);
                ok += 1;
            }
            Err(e) => {
                assert_eq!(e.code.0, 10012, "another device");
                refused += 1;
            }
        }
    }
    assert_eq!((ok, refused), (24, 8));
}

/// A change of one account drops that account's cached sessions only: with many people
/// signing in and out, everyone else's stay cached (each change used to empty the cache).
#[tokio::test]
async fn a_change_of_one_account_leaves_the_others_cached() {
    let cfg = tongban_identity::IdentityConfig {
        session_cache_ms: 60_000,
        ..common::config()
    };
    let clock = std::sync::Arc::new(tongban_core::clock::ManualClock::at_ms(common::T0));
    let env = common::env_with(common::sqlite().await, cfg, clock, None);
    let alice = login(&env, "alice", Some("a")).await;
    let bob = login(&env, "bob", Some("b")).await;
    let bob2 = login(&env, "bob", Some("b2")).await;
    for (s, d) in [(&alice, "a"), (&bob, "b"), (&bob2, "b2")] {
        env.id
            .resolve(&s.access_token, Some(d))
            .await
            .expect("read and kept");
    }
    let cached = |s: &Issued, d| env.id.resolve_cached(&s.access_token, Some(d));
    let alice_cached = || matches!(cached(&alice, "a"), Some(Ok(_)));
    assert!(alice_cached());
    login(&env, "carol", None).await;
    answers(&env, &[(Relogin("not-a-credential", None), 10012)]).await;
    assert!(
        alice_cached(),
        "kept through another's sign-in and a refused credential"
    );

    let on = env
        .id
        .resolve(&bob.access_token, Some("b"))
        .await
        .expect("bob");
    env.id.sign_out(&on).await.expect("sign out");
    assert!(cached(&bob, "b").is_none(), "read again after the change");
    assert!(
        cached(&bob2, "b2").is_none(),
        "every entry of the account goes"
    );
    answers(&env, &[(Resolve(&bob.access_token, Some("b")), 10017)]).await;
    env.id
        .resolve(&bob2.access_token, Some("b2"))
        .await
        .expect("bob's other session lives");
    assert!(alice_cached(), "kept through bob's sign-out");

    // Alice's own re-login rotates her access token: the old one is not served from the
    // cache.
    let renewed = env
        .id
        .relogin(&alice.relogin_credential, Some("a"))
        .await
        .expect("relogin");
    assert!(cached(&alice, "a").is_none());
    answers(&env, &[(Resolve(&alice.access_token, Some("a")), 10006)]).await;
    env.id
        .resolve(&renewed.access_token, Some("a"))
        .await
        .expect("the new token");
    assert!(
        matches!(cached(&bob2, "b2"), Some(Ok(_))),
        "kept through alice's re-login"
    );
}
