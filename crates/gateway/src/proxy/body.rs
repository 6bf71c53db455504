//! The proxied request body, capped and with an idle timeout (R-RS-1): a chunked body over the
//! cap, or one that stalls longer than the timeout between chunks, ends the upstream request
//! with an error instead of holding the connection forever.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

/// Why a request body was cut off.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body larger than the configured maximum")]
    TooLarge,
    #[error("request body stalled longer than the body timeout")]
    Idle,
    #[error("request body: {0}")]
    Client(axum::Error),
}

impl BodyError {
    /// The `BodyError` behind an upstream client error, if the body was the cause.
    pub fn find<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyError> {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(c) = cur {
            if let Some(b) = c.downcast_ref::<BodyError>() {
                return Some(b);
            }
            cur = c.source();
        }
        None
    }
}

/// A request body with at most `remaining` more bytes, each chunk within `timeout` of the last.
pub struct LimitedBody {
    inner: Body,
    remaining: u64,
    timeout: Duration,
    /// Allocated on the first wait only: bodiless requests never poll, so pay nothing.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// A chunk arrived since the timer was armed: re-arm on the next wait.
    progressed: bool,
}

impl LimitedBody {
    pub fn new(inner: Body, max: u64, timeout: Duration) -> LimitedBody {
        LimitedBody {
            inner,
            remaining: max,
            timeout,
            sleep: None,
            progressed: false,
        }
    }
}

impl hyper::body::Body for LimitedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    let n = d.len() as u64;
                    if n > this.remaining {
                        return Poll::Ready(Some(Err(BodyError::TooLarge)));
                    }
                    this.remaining -= n;
                }
                this.progressed = true;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Client(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = tokio::time::Instant::now() + this.timeout;
                let sleep = match &mut this.sleep {
                    Some(s) => {
                        if this.progressed {
                            s.as_mut().reset(deadline);
                        }
                        s
                    }
                    None => this
                        .sleep
                        .insert(Box::pin(tokio::time::sleep_until(deadline))),
                };
                this.progressed = false;
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyError::Idle))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn body_within_the_cap_passes() {
        let b = LimitedBody::new(Body::from("hello"), 5, Duration::from_secs(1));
        assert_eq!(b.collect().await.unwrap().to_bytes(), "hello");
    }

    #[tokio::test]
    async fn body_over_the_cap_is_cut() {
        let b = LimitedBody::new(Body::from("hello!"), 5, Duration::from_secs(1));
        assert!(matches!(b.collect().await, Err(BodyError::TooLarge)));
    }

    #[tokio::test]
    async fn stalled_body_times_out() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let stream =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|c| (c, rx)) },
            );
        let b = LimitedBody::new(Body::from_stream(stream), 100, Duration::from_millis(50));
        tx.send(Ok(Bytes::from_static(b"a"))).await.unwrap();
        let r = b.collect().await;
        assert!(matches!(r, Err(BodyError::Idle)), "{r:?}");
        drop(tx);
    }
}
