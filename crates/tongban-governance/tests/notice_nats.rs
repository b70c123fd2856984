//! Cluster notices on NATS (127.0.0.1:4222, or `TONGBAN_TEST_NATS_URL`).

use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tongban_governance::notice::{Heard, NatsNotices};

fn url() -> String {
    std::env::var("TONGBAN_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

async fn next(rx: &mut UnboundedReceiver<Heard>) -> Heard {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("heard within 5 s")
        .expect("still listening")
}

/// What one instance sends every other hears, in order; none hears its own, and an instance
/// on another subject hears nothing.
#[tokio::test]
async fn every_other_instance_hears_a_notice_once_in_order() {
    let subject = format!("tongban_test.notices.{}", std::process::id());
    let join = |s: String| async move {
        NatsNotices::connect(&url(), &s)
            .await
            .expect("NATS must be running (bash scripts/services.sh)")
    };
    let (a, mut a_heard, _a_task) = join(subject.clone()).await;
    let (b, mut b_heard, _b_task) = join(subject.clone()).await;
    let (_c, mut c_heard, _c_task) = join(subject.clone()).await;
    let (_other, mut other_heard, _o_task) = join(format!("{subject}.other")).await;

    for text in ["u:u-1", "*", "u:u-2"] {
        a.send(text);
    }
    for rx in [&mut b_heard, &mut c_heard] {
        for text in ["u:u-1", "*", "u:u-2"] {
            assert_eq!(next(rx).await, Heard::Notice(text.to_owned()));
        }
    }
    // a's first notice is b's reply, not an echo of its own three.
    b.send("reply");
    assert_eq!(next(&mut a_heard).await, Heard::Notice("reply".to_owned()));
    assert_eq!(next(&mut c_heard).await, Heard::Notice("reply".to_owned()));
    assert!(b_heard.try_recv().is_err(), "b heard itself");
    assert!(other_heard.try_recv().is_err(), "another subject heard it");
}

#[tokio::test]
async fn an_unreachable_server_is_an_error() {
    let err = NatsNotices::connect("nats://127.0.0.1:1", "tongban_test.unreachable")
        .await
        .expect_err("refused");
    assert!(!err.is_empty());
}

/// A TCP relay to NATS whose connections can be cut, as a network failure would.
struct Relay {
    addr: std::net::SocketAddr,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start() -> Relay {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let target = url().trim_start_matches("nats://").to_owned();
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let list = conns.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = l.accept().await {
                let target = target.clone();
                let t = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                list.lock().expect("lock").push(t);
            }
        });
        Relay { addr, conns }
    }

    fn cut(&self) {
        for t in self.conns.lock().expect("lock").drain(..) {
            t.abort();
        }
    }
}

/// Notices sent while an instance was cut off never reach it: once it is connected again it
/// is told to resync, and hears the notices sent after that.
#[tokio::test]
async fn a_reconnected_instance_is_told_to_resync() {
    let subject = format!("tongban_test.resync.{}", std::process::id());
    let relay = Relay::start().await;
    let (a, _a_heard, _a_task) = NatsNotices::connect(&url(), &subject)
        .await
        .expect("NATS must be running (bash scripts/services.sh)");
    let (_b, mut b_heard, _b_task) =
        NatsNotices::connect(&format!("nats://{}", relay.addr), &subject)
            .await
            .expect("through the relay");
    a.send("before");
    assert_eq!(next(&mut b_heard).await, Heard::Notice("before".to_owned()));
    relay.cut();
    assert_eq!(next(&mut b_heard).await, Heard::Resync);
    // Subscribed again: later notices arrive (sent until one does, as the server may take the
    // subscription a moment after the client reconnects).
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            a.send("after");
            if let Ok(Some(h)) =
                tokio::time::timeout(Duration::from_millis(200), b_heard.recv()).await
            {
                break h;
            }
        }
    })
    .await
    .expect("heard after reconnecting");
    assert_eq!(heard, Heard::Notice("after".to_owned()));
}
