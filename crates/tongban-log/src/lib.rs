//! Logging: `tracing` events formatted as JSON with every field masked as it is written (or as
//! text passed through the masking writer), so no sink ever receives an unmasked name, ID
//! number, phone or secret; the access line and request id of every request ([`access`]).
//! Any binary of the platform (the server, a business service) logs through this crate.
#![forbid(unsafe_code)]

pub mod access;
pub mod batched;
pub mod context;
mod escape;
pub mod json;
mod request_id;

use std::io;
use std::sync::{Arc, Mutex};

use tongban_core::config::{LogConfig, LogFormat};
use tongban_core::mask::MaskingWriter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

/// Wraps any writer factory so that everything it writes is masked line by line.
#[derive(Clone, Debug)]
pub struct Masked<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Masked<M> {
    type Writer = MaskingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        MaskingWriter::new(self.0.make_writer())
    }
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("invalid log.level {0:?}: {1}")]
    Level(String, String),
    #[error("cannot start the log thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot install the log subscriber: {0}")]
    Install(String),
}

/// A subscriber writing masked lines to `writer`, filtered by `cfg.level`.
pub fn subscriber<W>(
    cfg: &LogConfig,
    writer: W,
) -> Result<Box<dyn tracing::Subscriber + Send + Sync>, LogError>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&cfg.level)
        .map_err(|e| LogError::Level(cfg.level.clone(), e.to_string()))?;
    let registry = tracing_subscriber::registry().with(filter);
    Ok(match cfg.format {
        // Masked field by field while formatted: no line needs reading back.
        LogFormat::Json => Box::new(registry.with(json::MaskedJson::new(writer))),
        LogFormat::Text => Box::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .event_format(WithRequestId(tracing_subscriber::fmt::format()))
                    .with_writer(Masked(writer)),
            ),
        ),
    })
}

/// A text line led by the id of the request being served, when there is one.
struct WithRequestId<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithRequestId<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        if let Some(id) = context::current() {
            write!(writer, "request_id={} ", id.as_str())?;
        }
        self.0.format_event(ctx, writer, event)
    }
}

/// The server's standard output, once [`init`] has started it.
static STDOUT: std::sync::OnceLock<batched::Batched> = std::sync::OnceLock::new();

/// Installs the process-wide subscriber writing to standard output through the batching log
/// thread (the server), or straight to standard error (commands whose standard output is their
/// result).
pub fn init(cfg: &LogConfig, to_stderr: bool) -> Result<(), LogError> {
    let sub = if to_stderr {
        subscriber(cfg, io::stderr)?
    } else {
        let out = batched::Batched::stdout().map_err(LogError::Thread)?;
        let _ = STDOUT.set(out.clone());
        subscriber(cfg, out)?
    };
    tracing::subscriber::set_global_default(sub).map_err(|e| LogError::Install(e.to_string()))
}

/// Waits until every line logged so far is written; call before the process exits.
pub fn flush() {
    if let Some(out) = STDOUT.get() {
        out.flush();
    }
}

/// An in-memory sink, for tests that must see exactly what the log would contain.
#[derive(Clone, Debug, Default)]
pub struct Capture(pub Arc<Mutex<Vec<u8>>>);

impl Capture {
    pub fn text(&self) -> String {
        let buf = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl io::Write for Capture {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("capture poisoned"))?
            .extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
