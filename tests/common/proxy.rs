//! A loopback TCP proxy in front of a real gateway that can delay, reset or blackhole
//! connections, add latency to every chunk, and close or silently stall connections left
//! idle, switched while a job runs.

use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// Forward it, every chunk delayed this long each way (a round trip of twice that), and
    /// what the client sends first held one more round trip, as a TCP handshake would.
    Latency(Duration),
    /// Forward it; once no byte has crossed it either way for this long, close both sides
    /// (FIN), as a load balancer's idle timeout does.
    CloseIdle(Duration),
    /// Forward it; once no byte has crossed it either way for this long, stop forwarding
    /// without a word: what either side sends from then on is dropped and the connection
    /// stays open, as behind a NAT that forgot it.
    StallIdle(Duration),
}

pub struct Proxy {
    pub url: String,
    fault: Arc<Mutex<Fault>>,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    /// A proxy on a free loopback port forwarding to `127.0.0.1:upstream_port`.
    pub fn start(upstream_port: u16, fault: Fault) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fault = Arc::new(Mutex::new(fault));
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (f, c, r, l) = (
            Arc::clone(&fault),
            Arc::clone(&connections),
            Arc::clone(&requests),
            Arc::clone(&lines),
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
                let link = Link {
                    counted: Counted {
                        requests: Arc::clone(&r),
                        lines: Arc::clone(&l),
                    },
                    ..Link::default()
                };
                match mode {
                    Fault::Reset | Fault::ResetFirst(_) => reset(client),
                    Fault::Blackhole => held.push(client),
                    Fault::Pass => forward(client, upstream_port, link),
                    Fault::Delay(d) => forward(
                        client,
                        upstream_port,
                        Link {
                            before_connect: d,
                            ..link
                        },
                    ),
                    Fault::Latency(d) => {
                        forward(client, upstream_port, Link { latency: d, ..link })
                    }
                    Fault::CloseIdle(d) => forward(
                        client,
                        upstream_port,
                        Link {
                            idle: Some((d, true)),
                            ..link
                        },
                    ),
                    Fault::StallIdle(d) => forward(
                        client,
                        upstream_port,
                        Link {
                            idle: Some((d, false)),
                            ..link
                        },
                    ),
                }
            }
        });
        Proxy {
            url,
            fault,
            connections,
            requests,
            lines,
        }
    }

    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    /// HTTP/1.1 requests forwarded so far (request lines seen).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The request lines forwarded so far (`GET /-/healthy HTTP/1.1`), in order.
    pub fn request_lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
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

/// Where a forwarded connection's requests are counted.
#[derive(Default, Clone)]
struct Counted {
    requests: Arc<AtomicUsize>,
    lines: Arc<Mutex<Vec<String>>>,
}

/// How one connection is forwarded.
#[derive(Default, Clone)]
struct Link {
    counted: Counted,
    /// Wait this long before connecting upstream.
    before_connect: Duration,
    /// Delay of every chunk, each way.
    latency: Duration,
    /// After this long without a byte either way: close (true) or stall (false).
    idle: Option<(Duration, bool)>,
}

/// What the two directions of a connection share.
struct Shared {
    last: Mutex<Instant>,
    stalled: AtomicBool,
    ended: AtomicBool,
}

fn forward(client: TcpStream, upstream_port: u16, link: Link) {
    std::thread::spawn(move || {
        let accepted = Instant::now();
        std::thread::sleep(link.before_connect);
        let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
            return reset(client);
        };
        let shared = Arc::new(Shared {
            last: Mutex::new(Instant::now()),
            stalled: AtomicBool::new(false),
            ended: AtomicBool::new(false),
        });
        if let Some((idle, close)) = link.idle {
            let (shared, c, u) = (
                Arc::clone(&shared),
                client.try_clone().unwrap(),
                upstream.try_clone().unwrap(),
            );
            std::thread::spawn(move || watch(&shared, idle, close, &c, &u));
        }
        // What the client sends first arrives one round trip late (the handshake's), on top
        // of its own way there.
        let first_due = accepted + link.latency * 3;
        let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
        let (s2, l2) = (Arc::clone(&shared), link.clone());
        let up =
            std::thread::spawn(move || pump(c2, u2, Some(&l2.counted), l2.latency, first_due, &s2));
        pump(upstream, client, None, link.latency, accepted, &shared);
        let _ = up.join();
        shared.ended.store(true, Ordering::SeqCst);
    });
}

/// Closes or stalls the connection once it has been idle for `idle`.
fn watch(shared: &Shared, idle: Duration, close: bool, client: &TcpStream, upstream: &TcpStream) {
    while !shared.ended.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
        if shared.last.lock().unwrap().elapsed() < idle {
            continue;
        }
        if close {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        } else {
            shared.stalled.store(true, Ordering::SeqCst);
        }
        return;
    }
}

/// Copies `from` to `to`, each chunk `latency` later and none before `first_due`; counts
/// request lines (`... HTTP/1.1\r\n`) into `counted`; drops everything once the connection
/// is stalled.
fn pump(
    mut from: TcpStream,
    to: TcpStream,
    counted: Option<&Counted>,
    latency: Duration,
    first_due: Instant,
    shared: &Shared,
) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = std::thread::spawn(move || {
        let mut to = to;
        for (due, chunk) in rx {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _: io::Result<()> = to.shutdown(Shutdown::Write);
    });
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if shared.stalled.load(Ordering::SeqCst) {
                    continue;
                }
                *shared.last.lock().unwrap() = Instant::now();
                if let Some(counted) = counted {
                    count(&buf[..n], counted);
                }
                let due = (Instant::now() + latency).max(first_due);
                if tx.send((due, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    if shared.stalled.load(Ordering::SeqCst) {
        // Silent to the end: the other side hears nothing, not even a close.
        std::mem::forget(tx);
        std::mem::forget(writer);
        return;
    }
    drop(tx);
    let _ = writer.join();
}

/// Counts the request lines in `chunk` and keeps them.
fn count(chunk: &[u8], counted: &Counted) {
    let text = String::from_utf8_lossy(chunk);
    for line in text.split("\r\n") {
        if line.ends_with(" HTTP/1.1") {
            counted.requests.fetch_add(1, Ordering::SeqCst);
            counted.lines.lock().unwrap().push(line.to_owned());
        }
    }
}
