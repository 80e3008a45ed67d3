//! A loopback TCP proxy in front of a real gateway that can delay, reset or blackhole
//! connections, switched while a job runs.

use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does with a new connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Forward it to the gateway.
    Pass,
    /// Wait this long, then forward it.
    Delay(Duration),
    /// Reset it at once (RST, no answer).
    Reset,
    /// Accept it, read nothing and answer nothing; keep it open.
    Blackhole,
    /// Reset the next `n` connections, then forward.
    ResetFirst(usize),
}

pub struct Proxy {
    pub url: String,
    fault: Arc<Mutex<Fault>>,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl Proxy {
    /// A proxy on a free loopback port forwarding to `127.0.0.1:upstream_port`.
    pub fn start(upstream_port: u16, fault: Fault) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fault = Arc::new(Mutex::new(fault));
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (f, c, r) = (
            Arc::clone(&fault),
            Arc::clone(&connections),
            Arc::clone(&requests),
        );
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let mode = {
                    let mut f = f.lock().unwrap();
                    let mode = *f;
                    if let Fault::ResetFirst(n) = mode {
                        *f = if n <= 1 {
                            Fault::Pass
                        } else {
                            Fault::ResetFirst(n - 1)
                        };
                        Fault::Reset
                    } else {
                        mode
                    }
                };
                match mode {
                    Fault::Reset | Fault::ResetFirst(_) => reset(client),
                    Fault::Blackhole => held.push(client),
                    Fault::Pass => forward(client, upstream_port, Duration::ZERO, &r),
                    Fault::Delay(d) => forward(client, upstream_port, d, &r),
                }
            }
        });
        Proxy {
            url,
            fault,
            connections,
            requests,
        }
    }

    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    /// HTTP/1.1 requests forwarded so far (request lines seen).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Closes `stream` with a TCP reset: SO_LINGER on with a zero timeout, then close. (Elsewhere
/// than on Unix: a plain close.)
#[cfg(not(unix))]
fn reset(stream: TcpStream) {
    drop(stream);
}

/// Closes `stream` with a TCP reset: SO_LINGER on with a zero timeout, then close.
#[cfg(unix)]
fn reset(stream: TcpStream) {
    use std::os::fd::AsRawFd as _;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(stream);
}

fn forward(client: TcpStream, upstream_port: u16, delay: Duration, requests: &Arc<AtomicUsize>) {
    let requests = Arc::clone(requests);
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
            return reset(client);
        };
        let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
        let up = std::thread::spawn(move || pump(c2, u2, Some(&requests)));
        pump(upstream, client, None);
        let _ = up.join();
    });
}

/// Copies `from` to `to`; counts request lines (`... HTTP/1.1\r\n`) into `requests`.
fn pump(mut from: TcpStream, mut to: TcpStream, requests: Option<&AtomicUsize>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(r) = requests {
                    let lines = buf[..n]
                        .windows(10)
                        .filter(|w| w == b"HTTP/1.1\r\n")
                        .count();
                    r.fetch_add(lines, Ordering::SeqCst);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _: io::Result<()> = to.shutdown(Shutdown::Write);
}
