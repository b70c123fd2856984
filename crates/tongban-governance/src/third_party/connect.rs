//! When a call's connection opened, so its read timeout can start there.
//!
//! reqwest runs connect and request as one future and times a "read timeout" from its start,
//! which would report a slow connect as a read timeout. A layer around reqwest's connector
//! tells the call that started a connect when it began and ended (the connect future is first
//! polled by that call's task, where a task-local names the call): while it is connecting,
//! only the connect timeout runs; once connected, the silence allowed is the read timeout.
//! A call served by a pooled connection starts its read timeout at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::watch;
use tokio::time::Instant;
use tower::{Layer, Service};

tokio::task_local! {
    static CALL: Arc<ConnectWatch>;
}

/// A call's view of the connects it started.
#[derive(Debug)]
pub(crate) struct ConnectWatch {
    tx: watch::Sender<Phase>,
}

/// Where a call's connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No connect of this call has finished: it may use a pooled connection.
    Idle,
    /// A connect of this call is under way.
    Connecting,
    /// Its last connect ended at this instant (opened or failed).
    Connected(Instant),
}

/// Wraps reqwest's connector to report connects to the call that started them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WatchLayer;

#[derive(Clone, Debug)]
pub(crate) struct Watched<S> {
    inner: S,
}

/// Reports the end of a connect when dropped: finished, failed or abandoned alike.
struct Connecting(Arc<ConnectWatch>);

// === impl ConnectWatch ===

impl ConnectWatch {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            tx: watch::Sender::new(Phase::Idle),
        })
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Phase> {
        self.tx.subscribe()
    }

    /// Runs `fut` (the call's request) as this call, so connects it starts report here.
    pub(crate) async fn scope<F: Future>(self: &Arc<Self>, fut: F) -> F::Output {
        CALL.scope(self.clone(), fut).await
    }
}

// === impl WatchLayer ===

impl<S> Layer<S> for WatchLayer {
    type Service = Watched<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Watched { inner }
    }
}

impl<S, R> Service<R> for Watched<S>
where
    S: Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        // Outside a call's task (a connect reqwest started on its own) nobody is told.
        let guard = CALL.try_with(Arc::clone).ok().map(|w| {
            w.tx.send_replace(Phase::Connecting);
            Connecting(w)
        });
        let fut = self.inner.call(req);
        Box::pin(async move {
            let r = fut.await;
            drop(guard);
            r
        })
    }
}

impl Drop for Connecting {
    fn drop(&mut self) {
        self.0.tx.send_replace(Phase::Connected(Instant::now()));
    }
}
