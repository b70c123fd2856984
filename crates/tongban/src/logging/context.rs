//! The request a log line belongs to.
//!
//! Each request's work runs with its id set here (for every poll of its future, on whichever
//! thread polls it), and every line logged meanwhile carries it as `request_id`. A `tracing`
//! span did the same at several times the cost: it was created, entered and left through the
//! whole subscriber stack on every poll of every request.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

thread_local! {
    static CURRENT: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// Runs `f` as part of request `id`: lines it logs carry the id.
pub fn within<R>(id: &Arc<str>, f: impl FnOnce() -> R) -> R {
    /// Puts the previous request back even if `f` panics.
    struct Restore(Option<Arc<str>>);
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

/// Polls `fut` as part of request `id` each time.
pub async fn scope<F: Future>(id: Arc<str>, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| within(&id, || fut.as_mut().poll(cx))).await
}

/// The id of the request being served on this thread, if any.
pub fn current() -> Option<Arc<str>> {
    CURRENT
        .try_with(|c| c.try_borrow().ok().and_then(|id| id.clone()))
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_seen_inside_and_restored_after() {
        let a: Arc<str> = Arc::from("a");
        let b: Arc<str> = Arc::from("b");
        assert_eq!(current(), None);
        within(&a, || {
            assert_eq!(current().as_deref(), Some("a"));
            within(&b, || {
                assert_eq!(current().as_deref(), Some("b"));
            });
            assert_eq!(current().as_deref(), Some("a"));
        });
        assert_eq!(current(), None);
        let _ = std::panic::catch_unwind(|| within(&a, || panic!("boom")));
        assert_eq!(current(), None, "restored after a panic");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn interleaved_requests_keep_their_own_ids() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let first = tokio::spawn(scope(Arc::from("one"), async move {
            let _ = rx.await;
            current()
        }));
        let second = tokio::spawn(scope(Arc::from("two"), async move {
            tokio::task::yield_now().await;
            let seen = current();
            let _ = tx.send(());
            seen
        }));
        assert_eq!(second.await.expect("task").as_deref(), Some("two"));
        assert_eq!(first.await.expect("task").as_deref(), Some("one"));
        assert_eq!(current(), None);
    }
}
