//! A TCP proxy that holds every byte back for a fixed one-way time in each direction, so
//! that a store on loopback answers with the round-trip time of one across a network
//! (twice the delay). Each chunk read is stamped with its arrival time and written by a
//! task of its own once `arrival + delay` has come, so the delay does not cut throughput
//! (chunks keep flowing while earlier ones wait) and the order is kept. An end of stream
//! is delayed like the bytes before it, then passed on as a half-close, so a peer sees its
//! partner close when it would have over a real link. Tokio's timer fires on whole
//! milliseconds, so each direction takes a little longer than the delay: a 64-byte store
//! write through the proxy took 23.5 ms at 10 ms and 54 ms at 25 ms, against 1 ms with no
//! delay. The delay can be changed while connections are open ([`Delay::set`]): a
//! benchmark fills the store at full speed, then measures with the delay on. The
//! `delay_proxy` binary puts it on the command line.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Bytes read at once from either side.
const CHUNK: usize = 64 * 1024;
/// Chunks waiting out their delay per direction before reading pauses: 16 MiB, far more
/// than a store's requests keep in flight, so only a runaway sender is held back.
const CHUNKS_IN_FLIGHT: usize = 256;

/// The one-way delay, shared by every connection; a change applies to bytes read after it.
#[derive(Debug, Clone, Default)]
pub struct Delay(Arc<AtomicU64>);

impl Delay {
    /// A delay of `d` (kept to the microsecond).
    pub fn new(d: Duration) -> Delay {
        let delay = Delay::default();
        delay.set(d);
        delay
    }

    /// Changes the delay for every connection, open or not.
    pub fn set(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.0.store(us, Ordering::Relaxed);
    }

    /// The delay now.
    pub fn get(&self) -> Duration {
        Duration::from_micros(self.0.load(Ordering::Relaxed))
    }
}

/// Accepts connections on `listener` and relays each to `upstream` with `delay` added in
/// both directions, until accepting fails. A connection whose upstream cannot be reached
/// is closed and reported on stderr; the others go on.
pub async fn serve(listener: TcpListener, upstream: String, delay: Delay) -> io::Result<()> {
    loop {
        let (down, peer) = listener.accept().await?;
        let upstream = upstream.clone();
        let delay = delay.clone();
        tokio::spawn(async move {
            if let Err(e) = relay(down, &upstream, delay).await {
                eprintln!("delay proxy: connection from {peer} to {upstream}: {e}");
            }
        });
    }
}

/// Relays one accepted connection until both directions have ended.
async fn relay(down: TcpStream, upstream: &str, delay: Delay) -> io::Result<()> {
    let up = TcpStream::connect(upstream).await?;
    // Small requests (HTTP headers, gRPC frames) must leave when their delay is over, not
    // when Nagle's algorithm has gathered a full segment.
    down.set_nodelay(true)?;
    up.set_nodelay(true)?;
    let (down_read, down_write) = down.into_split();
    let (up_read, up_write) = up.into_split();
    tokio::join!(
        pipe(down_read, up_write, delay.clone()),
        pipe(up_read, down_write, delay)
    );
    Ok(())
}

/// Copies one direction: a reader stamps chunks, a writer sends each when it is due. An
/// empty chunk stands for the end of the stream.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Delay) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(CHUNKS_IN_FLIGHT);
    let reader = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            // A reset counts as an end: the other side gets a half-close, the nearest
            // thing a proxy can pass on.
            let n = from.read(&mut buf).await.unwrap_or(0);
            let chunk = buf[..n].to_vec();
            // Fails once the writer has stopped (its peer is gone): nothing left to do.
            if tx
                .send((Instant::now() + delay.get(), chunk))
                .await
                .is_err()
                || n == 0
            {
                return;
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            // Without a delay the chunk is already due: no trip through the timer, whose
            // 1 ms grain would add up to a millisecond.
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            if chunk.is_empty() {
                break;
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A proxy with `delay` in front of an echo server; returns the proxy's address.
    async fn echo_behind_proxy(delay: Delay) -> String {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = echo.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    tokio::io::copy(&mut r, &mut w).await.unwrap();
                    w.shutdown().await.unwrap();
                });
            }
        });
        let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = proxy.local_addr().unwrap().to_string();
        tokio::spawn(serve(proxy, echo_addr, delay));
        addr
    }

    /// One byte's round trip, in milliseconds.
    async fn round_trip_ms(s: &mut TcpStream, byte: u8) -> f64 {
        let at = std::time::Instant::now();
        s.write_all(&[byte]).await.unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        assert_eq!(b[0], byte);
        at.elapsed().as_secs_f64() * 1e3
    }

    #[tokio::test]
    async fn a_round_trip_takes_twice_the_delay() {
        let addr = echo_behind_proxy(Delay::new(Duration::from_millis(40))).await;
        let mut s = TcpStream::connect(&addr).await.unwrap();
        for i in 0..3 {
            let ms = round_trip_ms(&mut s, i).await;
            // 40 ms each way; the timer's 1 ms grain and a busy test host add a little.
            assert!((80.0..140.0).contains(&ms), "round trip took {ms:.1} ms");
        }
    }

    #[tokio::test]
    async fn bytes_keep_their_order_and_an_end_is_passed_on() {
        let addr = echo_behind_proxy(Delay::new(Duration::from_millis(5))).await;
        let mut s = TcpStream::connect(&addr).await.unwrap();
        let sent: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let (mut r, mut w) = s.split();
        let (_, got) = tokio::join!(
            async {
                // Many small writes: many chunks, each with its own due time.
                for part in sent.chunks(1000) {
                    w.write_all(part).await.unwrap();
                }
                w.shutdown().await.unwrap();
            },
            async {
                let mut got = Vec::new();
                // Ends only when the echo server's half-close comes through the proxy.
                r.read_to_end(&mut got).await.unwrap();
                got
            }
        );
        assert!(got == sent, "{} bytes back of {}", got.len(), sent.len());
    }

    #[tokio::test]
    async fn no_delay_passes_bytes_at_once_and_a_new_delay_applies_to_open_connections() {
        let delay = Delay::default();
        let addr = echo_behind_proxy(delay.clone()).await;
        let mut s = TcpStream::connect(&addr).await.unwrap();
        let ms = round_trip_ms(&mut s, 7).await;
        assert!(ms < 20.0, "round trip took {ms:.1} ms");
        delay.set(Duration::from_millis(40));
        let ms = round_trip_ms(&mut s, 8).await;
        assert!((80.0..140.0).contains(&ms), "round trip took {ms:.1} ms");
    }
}
