//! Keep-alive HTTP/1.1 connections to a plain-`http` upstream, one pool per worker thread.
//!
//! Written on hyper's connection API rather than hyper-util's pooled client because the
//! proxied request is the hot path and the general client does work this case never needs:
//! a pool keyed by (scheme, authority) behind a hash map, an absolute URI turned back into
//! origin form and a `Host` value built on every request, and a task spawned per request to
//! notice when the connection is idle again. Here the pool is a plain list of idle senders:
//! a connection goes back to its worker's list when the response body is done with (dropped),
//! and the next request that takes it waits until hyper says it is ready. HTTPS upstreams
//! (ALPN, h2) keep hyper-util's client.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{HeaderValue, Request, Response, header};
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::body::LimitedBody;

/// How long opening a connection to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle connection unused for this long is closed (hyper-util's default too).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// At most this many idle connections per worker; more are closed when they come back.
const MAX_IDLE: usize = 256;

/// Why a request did not get a response from the upstream.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("connecting to the upstream: {0}")]
    Connect(#[source] std::io::Error),
    #[error("connecting to the upstream: no connection within {0:?}")]
    ConnectTimeout(Duration),
    #[error("upstream request: {0}")]
    Http(#[source] hyper::Error),
}

/// One worker's idle connections, most recently used last.
type Idle = Arc<Mutex<VecDeque<(SendRequest<LimitedBody>, Instant)>>>;

/// The connections of one worker to one plain-`http` upstream.
#[derive(Clone, Debug)]
pub struct H1Pool {
    /// `host:port`, resolved when a connection is opened.
    addr: Arc<str>,
    /// The `Host` header every request carries (the upstream's authority).
    host: HeaderValue,
    idle: Idle,
}

impl H1Pool {
    pub fn new(addr: Arc<str>, host: HeaderValue) -> H1Pool {
        H1Pool {
            addr,
            host,
            idle: Arc::default(),
        }
    }

    /// Send `req` (origin-form URI) on an idle connection, or a new one. A request that an
    /// idle connection could not take (closed by the upstream meanwhile, before anything was
    /// written) is sent on the next one; an error on a new connection is the answer.
    pub async fn send(
        &self,
        mut req: Request<LimitedBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        req.headers_mut().insert(header::HOST, self.host.clone());
        loop {
            let (mut tx, reused) = match self.take() {
                Some(tx) => (tx, true),
                // Boxed: opening a connection is rare, and its future would otherwise make
                // every request's future (moved a few times per request) much larger.
                None => (Box::pin(self.connect()).await?, false),
            };
            if let Err(e) = tx.ready().await {
                if reused {
                    continue;
                }
                return Err(SendError::Http(e));
            }
            match tx.try_send_request(req).await {
                Ok(resp) => {
                    let idle = self.idle.clone();
                    return Ok(resp.map(|inner| PooledBody {
                        inner,
                        conn: Some((tx, idle)),
                    }));
                }
                Err(mut e) => match e.take_message() {
                    Some(r) if reused => req = r,
                    _ => return Err(SendError::Http(e.into_error())),
                },
            }
        }
    }

    /// The most recently used idle connection that is still open.
    fn take(&self) -> Option<SendRequest<LimitedBody>> {
        let mut idle = self.idle.lock().ok()?;
        while let Some((tx, _)) = idle.pop_back() {
            if !tx.is_closed() {
                return Some(tx);
            }
        }
        None
    }

    async fn connect(&self) -> Result<SendRequest<LimitedBody>, SendError> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&*self.addr))
            .await
            .map_err(|_| SendError::ConnectTimeout(CONNECT_TIMEOUT))?
            .map_err(SendError::Connect)?;
        stream.set_nodelay(true).map_err(SendError::Connect)?;
        let (tx, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(SendError::Http)?;
        // Driven on this worker's runtime, like the requests that use it.
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(tx)
    }
}

/// Put a connection back: closed ones and those beyond [`MAX_IDLE`] are dropped (closing
/// them), and connections idle longer than [`IDLE_TIMEOUT`] are closed on the way.
fn put_back(idle: &Idle, tx: SendRequest<LimitedBody>) {
    if tx.is_closed() {
        return;
    }
    let Ok(mut idle) = idle.lock() else { return };
    let now = Instant::now();
    while idle
        .front()
        .is_some_and(|(_, at)| now.saturating_duration_since(*at) > IDLE_TIMEOUT)
    {
        idle.pop_front();
    }
    if idle.len() < MAX_IDLE {
        idle.push_back((tx, now));
    }
}

/// The upstream's response body; its connection returns to the pool when it is dropped (read
/// to the end, or abandoned: hyper then closes the connection, and the pool drops it when it
/// is next taken).
#[derive(Debug)]
pub struct PooledBody {
    inner: Incoming,
    conn: Option<(SendRequest<LimitedBody>, Idle)>,
}

impl hyper::body::Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        if let Some((tx, idle)) = self.conn.take() {
            put_back(&idle, tx);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn get(path: &str) -> Request<LimitedBody> {
        let body = LimitedBody::new(axum::body::Body::empty(), 1024, Duration::from_secs(5));
        Request::get(path).body(body).unwrap()
    }

    /// An upstream that answers `n` requests per connection, then closes it; it reports each
    /// accepted connection.
    async fn upstream(n: usize) -> (String, tokio::sync::mpsc::UnboundedReceiver<()>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tx.send(()).unwrap();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    for _ in 0..n {
                        let mut got = Vec::new();
                        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                            let k = s.read(&mut buf).await.unwrap();
                            if k == 0 {
                                return;
                            }
                            got.extend_from_slice(&buf[..k]);
                        }
                        let host = String::from_utf8_lossy(&got).contains("host: up.test\r\n");
                        let body = if host { "ok" } else { "no host" };
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        s.write_all(resp.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        (addr, rx)
    }

    async fn body(r: Response<PooledBody>) -> Bytes {
        r.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn connections_are_reused_and_carry_the_upstream_host() {
        let (addr, mut accepted) = upstream(100).await;
        let pool = H1Pool::new(addr.into(), HeaderValue::from_static("up.test"));
        for _ in 0..5 {
            let r = pool.send(get("/x")).await.unwrap();
            assert_eq!(body(r).await, "ok");
        }
        accepted.recv().await.unwrap();
        assert!(
            accepted.try_recv().is_err(),
            "one connection for five requests"
        );
        assert_eq!(pool.idle.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_is_replaced() {
        // One request per connection: every later request finds its idle connection closed.
        let (addr, mut accepted) = upstream(1).await;
        let pool = H1Pool::new(addr.into(), HeaderValue::from_static("up.test"));
        for _ in 0..3 {
            let r = pool.send(get("/x")).await.unwrap();
            assert_eq!(body(r).await, "ok");
            accepted.recv().await.unwrap();
        }
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_a_connect_error() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let pool = H1Pool::new(addr.into(), HeaderValue::from_static("up.test"));
        let e = pool.send(get("/x")).await.unwrap_err();
        assert!(matches!(e, SendError::Connect(_)), "{e}");
    }

    #[tokio::test]
    async fn idle_connections_are_bounded() {
        let (addr, _accepted) = upstream(100).await;
        let pool = H1Pool::new(addr.into(), HeaderValue::from_static("up.test"));
        let mut held = Vec::new();
        for _ in 0..MAX_IDLE + 3 {
            held.push(pool.send(get("/x")).await.unwrap());
        }
        drop(held);
        assert_eq!(pool.idle.lock().unwrap().len(), MAX_IDLE);
    }
}
