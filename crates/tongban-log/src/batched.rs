//! Standard output written in batches by one thread of its own.
//!
//! A server logging a line per request would otherwise make a `write` system call per request
//! from its workers, contending for the standard-output lock. Here a worker appends its line to
//! a shared buffer and goes on; the log thread writes whatever has accumulated in one call. No
//! line is dropped: past [`MAX_PENDING`] bytes a worker waits for the log thread, and
//! [`Batched::flush`] (called when the server stops) writes everything still pending. A line
//! reaches standard output at most [`LINGER`] after it was logged (plus the write itself).

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Bytes pending before writers wait for the log thread (a slow or blocked sink then slows
/// the server instead of losing lines or growing memory).
const MAX_PENDING: usize = 8 * 1024 * 1024;

/// How long the log thread lets lines gather once woken: the most a line waits to be written.
const LINGER: Duration = Duration::from_millis(2);

/// A writer factory for standard output; cheap to clone.
#[derive(Clone, Debug)]
pub struct Batched {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// The log thread waits here for lines.
    lines: Condvar,
    /// Writers over the limit, and `flush`, wait here for the log thread.
    written: Condvar,
}

#[derive(Debug, Default)]
struct State {
    pending: Vec<u8>,
    /// The log thread is asleep on `lines` (waking it costs a system call: only then).
    idle: bool,
    /// Batches taken by the log thread and written.
    taken: u64,
    done: u64,
}

/// One event's writer.
#[derive(Debug)]
pub struct BatchedWriter<'a> {
    shared: &'a Shared,
}

impl Batched {
    /// Starts the log thread.
    pub fn stdout() -> io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::Builder::new()
            .name("tongban-log".to_owned())
            .spawn(move || s.run(&mut io::stdout()))?;
        Ok(Self { shared })
    }

    /// Returns once every line written before the call is on standard output.
    pub fn flush(&self) {
        let mut st = self.shared.lock();
        let target = st.taken + u64::from(!st.pending.is_empty());
        if st.idle {
            self.shared.lines.notify_one();
        }
        while st.done < target {
            st = self
                .shared
                .written
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self, out: &mut dyn Write) {
        let mut batch = Vec::new();
        loop {
            {
                let mut st = self.lock();
                while st.pending.is_empty() {
                    st.idle = true;
                    st = self.lines.wait(st).unwrap_or_else(PoisonError::into_inner);
                    st.idle = false;
                }
            }
            // Let lines gather: writers only wake this thread while it waits, so under load
            // that is once per linger, not once per line.
            std::thread::sleep(LINGER);
            {
                let mut st = self.lock();
                std::mem::swap(&mut batch, &mut st.pending);
                st.taken += 1;
            }
            // Nowhere to report a failing standard output but itself.
            let _ = out.write_all(&batch).and_then(|()| out.flush());
            batch.clear();
            self.lock().done += 1;
            self.written.notify_all();
        }
    }
}

impl io::Write for BatchedWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut st = self.shared.lock();
        while st.pending.len() >= MAX_PENDING {
            if st.idle {
                self.shared.lines.notify_one();
            }
            st = self
                .shared
                .written
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
        st.pending.extend_from_slice(data);
        if st.idle {
            self.shared.lines.notify_one();
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Batched {
    type Writer = BatchedWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        BatchedWriter {
            shared: &self.shared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test can read, standing in for standard output.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_from_every_thread_arrives_whole_and_flush_waits_for_them() {
        let shared = Arc::new(Shared::default());
        let sink = Sink::default();
        let (s, mut out) = (shared.clone(), sink.clone());
        std::thread::spawn(move || s.run(&mut out));
        let b = Batched { shared };
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let b = b.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        let mut w = b.make_writer();
                        w.write_all(format!("{{\"t\":{t},\"i\":{i}}}\n").as_bytes())
                            .expect("write");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("writer thread");
        }
        b.flush();
        let text = String::from_utf8(sink.0.lock().expect("sink").clone()).expect("utf8");
        assert_eq!(text.lines().count(), 20_000);
        for line in text.lines() {
            let _: serde_json::Value = serde_json::from_str(line).expect("whole line");
        }
        for t in 0..4 {
            assert!(text.contains(&format!("{{\"t\":{t},\"i\":4999}}")));
        }
    }
}
