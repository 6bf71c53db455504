//! Connection workers: one thread per core, each running its own single-threaded tokio
//! runtime, like nginx's worker processes. The accept loop hands each new connection to one
//! worker, where it stays: its requests, the authentication and the upstream request run on
//! that thread, and the upstream connections it uses belong to that worker's own pool
//! ([`current`] picks it). Nothing of a request moves between threads, so no request wakes
//! another thread: on a multi-threaded runtime the proxied request's hand-offs between the
//! client's connection task and the upstream connection's task cost cross-thread wake-ups
//! and futex calls (measured: a fifth of the gateway's CPU per request).
//!
//! Background work (the IdP loader, the change feed, offline re-checks) stays on the
//! runtime that started the gateway.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    /// 1 + this thread's worker index; 0 on any other thread.
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// The slot of the calling thread: 1 + its worker index on a worker thread, 0 elsewhere (the
/// runtime that started the gateway, or a test's). Upstream pools are indexed by it.
pub fn current() -> usize {
    WORKER.with(Cell::get)
}

/// The worker threads of one gateway; they stop when this is dropped (after the server has
/// drained its connections).
pub struct Workers {
    handles: Vec<Handle>,
    stops: Vec<oneshot::Sender<()>>,
    next: AtomicUsize,
}

impl Workers {
    /// Start `n` workers (at least one).
    pub fn start(n: usize) -> std::io::Result<Workers> {
        let mut handles = Vec::with_capacity(n);
        let mut stops = Vec::with_capacity(n);
        for i in 0..n.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(rt.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            stops.push(stop);
            std::thread::Builder::new()
                .name(format!("portcullis-worker-{i}"))
                .spawn(move || {
                    WORKER.with(|w| w.set(i + 1));
                    // Runs the connections spawned onto this runtime until told to stop (or
                    // the gateway is gone); then the runtime drops what is left.
                    let _ = rt.block_on(stopped);
                })?;
        }
        Ok(Workers {
            handles,
            stops,
            next: AtomicUsize::new(0),
        })
    }

    /// Run `fut` on the next worker, round-robin.
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        drop(self.handles[i].spawn(fut));
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for s in self.stops.drain(..) {
            let _ = s.send(());
        }
    }
}

/// How many workers `configured` (0: one per CPU core) means on this machine.
pub fn count(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}
