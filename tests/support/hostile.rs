//! Hostile peers for issue 22: a small HTTP server on loopback (or a Unix socket, for a fake
//! engine) whose every answer a test writes by hand, so it can send an endless token, trickle a
//! manifest or stall an export; and [`assert_refused`], which checks how a run measured by
//! `child::measured` ended.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the peer saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a handler writes to: the raw connection. A write error means the client left; the
/// handler should stop.
pub type Conn<'a> = &'a mut dyn Write;

type Handler = dyn Fn(&Request, Conn) -> std::io::Result<()> + Send + Sync;

/// A peer that answers every request with `handler`, one thread per connection.
pub struct Hostile {
    port: u16,
    socket: Option<PathBuf>,
    seen: Arc<Mutex<Vec<Request>>>,
    _dir: Option<tempfile::TempDir>,
}

impl Hostile {
    /// Listens on `127.0.0.1`.
    pub fn start(
        handler: impl Fn(&Request, Conn) -> std::io::Result<()> + Send + Sync + 'static,
    ) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind hostile peer");
        let port = listener.local_addr().expect("address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (handler, record) = (handler.clone(), record.clone());
                std::thread::spawn(move || {
                    if let Ok(reader) = stream.try_clone() {
                        serve(BufReader::new(reader), stream, &*handler, &record);
                    }
                });
            }
        });
        Hostile {
            port,
            socket: None,
            seen,
            _dir: None,
        }
    }

    /// Listens on a Unix socket in a temporary directory (a fake engine).
    pub fn start_unix(
        handler: impl Fn(&Request, Conn) -> std::io::Result<()> + Send + Sync + 'static,
    ) -> Hostile {
        let dir = tempfile::tempdir().expect("socket dir");
        let path = dir.path().join("engine.sock");
        let listener = UnixListener::bind(&path).expect("bind hostile socket");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (handler, record) = (handler.clone(), record.clone());
                std::thread::spawn(move || {
                    if let Ok(reader) = stream.try_clone() {
                        serve(BufReader::new(reader), stream, &*handler, &record);
                    }
                });
            }
        });
        Hostile {
            port: 0,
            socket: Some(path),
            seen,
            _dir: Some(dir),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `unix://PATH` for `DOCKER_HOST`.
    pub fn docker_host(&self) -> String {
        format!(
            "unix://{}",
            self.socket
                .as_deref()
                .unwrap_or(Path::new("/nonexistent"))
                .display()
        )
    }

    /// Every request so far, as `METHOD PATH`.
    pub fn requests(&self) -> Vec<String> {
        self.seen
            .lock()
            .map(|seen| {
                seen.iter()
                    .map(|r| format!("{} {}", r.method, r.path))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn serve(
    mut reader: impl BufRead,
    mut writer: impl Write,
    handler: &Handler,
    seen: &Mutex<Vec<Request>>,
) {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            return;
        };
        let mut request = Request {
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
        };
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                request
                    .headers
                    .push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        // A body (an upload) is read and dropped.
        let len: u64 = request
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if std::io::copy(&mut (&mut reader).take(len), &mut std::io::sink()).is_err() {
            return;
        }
        if let Ok(mut seen) = seen.lock() {
            seen.push(request.clone());
        }
        if handler(&request, &mut writer).is_err() || writer.flush().is_err() {
            return;
        }
    }
}

/// Writes a complete response with a body.
pub fn respond(
    conn: Conn,
    status: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n",
        body.len()
    )?;
    for (k, v) in headers {
        write!(conn, "{k}: {v}\r\n")?;
    }
    conn.write_all(b"\r\n")?;
    conn.write_all(body)
}

/// Writes a response head with no length (the body runs until the connection closes), then
/// `first`, then `more` for ever, a piece every `pause`, until the client leaves.
pub fn endless(
    conn: Conn,
    headers: &[(&str, &str)],
    first: &[u8],
    more: &[u8],
    pause: Duration,
) -> std::io::Result<()> {
    conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n")?;
    for (k, v) in headers {
        write!(conn, "{k}: {v}\r\n")?;
    }
    conn.write_all(b"\r\n")?;
    conn.write_all(first)?;
    loop {
        conn.write_all(more)?;
        if !pause.is_zero() {
            conn.flush()?;
            std::thread::sleep(pause);
        }
    }
}

use super::child::Measured;

/// Peak RSS every hostile run must stay under.
pub const RSS_LIMIT_KIB: i64 = 64 * 1024;

/// The run ended within `limit`, under [`RSS_LIMIT_KIB`], with `code` and exactly one `error:`
/// line that contains `names`.
pub fn assert_refused(run: &Measured, code: i32, names: &str, limit: Duration) {
    let stderr = run.stderr();
    eprintln!(
        "peak RSS {} KiB, {:.1}s, exit {:?}\n{stderr}",
        run.peak_kib,
        run.elapsed.as_secs_f64(),
        run.code()
    );
    assert_eq!(run.code(), Some(code), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains(names),
        "the error should name {names}: {stderr}"
    );
    assert!(stderr.lines().any(|l| l.starts_with("hint:")), "{stderr}");
    assert!(
        run.peak_kib < RSS_LIMIT_KIB,
        "peak RSS {} KiB",
        run.peak_kib
    );
    assert!(run.elapsed < limit, "took {:?}", run.elapsed);
}
