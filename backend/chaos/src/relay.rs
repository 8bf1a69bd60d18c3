//! A TCP relay that can stall: a network cut that closes nothing.
//!
//! A process killed or a server restarted closes its sockets, and the peer
//! learns at once. A partition does not: the connection stays open, bytes
//! stop, and only a timeout or a heartbeat can tell. Put between a gateway
//! and Redis, this relay forwards bytes both ways until [`Relay::stall`];
//! from then on it neither reads nor writes (nor connects new sockets
//! upstream) while keeping every socket open, and [`Relay::resume`] lets
//! everything held flow again. A close is passed on only while flowing, as
//! a partition would hide it too.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// A running relay; dropping it closes the listener and every connection.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    stalled: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Relay {
    /// Listens on a free loopback port and relays to `upstream`.
    pub async fn start(upstream: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (stalled, watching) = watch::channel(false);
        let task = tokio::spawn(accept(listener, upstream, watching));
        Ok(Self { addr, stalled, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    pub fn resume(&self) {
        self.stalled.send_replace(false);
    }

    pub fn is_stalled(&self) -> bool {
        *self.stalled.borrow()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // The accept task owns the connections' JoinSet: aborting it ends them all.
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, upstream: SocketAddr, stalled: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    connections.spawn(relay_connection(client, upstream, stalled.clone()));
                }
                // Out of descriptors or a connection reset before accept: the
                // listener itself is fine, so keep accepting.
                Err(_) => tokio::task::yield_now().await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Waits until bytes may flow. A dropped relay counts as flowing: its
/// connection tasks are being aborted anyway.
async fn flowing(stalled: &mut watch::Receiver<bool>) {
    let _ = stalled.wait_for(|stalled| !stalled).await;
}

async fn relay_connection(client: TcpStream, upstream: SocketAddr, mut stalled: watch::Receiver<bool>) {
    // Behind a cut, the connection to the far side is not even attempted:
    // the near side's handshake completed (the kernel did it), nothing more.
    flowing(&mut stalled).await;
    let Ok(server) = TcpStream::connect(upstream).await else {
        // The far side is down: the near side sees its connection closed.
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pipe(client_read, server_write, stalled.clone());
    let down = pipe(server_read, client_write, stalled);
    // An error either way (a reset) ends both directions, closing both sockets;
    // a clean end of one direction waits for the other.
    let _ = tokio::try_join!(up, down);
}

async fn pipe(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut stalled: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        flowing(&mut stalled).await;
        let read = from.read(&mut buffer).await?;
        // A read that began before a stall still returns; what it got is held.
        flowing(&mut stalled).await;
        if read == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buffer[..read]).await?;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// How long "nothing arrives" is watched for: absence cannot be awaited.
    const QUIET: Duration = Duration::from_millis(300);
    const DEADLINE: Duration = Duration::from_secs(5);

    /// An upstream that echoes every byte back.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind echo");
        let addr = listener.local_addr().expect("echo address");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = socket.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        addr
    }

    async fn read_exactly(socket: &mut TcpStream, len: usize) -> Vec<u8> {
        let mut buffer = vec![0u8; len];
        tokio::time::timeout(DEADLINE, socket.read_exact(&mut buffer))
            .await
            .expect("bytes within the deadline")
            .expect("read");
        buffer
    }

    /// Nothing at all arrives, neither bytes nor the end of the stream.
    async fn assert_silent(socket: &mut TcpStream) {
        let mut buffer = [0u8; 64];
        match tokio::time::timeout(QUIET, socket.read(&mut buffer)).await {
            Err(_) => {}
            Ok(Ok(0)) => panic!("the relay closed the connection during a stall"),
            Ok(Ok(n)) => panic!("{n} bytes crossed a stalled relay"),
            Ok(Err(e)) => panic!("the connection failed during a stall: {e}"),
        }
    }

    #[tokio::test]
    async fn forwards_both_ways() {
        let relay = Relay::start(echo_server().await).await.expect("relay");
        let mut client = TcpStream::connect(relay.addr()).await.expect("connect");
        client.write_all(b"PING\r\n").await.expect("write");
        assert_eq!(read_exactly(&mut client, 6).await, b"PING\r\n");
    }

    #[tokio::test]
    async fn a_stall_holds_bytes_on_open_sockets_until_resumed() {
        let relay = Relay::start(echo_server().await).await.expect("relay");
        let mut client = TcpStream::connect(relay.addr()).await.expect("connect");
        client.write_all(b"one").await.expect("write");
        assert_eq!(read_exactly(&mut client, 3).await, b"one");

        relay.stall();
        assert!(relay.is_stalled());
        client.write_all(b"two").await.expect("the socket stays writable");
        assert_silent(&mut client).await;

        relay.resume();
        assert_eq!(read_exactly(&mut client, 3).await, b"two");
        client.write_all(b"three").await.expect("write");
        assert_eq!(read_exactly(&mut client, 5).await, b"three");
    }

    #[tokio::test]
    async fn a_connection_made_during_a_stall_waits_for_the_resume() {
        let relay = Relay::start(echo_server().await).await.expect("relay");
        relay.stall();
        let mut client = TcpStream::connect(relay.addr())
            .await
            .expect("the handshake completes behind a cut too");
        client.write_all(b"hello").await.expect("write");
        assert_silent(&mut client).await;
        relay.resume();
        assert_eq!(read_exactly(&mut client, 5).await, b"hello");
    }

    #[tokio::test]
    async fn a_close_upstream_is_passed_on() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let upstream = listener.local_addr().expect("address");
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                let _ = socket.write_all(b"bye").await;
            }
        });
        let relay = Relay::start(upstream).await.expect("relay");
        let mut client = TcpStream::connect(relay.addr()).await.expect("connect");
        let mut received = Vec::new();
        tokio::time::timeout(DEADLINE, client.read_to_end(&mut received))
            .await
            .expect("the close arrives within the deadline")
            .expect("read");
        assert_eq!(received, b"bye");
    }

    #[tokio::test]
    async fn a_far_side_that_is_down_closes_the_near_side() {
        // A port nobody listens on: bound, then released.
        let upstream = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind")
            .local_addr()
            .expect("address");
        let relay = Relay::start(upstream).await.expect("relay");
        let mut client = TcpStream::connect(relay.addr()).await.expect("connect");
        let mut received = Vec::new();
        // A clean end or a reset: either way closed, and nothing came.
        let _ = tokio::time::timeout(DEADLINE, client.read_to_end(&mut received))
            .await
            .expect("closed within the deadline");
        assert!(received.is_empty());
    }
}
