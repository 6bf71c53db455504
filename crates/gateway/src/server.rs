//! Start a gateway on a listener: open the store, build the state, start the IdP loader and
//! serve until shut down. Used by `portcullis serve`, `portcullis demo` and the tests.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use portcullis_core::config::{Config, ConnectionLimits, DatabaseUrl};
use portcullis_store::Store;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::Instant;

use crate::app::Entry;
use crate::idp::loader;
use crate::state::{AppState, StartError};

/// A running gateway.
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    loader: tokio::task::JoinHandle<()>,
    feed: tokio::task::JoinHandle<()>,
    /// Offline access re-checks (ends at once when offline access is off).
    offline: tokio::task::JoinHandle<()>,
    /// `/metrics` on its own listener, when configured (stops when dropped).
    pub metrics: Option<crate::metrics::MetricsServer>,
}

impl RunningGateway {
    /// Wait until the server stops (after [`RunningGateway::shutdown`] or a fatal error).
    pub async fn wait(mut self) -> std::io::Result<()> {
        let r = (&mut self.server).await.unwrap_or(Ok(()));
        self.metrics = None;
        self.loader.abort();
        self.feed.abort();
        self.offline.abort();
        r
    }

    /// Stop the periodic offline-access re-checks of this replica (tests run passes
    /// themselves with [`crate::offline::recheck_due_sessions`]).
    pub fn stop_offline_rechecks(&self) {
        self.offline.abort();
    }

    /// Stop accepting connections and finish in-flight requests.
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        self.shutdown();
        self.loader.abort();
        self.feed.abort();
        self.offline.abort();
    }
}

/// Open the configured store.
pub async fn open_store(config: &Config) -> Result<Store, StartError> {
    match &config.database {
        DatabaseUrl::Sqlite(path) => {
            if let Some(dir) = std::path::Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|e| StartError::DatabaseDir {
                    dir: dir.display().to_string(),
                    source: e,
                })?;
            }
            Ok(Store::open_sqlite(path).await?)
        }
        DatabaseUrl::Postgres(url) => Ok(Store::open_postgres(url.expose()).await?),
    }
}

/// Apply the store's change feed (revocations, user changes from any replica) to this
/// replica's in-memory views.
fn follow_changes(state: &AppState, cursor: i64) -> tokio::task::JoinHandle<()> {
    let views_state = state.clone();
    portcullis_store::feed::follow(
        state.store.changes.clone(),
        state.clock.clone(),
        portcullis_store::feed::Cursor::after(cursor),
        move |change| views_state.views.apply(change, views_state.now()),
    )
}

/// Start serving on `listener`. Returns once the server runs; the IdP loads in the background.
pub async fn start(config: Config, listener: TcpListener) -> Result<RunningGateway, StartError> {
    start_with_clock(
        config,
        listener,
        Arc::new(portcullis_core::time::SystemClock),
    )
    .await
}

/// [`start`] with an injected clock (tests move time instead of sleeping).
pub async fn start_with_clock(
    config: Config,
    listener: TcpListener,
    clock: Arc<dyn portcullis_core::time::Clock>,
) -> Result<RunningGateway, StartError> {
    portcullis_core::jose::install_crypto_provider();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let ca = crate::state::load_ca(&config).await?;
    let store = open_store(&config).await?;
    // The feed is followed from before the views are seeded, so no change falls between.
    let cursor = store.changes.latest_seq().await?;
    let state = AppState::new(config, store, ca, clock).await?;
    let addr = listener.local_addr().map_err(|e| StartError::Listen {
        addr: "?".into(),
        source: e,
    })?;
    // Bound before any task starts, so a refused start leaves nothing running.
    let metrics_listener = match state.config.observability.metrics_listen {
        Some(maddr) => Some(
            TcpListener::bind(maddr)
                .await
                .map_err(|e| StartError::Listen {
                    addr: maddr.to_string(),
                    source: e,
                })?,
        ),
        None => None,
    };
    let workers =
        crate::workers::Workers::start(crate::workers::count(state.config.limits.worker_threads))
            .map_err(StartError::Workers)?;
    let loader = loader::spawn(state.clone());
    let feed = follow_changes(&state, cursor);
    let offline = crate::offline::spawn(state.clone());
    let metrics = metrics_listener.map(|l| crate::metrics::serve(state.clone(), l));
    let (tx, rx) = oneshot::channel::<()>();
    let app = Entry::new(state.clone());
    let limits = state.config.limits.clone();
    let server = tokio::spawn(serve(listener, app, limits, workers, rx));
    tracing::info!(%addr, "Portcullis listening");
    Ok(RunningGateway {
        addr,
        state,
        shutdown: Some(tx),
        server,
        loader,
        feed,
        offline,
        metrics,
    })
}

/// Idle HTTP/2 connections with requests in flight are pinged at this interval and dropped
/// when the peer is silent (dead peers); idle ones are closed by the keep-alive timeout.
const H2_KEEPALIVE: Duration = Duration::from_secs(60);
/// How long in-flight requests may run after shutdown starts.
const DRAIN: Duration = Duration::from_secs(30);
/// The HTTP/2 client preface (RFC 9113 §3.4); anything else is HTTP/1.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The accept loop. Hand-rolled on hyper-util (instead of `axum::serve`) for what axum does not
/// expose (R-RS-1): a deadline from accept to a complete request head that also covers
/// protocol detection, an idle keep-alive limit, global and per-address connection caps, and
/// graceful draining.
async fn serve(
    listener: TcpListener,
    app: Entry,
    limits: ConnectionLimits,
    workers: crate::workers::Workers,
    mut shutdown: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The connection watchdog below owns head and idle timing for both protocols; hyper's
        // own timer would also close idle keep-alive connections at its header timeout.
        .header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEPALIVE)
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    // Beyond the cap, new connections wait in the kernel backlog until a slot frees.
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip = PerIp::default();
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let accepted = Instant::now();
        let Some(ip_slot) = per_ip.acquire(peer.ip(), limits.max_connections_per_ip) else {
            // Closed at once: one address cannot take every slot.
            tracing::debug!(%peer, "per-address connection limit reached; closing");
            continue;
        };
        let _ = stream.set_nodelay(true);
        // Registered with the worker's own reactor there (see crate::workers).
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, %peer, "cannot hand the connection to a worker");
                continue;
            }
        };
        let svc = app.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let limits = limits.clone();
        workers.spawn(async move {
            let Ok(mut stream) = TcpStream::from_std(stream) else {
                return;
            };
            let head_deadline = accepted + limits.header_read_timeout;
            let Some((prefix, h1)) = detect(&mut stream, head_deadline).await else {
                tracing::debug!(%peer, "no request within the header read timeout; closing");
                return;
            };
            let watch = Arc::new(ConnWatch::new(accepted, &limits));
            let io = ConnIo {
                inner: stream,
                prefix,
                pos: 0,
                h1,
                watch: watch.clone(),
                _slots: (permit, ip_slot),
            };
            let w = watch.clone();
            let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let guard = RequestGuard::new(&w);
                let svc = svc.clone();
                async move {
                    let resp = svc.call(peer, req).await;
                    Ok::<_, Infallible>(resp.map(|inner| Tracked {
                        inner,
                        _guard: guard,
                    }))
                }
            });
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
            let conn = watcher.watch(conn.into_owned());
            tokio::pin!(conn);
            // The watchdog looks at least every `step`, and exactly at a deadline within it.
            // Every deadline is set at least `step` after the moment it is set (a request
            // head's timeout, or the keep-alive), so it is never earlier than the time the
            // watchdog will look anyway: nothing needs to wake it, and a busy connection
            // costs it no work per request.
            let step = limits
                .header_read_timeout
                .min(limits.keep_alive_timeout)
                .max(Duration::from_millis(10));
            loop {
                let now = Instant::now();
                let at = watch.deadline().map_or(now + step, |d| d.min(now + step));
                tokio::select! {
                    r = &mut conn => {
                        if let Err(e) = r {
                            tracing::debug!(error = %e, %peer, "connection ended with an error");
                        }
                        break;
                    }
                    () = tokio::time::sleep_until(at) => {
                        if watch.expired(Instant::now()) {
                            tracing::debug!(%peer, "no complete request head in time, or idle too long; closing");
                            break;
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after {DRAIN:?}; closing them");
    }
    // Only now: the workers' runtimes end the connections still on them when they stop.
    drop(workers);
    Ok(())
}

/// Read until the bytes tell HTTP/2 (the full preface) from HTTP/1 (the first byte that
/// differs), within `deadline`: a client that sends nothing, or half a preface, is closed
/// instead of being held forever. Returns the bytes read (replayed to hyper) and `h1`.
async fn detect(stream: &mut TcpStream, deadline: Instant) -> Option<(Vec<u8>, bool)> {
    let read = async {
        let mut buf = Vec::with_capacity(H2_PREFACE.len());
        loop {
            let mut chunk = [0u8; 24];
            let want = H2_PREFACE.len() - buf.len();
            let n = stream.read(&mut chunk[..want]).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf[..] != H2_PREFACE[..buf.len()] {
                return Some((buf, true));
            }
            if buf.len() == H2_PREFACE.len() {
                return Some((buf, false));
            }
        }
    };
    tokio::time::timeout_at(deadline, read).await.ok().flatten()
}

/// Timing of one connection, shared by its IO, its requests and its watchdog: the connection
/// closes at `deadline` unless a request is in flight. The deadline is accept + header read
/// timeout at first; after each response, now + keep-alive; on HTTP/1, the first byte of the
/// next request head brings it to now + header read timeout.
struct ConnWatch {
    start: Instant,
    head_timeout: Duration,
    keep_alive: Duration,
    /// Requests whose response has not been fully sent.
    in_flight: AtomicUsize,
    /// Milliseconds after `start`; `u64::MAX` while a request is in flight.
    deadline_ms: AtomicU64,
    /// HTTP/1: bytes of the next request head arrived since the connection went idle.
    head_started: AtomicBool,
}

impl ConnWatch {
    fn new(start: Instant, limits: &ConnectionLimits) -> ConnWatch {
        ConnWatch {
            start,
            head_timeout: limits.header_read_timeout,
            keep_alive: limits.keep_alive_timeout,
            in_flight: AtomicUsize::new(0),
            deadline_ms: AtomicU64::new(millis(limits.header_read_timeout)),
            head_started: AtomicBool::new(false),
        }
    }

    fn now_ms(&self, extra: Duration) -> u64 {
        millis(Instant::now().saturating_duration_since(self.start) + extra)
    }

    fn deadline(&self) -> Option<Instant> {
        match self.deadline_ms.load(Ordering::SeqCst) {
            u64::MAX => None,
            ms => Some(self.start + Duration::from_millis(ms)),
        }
    }

    fn expired(&self, now: Instant) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && self.deadline().is_some_and(|d| now >= d)
    }

    /// HTTP/1 bytes arrived; if idle, they start the next request head.
    fn on_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && !self.head_started.swap(true, Ordering::AcqRel)
        {
            let ms = self.now_ms(self.head_timeout);
            self.deadline_ms.fetch_min(ms, Ordering::SeqCst);
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX - 1)
}

/// Marks a request in flight until its response body is dropped (sent or abandoned).
struct RequestGuard(Arc<ConnWatch>);

impl RequestGuard {
    fn new(w: &Arc<ConnWatch>) -> RequestGuard {
        w.in_flight.fetch_add(1, Ordering::AcqRel);
        w.deadline_ms.store(u64::MAX, Ordering::Release);
        RequestGuard(w.clone())
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let w = &self.0;
        if w.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            w.head_started.store(false, Ordering::Release);
            let ms = w.now_ms(w.keep_alive);
            w.deadline_ms.store(ms, Ordering::SeqCst);
        }
    }
}

/// A response body that keeps its request counted as in flight.
struct Tracked {
    inner: axum::body::Body,
    _guard: RequestGuard,
}

impl hyper::body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The client socket: replays the bytes read during protocol detection, reports HTTP/1 reads
/// to the watchdog, and holds the connection's slots until the socket closes (so upgraded
/// tunnels keep counting against the caps).
struct ConnIo {
    inner: TcpStream,
    prefix: Vec<u8>,
    pos: usize,
    h1: bool,
    watch: Arc<ConnWatch>,
    _slots: (OwnedSemaphorePermit, IpSlot),
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let rest = &this.prefix[this.pos..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.pos += n;
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.h1 && buf.filled().len() > before {
            this.watch.on_read();
        }
        r
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Open connections per client address (IPv6 per /64: one host usually owns the whole
/// prefix). Touched once at accept and once at close, never per request.
#[derive(Clone, Default)]
struct PerIp(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One counted connection of an address; released on drop.
struct IpSlot {
    map: PerIp,
    key: IpAddr,
}

impl PerIp {
    fn acquire(&self, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let key = match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
            v4 => v4,
        };
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            map: self.clone(),
            key,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut m = self.map.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.key);
            }
        }
    }
}

/// Bind `config.listen` and start.
pub async fn bind_and_start(config: Config) -> Result<RunningGateway, StartError> {
    let addr = config.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::Listen {
            addr: addr.to_string(),
            source: e,
        })?;
    start(config, listener).await
}
