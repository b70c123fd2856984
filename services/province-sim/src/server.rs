//! Serving the simulator: its own accept loop around hyper's HTTP/1.1 connections, so that a
//! `reset` fault can end a connection with a TCP reset (`SO_LINGER` 0, then close) instead of
//! an answer, which a framework's server cannot do.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tongban_core::clock::{Clock, SystemClock};
use tower::ServiceExt;

use crate::app::{ConnCtl, Sim, Stats, router};
use crate::fault::Fault;

/// How the simulator runs.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// When set, API requests must carry `Authorization: Bearer <key>` (else 40100, HTTP 401).
    pub api_key: Option<String>,
    /// Today's date, which bounds the records (the last month with records is the one before).
    pub clock: Arc<dyn Clock>,
}

/// A running simulator; dropping it stops it and closes its connections.
#[derive(Debug)]
pub struct ProvinceSim {
    addr: SocketAddr,
    sim: Arc<Sim>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// A connection's socket; once a `reset` fault asked for it, the next read or write resets it.
struct SimIo {
    stream: TcpStream,
    ctl: Arc<ConnCtl>,
}

/// Serves the simulator on `listener` with the default options (no key, the system clock).
pub fn serve(listener: TcpListener) -> io::Result<ProvinceSim> {
    serve_with(listener, SimOptions::default())
}

/// Serves the simulator on `listener`; must be called within a tokio runtime.
pub fn serve_with(listener: TcpListener, options: SimOptions) -> io::Result<ProvinceSim> {
    let addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let sim = Arc::new(Sim::new(options.api_key, options.clock, stopped.clone()));
    let app = router(sim.clone());
    let task = tokio::spawn(accept_loop(listener, app, stopped));
    Ok(ProvinceSim {
        addr,
        sim,
        stop,
        task: Some(task),
    })
}

// === impl SimOptions ===

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            api_key: None,
            clock: Arc::new(SystemClock),
        }
    }
}

// === impl ProvinceSim ===

impl ProvinceSim {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr`, the base URL of its API.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What it has seen so far (as `GET /sim/stats` answers).
    pub fn stats(&self) -> Stats {
        self.sim.stats()
    }

    /// Queues `fault` for the next `count` API requests (as `POST /sim/faults`).
    pub fn inject(&self, fault: Fault, count: u32) {
        self.sim.inject(fault, count);
    }

    /// Forgets the queued faults (as `DELETE /sim/faults`).
    pub fn clear_faults(&self) {
        self.sim.clear_faults();
    }

    /// Stops accepting, ends every connection and waits for the accept loop to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ProvinceSim {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn accept_loop(listener: TcpListener, app: Router, mut stopped: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stopped.wait_for(|stop| *stop) => return,
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream, app.clone(), stopped.clone()));
            }
            Err(error) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::warn!(%error, "Accept failed.");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// One HTTP/1.1 connection, until the client closes it, a fault resets it, or the simulator
/// stops.
async fn connection(stream: TcpStream, app: Router, mut stopped: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let ctl = Arc::new(ConnCtl::default());
    let io = TokioIo::new(SimIo {
        stream,
        ctl: ctl.clone(),
    });
    let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
        req.extensions_mut().insert(ctl.clone());
        app.clone().oneshot(req.map(Body::new))
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::select! {
        r = conn => {
            if let Err(error) = r {
                tracing::debug!(%error, "Connection ended with an error.");
            }
        }
        _ = stopped.wait_for(|stop| *stop) => {}
    }
}

// === impl SimIo ===

impl SimIo {
    /// Sets `SO_LINGER` 0, so closing the socket (when hyper drops it after this error) sends
    /// a reset and discards whatever was not sent.
    fn reset<T>(&self) -> Poll<io::Result<T>> {
        if let Err(error) = self.stream.set_zero_linger() {
            tracing::warn!(%error, "SO_LINGER could not be set; the connection closes normally.");
        }
        Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
    }
}

impl AsyncRead for SimIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ctl.reset_requested() {
            return this.reset();
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.ctl.reset_requested() {
            return this.reset();
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.ctl.reset_requested() {
            return this.reset();
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ctl.reset_requested() {
            return this.reset();
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ctl.reset_requested() {
            return this.reset();
        }
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}
