use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::health::{self, Health};
use super::*;

fn reg(service: &str, address: &str) -> Registration {
    Registration {
        service: service.into(),
        address: address.into(),
        weight: 100,
        metadata: BTreeMap::new(),
        persistent: false,
    }
}

#[test]
fn heartbeat_health_follows_nacos_timings() {
    let t = Timings::default();
    assert_eq!(
        health::of_heartbeat(Duration::from_secs(14), &t),
        Health::Healthy
    );
    assert_eq!(
        health::of_heartbeat(Duration::from_secs(15), &t),
        Health::Unhealthy
    );
    assert_eq!(
        health::of_heartbeat(Duration::from_secs(29), &t),
        Health::Unhealthy
    );
    assert_eq!(
        health::of_heartbeat(Duration::from_secs(30), &t),
        Health::Expired
    );
}

#[test]
fn protect_threshold_returns_everyone_when_most_are_down() {
    let mk = |n: u8, healthy| Instance {
        id: n.to_string(),
        service: "s".into(),
        address: format!("10.0.0.{n}:80"),
        weight: 1,
        metadata: BTreeMap::new(),
        persistent: false,
        healthy,
    };
    let all = vec![mk(1, true), mk(2, false), mk(3, false), mk(4, false)];
    assert_eq!(health::select(all.clone(), 0.0).len(), 1);
    assert_eq!(
        health::select(all.clone(), 0.25).len(),
        1,
        "exactly at the threshold"
    );
    assert_eq!(health::select(all.clone(), 0.5).len(), 4);
    assert!(health::select(Vec::new(), 0.5).is_empty());
}

#[test]
fn registrations_are_validated() {
    assert!(reg("user-service", "127.0.0.1:8080").validate().is_ok());
    assert!(
        reg("user-service", "users.internal:8080")
            .validate()
            .is_ok()
    );
    assert!(reg("User_Service", "127.0.0.1:8080").validate().is_err());
    assert!(reg("users", "127.0.0.1").validate().is_err());
    assert!(reg("users", "host:0").validate().is_err());
    let mut r = reg("users", "127.0.0.1:1");
    r.weight = 0;
    assert!(r.validate().is_err());
}

#[tokio::test(start_paused = true)]
async fn silent_instances_turn_unhealthy_then_disappear() {
    let r = EmbeddedRegistry::open(Timings::default(), None)
        .await
        .expect("open");
    let mut events = r.watch();
    let a = r.register(reg("users", "127.0.0.1:1001")).await.expect("a");
    let b = r.register(reg("users", "127.0.0.1:1002")).await.expect("b");
    assert_eq!(events.recv().await.expect("event").service, "users");
    // Same service and address: same id.
    assert_eq!(
        r.register(reg("users", "127.0.0.1:1001"))
            .await
            .expect("again")
            .id,
        a.id
    );
    for _ in 0..4 {
        tokio::time::advance(Duration::from_secs(5)).await;
        r.heartbeat(&a.id).await.expect("beat");
        r.sweep();
    }
    // b has been silent for 20 s: unhealthy, still listed.
    let all = r.instances("users").await.expect("list");
    assert_eq!(all.len(), 2);
    assert!(all.iter().any(|i| i.id == b.id && !i.healthy));
    let healthy = r.healthy("users").await.expect("healthy");
    assert_eq!(
        healthy.iter().map(|i| &i.id).collect::<Vec<_>>(),
        vec![&a.id]
    );
    for _ in 0..2 {
        tokio::time::advance(Duration::from_secs(5)).await;
        r.heartbeat(&a.id).await.expect("beat");
        r.sweep();
    }
    // 30 s: b is removed; its heartbeat now asks it to register again.
    assert_eq!(r.instances("users").await.expect("list").len(), 1);
    assert!(matches!(
        r.heartbeat(&b.id).await,
        Err(RegistryError::NotFound)
    ));
    r.deregister(&a.id).await.expect("deregister");
    assert!(r.services().await.expect("services").is_empty());
}

#[derive(Debug)]
struct Switch(AtomicBool);

#[async_trait::async_trait]
impl Probe for Switch {
    async fn check(&self, _: &str) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[tokio::test(start_paused = true)]
async fn persistent_instances_are_probed_not_expired() {
    let r = EmbeddedRegistry::open(Timings::default(), None)
        .await
        .expect("open");
    let mut p = reg("archive", "127.0.0.1:2001");
    p.persistent = true;
    let p = r.register(p).await.expect("register");
    let probe = Arc::new(Switch(AtomicBool::new(true)));
    tokio::time::advance(Duration::from_secs(120)).await;
    r.sweep();
    r.probe_all(probe.as_ref()).await;
    assert!(
        r.instances("archive").await.expect("list")[0].healthy,
        "no heartbeat needed"
    );
    probe.0.store(false, Ordering::SeqCst);
    r.probe_all(probe.as_ref()).await;
    assert!(
        r.instances("archive").await.expect("list")[0].healthy,
        "one failure is tolerated"
    );
    r.probe_all(probe.as_ref()).await;
    assert!(!r.instances("archive").await.expect("list")[0].healthy);
    probe.0.store(true, Ordering::SeqCst);
    r.probe_all(probe.as_ref()).await;
    assert!(r.instances("archive").await.expect("list")[0].healthy);
    r.deregister(&p.id).await.expect("deregister");
}

#[tokio::test]
async fn tcp_probe_sees_a_listener() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    let p = TcpProbe {
        timeout: Duration::from_secs(1),
    };
    assert!(p.check(&addr).await);
    drop(l);
    assert!(!p.check(&addr).await);
}

#[tokio::test(start_paused = true)]
async fn maintenance_sweeps_on_its_own() {
    let r = EmbeddedRegistry::open(Timings::default(), None)
        .await
        .expect("open");
    let task = r.spawn_maintenance(Arc::new(Switch(AtomicBool::new(true))));
    let mut events = r.watch();
    r.register(reg("users", "127.0.0.1:1001"))
        .await
        .expect("register");
    assert_eq!(events.recv().await.expect("registered").service, "users");
    tokio::time::sleep(Duration::from_secs(16)).await;
    assert_eq!(events.recv().await.expect("unhealthy").service, "users");
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(events.recv().await.expect("removed").service, "users");
    assert!(r.services().await.expect("services").is_empty());
    task.abort();
}
