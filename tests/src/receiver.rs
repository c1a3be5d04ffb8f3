//! A webhook receiver: a real HTTP/1.1 server on a loopback port that keeps every POST it
//! gets (headers and body) and answers 200. It can be stopped and started again on the same
//! port, to play a receiver that is down for a while.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Received {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The receiver; requests it got stay in `received` across stops and starts.
pub struct Receiver {
    /// Where it listens (or listened, while down).
    pub addr: SocketAddr,
    /// Every request taken, in order.
    pub received: Arc<Mutex<Vec<Received>>>,
    running: Option<Arc<AtomicBool>>,
}

impl Receiver {
    /// A receiver on a free loopback port that is down: nothing listens there yet.
    pub fn down() -> anyhow::Result<Self> {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        Ok(Self { addr, received: Arc::default(), running: None })
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Starts listening on its port.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let listener = TcpListener::bind(self.addr)?;
        listener.set_nonblocking(true)?;
        let running = Arc::new(AtomicBool::new(true));
        let (flag, received) = (Arc::clone(&running), Arc::clone(&self.received));
        std::thread::spawn(move || {
            while flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (received, flag) = (Arc::clone(&received), Arc::clone(&flag));
                        std::thread::spawn(move || serve(stream, &received, &flag));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        self.running = Some(running);
        Ok(())
    }

    /// Stops listening (the port is let go within a few milliseconds).
    pub fn stop(&mut self) {
        if let Some(flag) = self.running.take() {
            flag.store(false, Ordering::Relaxed);
        }
    }

    /// Requests taken so far.
    pub fn taken(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serves requests on one connection until the client closes it.
fn serve(stream: TcpStream, received: &Mutex<Vec<Received>>, running: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_or(true, |n| n == 0) {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).map_or(true, |n| n == 0) {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let len = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        // A stopped receiver takes nothing, even on a connection opened before.
        if reader.read_exact(&mut body).is_err() || !running.load(Ordering::Relaxed) {
            return;
        }
        if let Ok(mut r) = received.lock() {
            r.push(Received { headers, body });
        }
        if writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_err() {
            return;
        }
    }
}
