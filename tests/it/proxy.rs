//! A loopback TCP proxy the test controls, put between the runner and the emulator: while it
//! is down it cuts every open connection and closes new ones at once, and the emulator keeps
//! its state.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy.
pub struct Proxy {
    /// Its URL, to use as the AWS endpoint.
    pub url: String,
    down: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Proxy {
    /// A proxy in front of the emulator at `endpoint` (`http://host:port`).
    pub async fn before(endpoint: &str) -> Proxy {
        Proxy::start(endpoint.trim_start_matches("http://").to_string()).await
    }

    /// Forwards 127.0.0.1:<new port> to `target` (`host:port`).
    pub async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let down = Arc::new(AtomicBool::new(false));
        let (cut, _) = watch::channel(0u64);
        let (is_down, cuts) = (down.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if is_down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut cut_now = cuts.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut_now.changed() => {}
                    }
                });
            }
        });
        Proxy { url, down, cut }
    }

    /// Cuts all connections and refuses new ones until [`Proxy::up`].
    pub fn down(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    /// Forwards again.
    pub fn up(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}
