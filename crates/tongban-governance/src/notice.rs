//! Cluster notices: a short text one instance publishes and every other instance hears within
//! milliseconds. Core NATS publish/subscribe, so nothing is stored and a notice is delivered at
//! most once: for caches that must forget something everywhere at once and that bound what
//! they hold in time anyway. Notices sent while an instance was cut off from NATS never reach
//! it, so once it is connected again it hears [`Heard::Resync`]: forget whatever a missed
//! notice could have concerned.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_nats::{ConnectOptions, Event};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What an instance hears on a subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Heard {
    /// Another instance's notice (an instance does not hear its own).
    Notice(String),
    /// The connection to NATS was lost and is back: notices may have been missed.
    Resync,
}

/// Notices waiting to be published, at most: past it (NATS unreachable for long) new ones are
/// dropped, as notices sent while cut off are lost anyway.
const QUEUE: usize = 1024;

/// Publishes this instance's notices on one subject; see the module documentation.
#[derive(Clone, Debug)]
pub struct NatsNotices {
    tx: mpsc::Sender<String>,
}

impl NatsNotices {
    /// Connects to `url` and joins `subject`. What the other instances send comes on the
    /// receiver; the task publishes and listens until every sender is dropped.
    pub async fn connect(
        url: &str,
        subject: &str,
    ) -> Result<(Self, mpsc::UnboundedReceiver<Heard>, JoinHandle<()>), String> {
        let (heard, heard_rx) = mpsc::unbounded_channel();
        let lost = Arc::new(AtomicBool::new(false));
        let on_event = heard.clone();
        let client = ConnectOptions::new()
            .event_callback(move |event| {
                let (heard, lost) = (on_event.clone(), lost.clone());
                async move {
                    match event {
                        Event::Disconnected => lost.store(true, Ordering::SeqCst),
                        // The subscription is made again by the client; what was sent
                        // meanwhile is gone.
                        Event::Connected if lost.swap(false, Ordering::SeqCst) => {
                            let _ = heard.send(Heard::Resync);
                        }
                        _ => {}
                    }
                }
            })
            .connect(url)
            .await
            .map_err(|e| e.to_string())?;
        let mut sub = client
            .subscribe(subject.to_owned())
            .await
            .map_err(|e| e.to_string())?;
        // The server has the subscription before this instance says it is ready.
        client.flush().await.map_err(|e| e.to_string())?;
        // Each notice starts with its sender's id, so an instance skips its own.
        let origin = format!("{:016x}", rand::random::<u64>());
        let subject = subject.to_owned();
        let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    out = rx.recv() => {
                        let Some(text) = out else { break };
                        let payload = format!("{origin}\n{text}");
                        if let Err(e) = client.publish(subject.clone(), payload.into()).await {
                            tracing::warn!(error = %e, "A cluster notice could not be sent.");
                        }
                    }
                    msg = sub.next() => {
                        let Some(msg) = msg else { break };
                        let text = std::str::from_utf8(&msg.payload)
                            .ok()
                            .and_then(|p| p.split_once('\n'))
                            .filter(|(from, _)| *from != origin);
                        if let Some((_, text)) = text {
                            let _ = heard.send(Heard::Notice(text.to_owned()));
                        }
                    }
                }
            }
        });
        Ok((Self { tx }, heard_rx, task))
    }

    /// Sends `text` to every other instance, in the order sent. Never blocks; dropped (with a
    /// warning) when the queue is full.
    pub fn send(&self, text: &str) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(text.to_owned()) {
            tracing::warn!("A cluster notice was dropped: too many wait to be sent.");
        }
    }
}
