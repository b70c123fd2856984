//! The request a log line belongs to.
//!
//! Each request's work runs with its id set here (for every poll of its future, on whichever
//! thread polls it), and every line logged meanwhile carries it as `request_id`. A `tracing`
//! span did the same at several times the cost: it was created, entered and left through the
//! whole subscriber stack on every poll of every request.

use std::cell::RefCell;
use std::sync::Arc;

use tongban_core::mask;

thread_local! {
    static CURRENT: RefCell<Option<Arc<LogId>>> = const { RefCell::new(None) };
}

/// A request id as log lines carry it. Clients may choose their ids, so it is masked like any
/// text, once when the request starts rather than on each of its lines, and kept JSON-escaped
/// too.
#[derive(Debug, PartialEq, Eq)]
pub struct LogId {
    json: Box<str>,
    /// The id when escaping changed it; otherwise it is `json` without its quotes (one
    /// allocation per request instead of two).
    text: Option<Box<str>>,
}

impl LogId {
    pub fn new(id: &str) -> Self {
        Self::masked(&mask::mask_untrusted_cow(id))
    }

    /// An id this program made of characters masking leaves alone (see
    /// `request_id::generate`): not masked again.
    pub fn own(id: &str) -> Self {
        debug_assert_eq!(mask::mask_untrusted_cow(id), id);
        Self::masked(id)
    }

    fn masked(text: &str) -> Self {
        let mut json = String::with_capacity(text.len() + 2);
        crate::escape::push_str_json(&mut json, text);
        let text = (json.len() != text.len() + 2).then(|| text.into());
        LogId {
            json: json.into(),
            text,
        }
    }

    /// The id, masked.
    pub fn as_str(&self) -> &str {
        match &self.text {
            Some(t) => t,
            None => &self.json[1..self.json.len() - 1],
        }
    }

    /// The id, masked, as a JSON string literal.
    pub fn json(&self) -> &str {
        &self.json
    }
}

/// Runs `f` as part of request `id`: lines it logs carry the id.
pub fn within<R>(id: &Arc<LogId>, f: impl FnOnce() -> R) -> R {
    /// Puts the previous request back even if `f` panics.
    struct Restore(Option<Arc<LogId>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            let _ = CURRENT.try_with(|c| *c.borrow_mut() = prev);
        }
    }
    let prev = CURRENT.with(|c| c.borrow_mut().replace(id.clone()));
    let _restore = Restore(prev);
    f()
}

/// The id of the request being served on this thread, if any.
pub fn current() -> Option<Arc<LogId>> {
    CURRENT
        .try_with(|c| c.try_borrow().ok().and_then(|id| id.clone()))
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls `fut` as part of request `id` each time (as the access layer's future does).
    async fn scope<F: std::future::Future>(id: Arc<LogId>, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| within(&id, || fut.as_mut().poll(cx))).await
    }

    #[test]
    fn the_id_is_seen_inside_and_restored_after() {
        let a = Arc::new(LogId::new("a"));
        let b = Arc::new(LogId::new("b"));
        let seen = || current().map(|id| id.as_str().to_owned());
        assert_eq!(current(), None);
        within(&a, || {
            assert_eq!(seen().as_deref(), Some("a"));
            within(&b, || {
                assert_eq!(seen().as_deref(), Some("b"));
            });
            assert_eq!(seen().as_deref(), Some("a"));
        });
        assert_eq!(current(), None);
        let _ = std::panic::catch_unwind(|| within(&a, || panic!("boom")));
        assert_eq!(current(), None, "restored after a panic");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn interleaved_requests_keep_their_own_ids() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let seen = || current().map(|id| id.as_str().to_owned());
        let first = tokio::spawn(scope(Arc::new(LogId::new("one")), async move {
            let _ = rx.await;
            seen()
        }));
        let second = tokio::spawn(scope(Arc::new(LogId::new("two")), async move {
            tokio::task::yield_now().await;
            let seen = seen();
            let _ = tx.send(());
            seen
        }));
        assert_eq!(second.await.expect("task").as_deref(), Some("two"));
        assert_eq!(first.await.expect("task").as_deref(), Some("one"));
        assert_eq!(current(), None);
    }

    #[test]
    fn ids_are_masked_once_and_kept_as_json() {
        let id = LogId::new("11010519491231002X");
        assert_eq!(id.as_str(), "110***********002X");
        assert_eq!(id.json(), "\"110***********002X\"");
        // One that escaping changes keeps its own text.
        let id = LogId::new("a\"b\\c");
        assert_eq!(id.as_str(), "a\"b\\c");
        assert_eq!(id.json(), r#""a\"b\\c""#);
    }
}
