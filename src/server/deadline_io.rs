//! A connection wrapper that fails a write making no progress for too long, so a client that
//! stops reading its answer cannot hold a connection (and so the daemon) open forever.
//! Reads are bounded elsewhere (hyper's header timeout, the body deadline); a statement may
//! legitimately run for hours, so only a *stalled write* is cut off.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use std::future::Future;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

pub struct DeadlineIo<S> {
    inner: S,
    stall_limit: Duration,
    /// Armed while a write is pending; reset whenever the write makes progress.
    stalled_since: Option<Pin<Box<Sleep>>>,
}

impl<S> DeadlineIo<S> {
    pub fn new(inner: S, stall_limit: Duration) -> Self {
        Self {
            inner,
            stall_limit,
            stalled_since: None,
        }
    }

    /// Turns a pending write into an error once it has been pending for `stall_limit`.
    fn check_stall<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match result {
            Poll::Ready(r) => {
                self.stalled_since = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let limit = self.stall_limit;
                let sleep = self
                    .stalled_since
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client stopped reading its answer",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for DeadlineIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for DeadlineIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check_stall(cx, result)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.check_stall(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.check_stall(cx, result)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stalled_write_fails_after_the_limit() {
        // A 64-byte pipe nobody reads from.
        let (writer, _reader) = tokio::io::duplex(64);
        let mut io = DeadlineIo::new(writer, Duration::from_secs(30));
        let err = io.write_all(&[0u8; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_but_moving_reader_is_fine() {
        let (writer, mut reader) = tokio::io::duplex(64);
        let mut io = DeadlineIo::new(writer, Duration::from_secs(30));
        let drain = tokio::spawn(async move {
            let mut buffer = [0u8; 16];
            let mut total = 0;
            while total < 4096 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                total += tokio::io::AsyncReadExt::read(&mut reader, &mut buffer)
                    .await
                    .unwrap();
            }
        });
        io.write_all(&[0u8; 4096]).await.unwrap();
        drain.await.unwrap();
    }
}
