//! A TCP relay between Curio's processes and the apiserver, so the harness can take the
//! apiserver away from them (and only them) on any cluster: while it is down, every relayed
//! connection is cut and new ones are closed at once, as a dead apiserver looks to a client.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct Relay {
    pub port: u16,
    down: Arc<AtomicBool>,
    /// Cancelled (and replaced) when the relay goes down: ends the open connections.
    connections: Arc<Mutex<CancellationToken>>,
}

impl Relay {
    /// Relays 127.0.0.1:<port> to `upstream` (`host:port`) until `stop`.
    pub async fn start(upstream: String, stop: CancellationToken) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let relay = Self {
            port: listener.local_addr()?.port(),
            down: Arc::new(AtomicBool::new(false)),
            connections: Arc::new(Mutex::new(CancellationToken::new())),
        };
        let this = relay.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = stop.cancelled() => return,
                };
                let Ok((mut client, _)) = accepted else {
                    continue;
                };
                if this.down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let cut = this
                    .connections
                    .lock()
                    .map(|c| c.clone())
                    .unwrap_or_default();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = cut.cancelled() => {}
                    }
                });
            }
        });
        Ok(relay)
    }

    /// Cuts every relayed connection and refuses new ones until [`Relay::up`].
    pub fn down(&self) {
        self.down.store(true, Ordering::SeqCst);
        if let Ok(mut connections) = self.connections.lock() {
            connections.cancel();
            *connections = CancellationToken::new();
        }
    }

    pub fn up(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_down_relay_cuts_open_connections_and_refuses_new_ones() {
        // An echo server upstream.
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = echo.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let relay = Relay::start(upstream, CancellationToken::new())
            .await
            .unwrap();
        let address = format!("127.0.0.1:{}", relay.port);
        let mut open = TcpStream::connect(&address).await.unwrap();
        open.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        open.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");

        relay.down();
        // The open connection ends: a read sees end of stream or an error.
        let mut rest = [0u8; 4];
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), open.read(&mut rest))
            .await
            .unwrap();
        assert!(matches!(read, Ok(0) | Err(_)));
        // A new one is accepted and closed at once.
        let mut refused = TcpStream::connect(&address).await.unwrap();
        let _ = refused.write_all(b"ping").await;
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), refused.read(&mut rest))
            .await
            .unwrap();
        assert!(matches!(read, Ok(0) | Err(_)));

        relay.up();
        let mut again = TcpStream::connect(&address).await.unwrap();
        again.write_all(b"pong").await.unwrap();
        again.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
    }
}
