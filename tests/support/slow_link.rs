//! A slow link of our own between a client and a server on 127.0.0.1 (the kernel's netem is not
//! available here): a TCP relay that holds every piece of data for half the round trip in each
//! direction and lets the bytes of all connections through one shared bandwidth cap per
//! direction, as a remote registry behind a WAN link looks to CI.
//!
//! Each connection gets two relays (one per direction). A relay reads what arrives, stamps it,
//! and a sender delivers it once its stamp plus the one-way delay has passed and the shared
//! link has room: the link is a clock of when it is next free (`bytes / rate` per piece), so
//! concurrent connections share the bandwidth instead of each getting all of it.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How much one read takes from a socket: small enough that the cap is smooth.
const PIECE: usize = 64 * 1024;

/// Pieces a relay holds before it stops reading: about 2 MiB, above the bandwidth-delay
/// product of the links we model (200 Mbit/s x 50 ms = 1.25 MB), so TCP's own flow control
/// still reaches the sender.
const QUEUE: usize = 32;

/// One direction of the link: when it is next free to carry a byte.
struct Wire {
    next_free: Mutex<Instant>,
    bytes_per_second: f64,
    carried: AtomicU64,
}

impl Wire {
    fn new(bits_per_second: u64) -> Wire {
        Wire {
            next_free: Mutex::new(Instant::now()),
            bytes_per_second: bits_per_second as f64 / 8.0,
            carried: AtomicU64::new(0),
        }
    }

    /// Books `bytes` on the wire no earlier than `ready`; returns when they have gone through.
    fn book(&self, ready: Instant, bytes: usize) -> Instant {
        let mut next_free = self.next_free.lock().unwrap_or_else(|p| p.into_inner());
        let start = (*next_free).max(ready);
        let done = start + Duration::from_secs_f64(bytes as f64 / self.bytes_per_second);
        *next_free = done;
        self.carried.fetch_add(bytes as u64, Ordering::Relaxed);
        done
    }
}

/// A running slow link on 127.0.0.1; stops accepting on drop.
pub struct SlowLink {
    addr: SocketAddr,
    up: Arc<Wire>,
    down: Arc<Wire>,
    stop: Arc<AtomicBool>,
}

impl SlowLink {
    /// Relays `listen` (`127.0.0.1:0` for any port) to `upstream` (`HOST:PORT`) with `rtt` added
    /// to every round trip and `bits_per_second` shared by all connections in each direction.
    pub fn start(listen: &str, upstream: &str, rtt: Duration, bits_per_second: u64) -> SlowLink {
        let listener = TcpListener::bind(listen).expect("bind slow link");
        let addr = listener.local_addr().expect("slow link address");
        let up = Arc::new(Wire::new(bits_per_second));
        let down = Arc::new(Wire::new(bits_per_second));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_up, thread_down, thread_stop) = (up.clone(), down.clone(), stop.clone());
        let upstream = upstream.to_string();
        let one_way = rtt / 2;
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if thread_stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                relay(&client, &server, one_way, thread_up.clone());
                relay(&server, &client, one_way, thread_down.clone());
            }
        });
        SlowLink {
            addr,
            up,
            down,
            stop,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Bytes carried so far, client to server and back.
    pub fn carried(&self) -> (u64, u64) {
        (
            self.up.carried.load(Ordering::Relaxed),
            self.down.carried.load(Ordering::Relaxed),
        )
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Copies `from` into `to` through `wire`, each piece held for `delay`.
fn relay(from: &TcpStream, to: &TcpStream, delay: Duration, wire: Arc<Wire>) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    let (pieces, arriving) = mpsc::sync_channel::<(Instant, Vec<u8>)>(QUEUE);
    std::thread::spawn(move || {
        let mut buffer = vec![0; PIECE];
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if pieces.send((Instant::now(), buffer[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
        // Dropping the sender ends the writer once it has delivered what is queued.
    });
    std::thread::spawn(move || {
        for (read_at, piece) in arriving {
            let delivered = wire.book(read_at + delay, piece.len());
            let now = Instant::now();
            if delivered > now {
                std::thread::sleep(delivered - now);
            }
            if to.write_all(&piece).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
