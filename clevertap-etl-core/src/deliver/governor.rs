//! The per-account concurrency governor: at most `limit` requests in flight, granted in FIFO
//! order, with an AIMD limit (a 429 halves it, a success raises it by one, up to the maximum).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

/// One account's governor. Shared (via `Arc`) by every upload to that account.
#[derive(Debug)]
pub(crate) struct Governor {
    max: usize,
    adaptive: bool,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Requests allowed in flight now.
    limit: usize,
    /// Requests in flight now.
    in_flight: usize,
    /// Bumped at each decrease: a 429 lowers the limit only if its request was granted after
    /// the last decrease, so one burst of 429s halves the limit once, not once per request.
    epoch: u64,
    /// Callers waiting for a slot, oldest first. Each is sent the epoch of its grant.
    waiters: VecDeque<oneshot::Sender<u64>>,
    /// Bursts of 429s (counted once per epoch, like decreases) since the last success. The
    /// backoff of a throttled retry grows with it: an account that merely overshot its limit
    /// retries as soon as the lowered limit allows, one that gets nothing through backs off
    /// exponentially.
    throttle_streak: u32,
}

/// A snapshot of a governor, for observability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcurrencyStats {
    /// Requests allowed in flight now (the adaptive limit).
    pub limit: usize,
    /// The configured maximum.
    pub max: usize,
    /// Requests in flight now.
    pub in_flight: usize,
    /// Callers waiting for a slot.
    pub waiting: usize,
}

/// A slot: one request may be in flight while it is held. Dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Permit {
    governor: Arc<Governor>,
    epoch: u64,
}

/// A caller in the queue. If it is dropped after being granted a slot but before taking it,
/// the slot is given back.
struct Waiting {
    governor: Arc<Governor>,
    rx: oneshot::Receiver<u64>,
    granted: bool,
}

impl Governor {
    /// A governor allowing `max` requests in flight (at least 1), adaptive or fixed.
    pub(crate) fn new(max: usize, adaptive: bool) -> Self {
        let max = max.max(1);
        Governor {
            max,
            adaptive,
            state: Mutex::new(State {
                limit: max,
                in_flight: 0,
                epoch: 0,
                waiters: VecDeque::new(),
                throttle_streak: 0,
            }),
        }
    }

    /// Waits for a slot. Slots are granted in the order callers asked for them, except that
    /// an `urgent` caller (a retry, older than any new work) goes to the head of the queue.
    pub(crate) async fn acquire(self: &Arc<Self>, urgent: bool) -> Permit {
        let rx = {
            let mut s = self.lock();
            if s.waiters.is_empty() && s.in_flight < s.limit {
                s.in_flight += 1;
                return Permit {
                    governor: Arc::clone(self),
                    epoch: s.epoch,
                };
            }
            let (tx, rx) = oneshot::channel();
            if urgent {
                s.waiters.push_front(tx);
            } else {
                s.waiters.push_back(tx);
            }
            rx
        };
        let mut waiting = Waiting {
            governor: Arc::clone(self),
            rx,
            granted: false,
        };
        loop {
            match (&mut waiting.rx).await {
                Ok(epoch) => {
                    waiting.granted = true;
                    return Permit {
                        governor: Arc::clone(self),
                        epoch,
                    };
                }
                // The governor never drops a queued sender without sending; should it happen,
                // queue again rather than exceed the limit.
                Err(_) => {
                    let (tx, rx) = oneshot::channel();
                    let mut s = self.lock();
                    s.waiters.push_back(tx);
                    s.grant();
                    drop(s);
                    waiting.rx = rx;
                }
            }
        }
    }

    /// A snapshot of the limit and the load.
    pub(crate) fn stats(&self) -> ConcurrencyStats {
        let s = self.lock();
        ConcurrencyStats {
            limit: s.limit,
            max: self.max,
            in_flight: s.in_flight,
            waiting: s.waiters.iter().filter(|w| !w.is_closed()).count(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn release(&self) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        s.grant();
    }
}

impl State {
    /// Hands free slots to waiters, oldest first, skipping callers that gave up.
    fn grant(&mut self) {
        while self.in_flight < self.limit {
            let Some(tx) = self.waiters.pop_front() else {
                return;
            };
            if tx.send(self.epoch).is_ok() {
                self.in_flight += 1;
            }
        }
    }
}

impl Permit {
    /// The request succeeded (CleverTap answered 200): raise the limit by one, up to the max.
    pub(crate) fn success(&self) {
        let mut s = self.governor.lock();
        s.throttle_streak = 0;
        if self.governor.adaptive {
            s.limit = (s.limit + 1).min(self.governor.max);
        }
    }

    /// The request got a 429: halve the limit (never below 1), once per burst: 429s to
    /// requests granted before the last decrease are part of the burst that caused it. Returns
    /// how many bursts the account got since its last success, this one included.
    pub(crate) fn throttled(&self) -> u32 {
        let mut s = self.governor.lock();
        if self.epoch == s.epoch {
            s.throttle_streak = s.throttle_streak.saturating_add(1);
            s.epoch += 1;
            if self.governor.adaptive {
                s.limit = (s.limit / 2).max(1);
            }
        }
        s.throttle_streak
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.governor.release();
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.granted {
            return;
        }
        self.rx.close();
        if self.rx.try_recv().is_ok() {
            self.governor.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn grants_up_to_the_limit_in_fifo_order() {
        let g = Arc::new(Governor::new(2, false));
        let a = g.acquire(false).await;
        let _b = g.acquire(false).await;
        assert_eq!(g.stats().in_flight, 2);
        let g2 = Arc::clone(&g);
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for n in 0..3 {
            let g = Arc::clone(&g2);
            let order = Arc::clone(&order);
            tasks.push(tokio::spawn(async move {
                let p = g.acquire(false).await;
                order.lock().unwrap().push(n);
                drop(p);
            }));
            // Let each task queue before the next.
            while g2.stats().waiting < n + 1 {
                tokio::task::yield_now().await;
            }
        }
        drop(a);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2]);
        // An urgent caller jumps the queue.
        drop(_b);
        let a = g.acquire(false).await;
        let b = g.acquire(false).await;
        let late = tokio::spawn({
            let g = Arc::clone(&g);
            async move { g.acquire(false).await }
        });
        while g.stats().waiting == 0 {
            tokio::task::yield_now().await;
        }
        let urgent = tokio::spawn({
            let g = Arc::clone(&g);
            async move { g.acquire(true).await }
        });
        while g.stats().waiting < 2 {
            tokio::task::yield_now().await;
        }
        drop(a);
        let _urgent = urgent.await.unwrap();
        assert!(!late.is_finished());
        drop(b);
        let _late = late.await.unwrap();
        assert_eq!(g.stats().in_flight, 2);
    }

    #[tokio::test]
    async fn aimd_halves_once_per_burst_and_grows_by_one() {
        let g = Arc::new(Governor::new(8, true));
        let permits: Vec<_> =
            futures_util::future::join_all((0..8).map(|_| g.acquire(false))).await;
        for p in &permits {
            p.throttled();
        }
        assert_eq!(g.stats().limit, 4);
        drop(permits);
        let p = g.acquire(false).await;
        p.throttled();
        assert_eq!(g.stats().limit, 2);
        p.success();
        p.success();
        assert_eq!(g.stats().limit, 4);
        drop(p);
        for _ in 0..10 {
            g.acquire(false).await.throttled();
        }
        assert_eq!(g.stats().limit, 1);
        for _ in 0..20 {
            g.acquire(false).await.success();
        }
        assert_eq!(g.stats().limit, 8);
    }

    #[tokio::test]
    async fn fixed_governor_ignores_feedback() {
        let g = Arc::new(Governor::new(3, false));
        let p = g.acquire(false).await;
        let q = g.acquire(false).await;
        assert_eq!(p.throttled(), 1);
        assert_eq!(q.throttled(), 1, "same burst");
        drop(q);
        assert_eq!(g.acquire(false).await.throttled(), 2);
        assert_eq!(g.stats().limit, 3);
        p.success();
        assert_eq!(g.acquire(false).await.throttled(), 1);
    }

    #[tokio::test]
    async fn cancelled_waiter_does_not_leak_its_slot() {
        let g = Arc::new(Governor::new(1, false));
        let held = g.acquire(false).await;
        let waiter = tokio::spawn({
            let g = Arc::clone(&g);
            async move {
                let _p = g.acquire(false).await;
            }
        });
        while g.stats().waiting == 0 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        let _ = waiter.await;
        drop(held);
        assert_eq!(g.stats().in_flight, 0);
        let _again = g.acquire(false).await;
        assert_eq!(g.stats().in_flight, 1);
    }
}
