//! A fault-injecting HTTP/1.1 proxy that a test puts between `idpbuilder push` and a real
//! registry: it forwards every request unchanged, except those a [`Rule`] picks, which get a
//! [`Fault`] instead: a 5xx or 429 answer, a connection reset part-way through the request body
//! or the response body, a response held back past the tool's timeout, a truncated response, a
//! proxy's early 413, or a slow body.
//!
//! One std thread per client connection, each with its own upstream connection; request and
//! response bodies are framed by `Content-Length` or `chunked`, as HTTP/1.1 says. The `Host`
//! header is kept, so the registry's absolute `Location`s point back at the proxy.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What happens to a request a rule picks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status (with a small body) without forwarding; the request body is read.
    Status(u16),
    /// Answer `429 Too Many Requests` with `Retry-After: 1`.
    TooManyRequests,
    /// Forward the head and this many body bytes, then drop both connections (the tool sees a
    /// reset or a closed connection; the registry an interrupted body).
    ResetAfter(u64),
    /// Forward the request, then hold the registry's response back this long before sending it.
    Delay(Duration),
    /// Forward the request, then send only the first half of the response head and close.
    TruncateResponse,
    /// Answer `413` as soon as the head is in, without reading the body, then close: nginx's
    /// `client_max_body_size` refusal. With `linger`, the body is drained (as nginx does) so the
    /// answer surely arrives; without, unread bytes make the kernel send a reset.
    Early413 { linger: bool },
    /// The same early answer and close with another status: a registry that refuses an upload
    /// before reading its body.
    EarlyStatus { status: u16, linger: bool },
    /// Forward the body at about this many bytes per second.
    Throttle(u64),
    /// Forward the request, then send the response head and this many bytes of its body and
    /// drop the connection: a download (a blob GET) reset mid-body.
    ResetResponseAfter(u64),
}

/// Which requests get a fault: those matching the method, path and body size, from the
/// `after`+1-th match on, every `every`-th, at most `times` of them, cycling through `faults`.
#[derive(Clone, Debug)]
pub struct Rule {
    method: Option<String>,
    path: String,
    body_over: Option<u64>,
    after: usize,
    every: usize,
    times: usize,
    faults: Vec<Fault>,
}

impl Rule {
    /// Requests with this method (any for `"*"`) whose path contains `path`, or ends with it
    /// when `path` ends in `$` (`"/v2/$"` is the version check only).
    pub fn on(method: &str, path: &str) -> Rule {
        Rule {
            method: (method != "*").then(|| method.to_string()),
            path: path.to_string(),
            body_over: None,
            after: 0,
            every: 1,
            times: 1,
            faults: Vec::new(),
        }
    }

    /// Every request.
    pub fn any() -> Rule {
        Rule::on("*", "")
    }

    /// Only requests whose `Content-Length` exceeds `bytes`.
    pub fn body_over(mut self, bytes: u64) -> Rule {
        self.body_over = Some(bytes);
        self
    }

    /// Let the first `n` matches through.
    pub fn after(mut self, n: usize) -> Rule {
        self.after = n;
        self
    }

    /// Then pick every `n`-th match.
    pub fn every(mut self, n: usize) -> Rule {
        self.every = n.max(1);
        self
    }

    /// Pick at most `n` requests (the default is 1).
    pub fn times(mut self, n: usize) -> Rule {
        self.times = n;
        self
    }

    /// Pick every match from then on.
    pub fn always(self) -> Rule {
        self.times(usize::MAX)
    }

    pub fn fault(self, fault: Fault) -> Rule {
        self.faults(&[fault])
    }

    /// Faults taken in turn by the requests picked.
    pub fn faults(mut self, faults: &[Fault]) -> Rule {
        self.faults = faults.to_vec();
        self
    }

    fn matches(&self, head: &RequestHead) -> bool {
        self.method.as_deref().is_none_or(|m| m == head.method)
            && match self.path.strip_suffix('$') {
                Some(end) => head.path.ends_with(end),
                None => head.path.contains(&self.path),
            }
            && self
                .body_over
                .is_none_or(|limit| head.content_length.unwrap_or(0) > limit)
    }
}

/// One request the proxy saw, and the fault it got.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub content_length: Option<u64>,
    pub fault: Option<Fault>,
    /// When its head arrived.
    pub at: Instant,
}

struct RuleState {
    rule: Rule,
    matched: usize,
    fired: usize,
}

#[derive(Default)]
struct State {
    rules: Mutex<Vec<RuleState>>,
    seen: Mutex<Vec<Seen>>,
    body_bytes: AtomicU64,
    response_bytes: AtomicU64,
}

impl State {
    fn count_response(&self, bytes: usize) {
        self.response_bytes
            .fetch_add(bytes as u64, Ordering::SeqCst);
    }

    /// Records the request and picks its fault, if any.
    fn decide(&self, head: &RequestHead) -> Option<Fault> {
        let mut rules = lock(&self.rules);
        let mut fault = None;
        for state in rules.iter_mut() {
            if !state.rule.matches(head) {
                continue;
            }
            state.matched += 1;
            let n = state.matched;
            let due = n > state.rule.after && (n - state.rule.after - 1) % state.rule.every == 0;
            if fault.is_none() && due && state.fired < state.rule.times {
                let faults = &state.rule.faults;
                fault = faults.get(state.fired % faults.len().max(1)).cloned();
                state.fired += 1;
            }
        }
        lock(&self.seen).push(Seen {
            method: head.method.clone(),
            path: head.path.clone(),
            content_length: head.content_length,
            fault: fault.clone(),
            at: Instant::now(),
        });
        fault
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running proxy on 127.0.0.1; stops accepting on drop.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Starts a proxy forwarding to `upstream` (`HOST:PORT`, plain HTTP) with these rules.
    pub fn start(upstream: &str, rules: Vec<Rule>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fault proxy");
        let addr = listener.local_addr().expect("fault proxy address");
        let state = Arc::new(State {
            rules: Mutex::new(
                rules
                    .into_iter()
                    .map(|rule| RuleState {
                        rule,
                        matched: 0,
                        fired: 0,
                    })
                    .collect(),
            ),
            ..State::default()
        });
        let stop = Arc::new(AtomicBool::new(false));
        let upstream = upstream.to_string();
        let (thread_state, thread_stop) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if thread_stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let (state, upstream) = (thread_state.clone(), upstream.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, &upstream, &state);
                });
            }
        });
        FaultProxy { addr, state, stop }
    }

    /// `127.0.0.1:PORT`: the host to push to.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Every request seen so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.state.seen).clone()
    }

    /// How many faults were injected so far.
    pub fn faults_injected(&self) -> usize {
        self.seen().iter().filter(|s| s.fault.is_some()).count()
    }

    /// Request body bytes forwarded to the registry so far.
    pub fn body_bytes_forwarded(&self) -> u64 {
        self.state.body_bytes.load(Ordering::SeqCst)
    }

    /// Response bytes (heads and bodies) sent back to the tool so far.
    pub fn response_bytes_forwarded(&self) -> u64 {
        self.state.response_bytes.load(Ordering::SeqCst)
    }

    /// Waits until `done` holds (polling every 20 ms), panicking after `limit`.
    pub fn wait_for(&self, limit: Duration, what: &str, done: impl Fn(&FaultProxy) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "proxy: timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

#[derive(Debug)]
struct RequestHead {
    raw: Vec<u8>,
    method: String,
    path: String,
    content_length: Option<u64>,
    chunked: bool,
}

#[derive(Debug)]
struct ResponseHead {
    raw: Vec<u8>,
    status: u16,
    content_length: Option<u64>,
    chunked: bool,
    close: bool,
}

/// Serves one client connection until either side closes or a fault ends it.
fn serve(client: TcpStream, upstream_addr: &str, state: &State) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut client_in = BufReader::new(client.try_clone()?);
    let mut client_out = client;
    let mut upstream: Option<(BufReader<TcpStream>, TcpStream)> = None;
    loop {
        let Some(raw) = read_head(&mut client_in)? else {
            return Ok(());
        };
        let head = parse_request(raw)?;
        let fault = state.decide(&head);
        match fault {
            Some(Fault::Status(code)) => {
                discard_body(&mut client_in, &head)?;
                client_out.write_all(&canned(code, &[]))?;
                continue;
            }
            Some(Fault::TooManyRequests) => {
                discard_body(&mut client_in, &head)?;
                client_out.write_all(&canned(429, &["Retry-After: 1"]))?;
                continue;
            }
            Some(Fault::Early413 { linger }) | Some(Fault::EarlyStatus { linger, .. }) => {
                let status = match fault {
                    Some(Fault::EarlyStatus { status, .. }) => status,
                    _ => 413,
                };
                client_out.write_all(&canned(status, &["Connection: close"]))?;
                client_out.flush()?;
                if linger {
                    let _ = client_out.shutdown(Shutdown::Write);
                    client_out.set_read_timeout(Some(Duration::from_secs(2)))?;
                    let _ = io::copy(&mut client_in, &mut io::sink());
                }
                return Ok(());
            }
            _ => {}
        }
        if upstream.is_none() {
            let stream = TcpStream::connect(upstream_addr)?;
            stream.set_read_timeout(Some(Duration::from_secs(60)))?;
            upstream = Some((BufReader::new(stream.try_clone()?), stream));
        }
        let Some((up_in, up_out)) = upstream.as_mut() else {
            return Ok(());
        };
        up_out.write_all(&head.raw)?;
        let limit = match &fault {
            Some(Fault::ResetAfter(n)) => Some(*n),
            _ => None,
        };
        let rate = match &fault {
            Some(Fault::Throttle(rate)) => Some(*rate),
            _ => None,
        };
        copy_body(
            &mut client_in,
            up_out,
            &head,
            limit,
            rate,
            &state.body_bytes,
        )?;
        if limit.is_some() {
            // Both sides lose the connection mid-request.
            let _ = up_out.shutdown(Shutdown::Both);
            drop(client_in);
            let _ = client_out.shutdown(Shutdown::Both);
            return Ok(());
        }
        up_out.flush()?;
        let response = read_response(up_in, &head)?;
        match fault {
            Some(Fault::Delay(delay)) => {
                std::thread::sleep(delay);
                let _ = client_out.write_all(&response.0);
                state.count_response(response.0.len());
                return Ok(());
            }
            Some(Fault::ResetResponseAfter(n)) => {
                let end = (response.1.raw.len() as u64 + n).min(response.0.len() as u64);
                client_out.write_all(&response.0[..end as usize])?;
                state.count_response(end as usize);
                client_out.flush()?;
                let _ = client_out.shutdown(Shutdown::Both);
                return Ok(());
            }
            Some(Fault::TruncateResponse) => {
                let half = response.1.raw.len() / 2;
                client_out.write_all(&response.0[..half])?;
                client_out.flush()?;
                let _ = client_out.shutdown(Shutdown::Both);
                return Ok(());
            }
            _ => {}
        }
        client_out.write_all(&response.0)?;
        state.count_response(response.0.len());
        client_out.flush()?;
        if response.1.close {
            return Ok(());
        }
    }
}

/// A small response as a proxy in front of the registry would send it.
fn canned(status: u16, extra: &[&str]) -> Vec<u8> {
    let reason = match status {
        413 => "Request Entity Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Fault",
    };
    let body = format!("<html><body><h1>{status} {reason}</h1>fault proxy</body></html>\n");
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html\r\nContent-Length: {}\r\n",
        body.len()
    );
    for line in extra {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

/// Reads up to and including the blank line; `None` at a clean end of stream.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut raw = Vec::new();
    loop {
        let before = raw.len();
        if reader.read_until(b'\n', &mut raw)? == 0 {
            return if raw.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        if &raw[before..] == b"\r\n" || &raw[before..] == b"\n" {
            return Ok(Some(raw));
        }
    }
}

fn headers(raw: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(raw)
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}

fn framing(headers: &[(String, String)]) -> (Option<u64>, bool) {
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok());
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    (length, chunked)
}

fn parse_request(raw: Vec<u8>) -> io::Result<RequestHead> {
    let text = String::from_utf8_lossy(&raw).into_owned();
    let mut first = text.lines().next().unwrap_or_default().split_whitespace();
    let (Some(method), Some(path)) = (first.next(), first.next()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad request line",
        ));
    };
    let (content_length, chunked) = framing(&headers(&raw));
    Ok(RequestHead {
        method: method.to_string(),
        path: path.to_string(),
        content_length,
        chunked,
        raw,
    })
}

fn discard_body(client: &mut BufReader<TcpStream>, head: &RequestHead) -> io::Result<()> {
    let counter = AtomicU64::new(0);
    copy_body(client, &mut io::sink(), head, None, None, &counter)
}

/// Copies the request body, stopping after `limit` bytes (for a reset) and pacing it at `rate`.
fn copy_body(
    from: &mut BufReader<TcpStream>,
    to: &mut impl Write,
    head: &RequestHead,
    limit: Option<u64>,
    rate: Option<u64>,
    counter: &AtomicU64,
) -> io::Result<()> {
    let mut pump = Pump {
        budget: limit.unwrap_or(u64::MAX),
        rate,
        counter,
    };
    if head.chunked {
        loop {
            let mut size_line = Vec::new();
            from.read_until(b'\n', &mut size_line)?;
            to.write_all(&size_line)?;
            let text = String::from_utf8_lossy(&size_line);
            let hex = text.trim().split(';').next().unwrap_or("0");
            let size = u64::from_str_radix(hex, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if !pump.copy(from, to, size)? {
                return Ok(());
            }
            let mut crlf = Vec::new();
            from.read_until(b'\n', &mut crlf)?;
            to.write_all(&crlf)?;
            if size == 0 {
                return Ok(());
            }
        }
    }
    pump.copy(from, to, head.content_length.unwrap_or(0))
        .map(drop)
}

/// Moves body bytes, counting them, until the reset budget runs out, at an optional pace.
struct Pump<'a> {
    budget: u64,
    rate: Option<u64>,
    counter: &'a AtomicU64,
}

impl Pump<'_> {
    /// Copies `len` bytes; `false` when the budget ran out first.
    fn copy(
        &mut self,
        from: &mut impl Read,
        to: &mut impl Write,
        mut len: u64,
    ) -> io::Result<bool> {
        let mut buf = [0u8; 16 * 1024];
        while len > 0 {
            let mut step = len.min(buf.len() as u64).min(self.budget);
            if let Some(rate) = self.rate {
                step = step.min((rate / 20).max(1));
            }
            if step == 0 {
                return Ok(false);
            }
            let step = step as usize;
            from.read_exact(&mut buf[..step])?;
            to.write_all(&buf[..step])?;
            self.counter.fetch_add(step as u64, Ordering::SeqCst);
            self.budget -= step as u64;
            len -= step as u64;
            if let Some(rate) = self.rate {
                std::thread::sleep(Duration::from_secs_f64(step as f64 / rate as f64));
            }
        }
        Ok(true)
    }
}

/// Reads the whole response (head and body) from the registry; returns its bytes and head.
fn read_response(
    from: &mut BufReader<TcpStream>,
    request: &RequestHead,
) -> io::Result<(Vec<u8>, ResponseHead)> {
    let raw = read_head(from)?.ok_or(io::ErrorKind::UnexpectedEof)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let fields = headers(&raw);
    let (content_length, chunked) = framing(&fields);
    let close = fields
        .iter()
        .any(|(k, v)| k == "connection" && v.eq_ignore_ascii_case("close"));
    let head = ResponseHead {
        raw: raw.clone(),
        status,
        content_length,
        chunked,
        close,
    };
    let mut bytes = raw;
    let bodiless = request.method == "HEAD" || status == 204 || status == 304 || status < 200;
    if !bodiless {
        if head.chunked {
            loop {
                let mut size_line = Vec::new();
                from.read_until(b'\n', &mut size_line)?;
                bytes.extend_from_slice(&size_line);
                let text = String::from_utf8_lossy(&size_line).into_owned();
                let size = u64::from_str_radix(text.trim().split(';').next().unwrap_or("0"), 16)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
                let mut chunk = vec![0; size as usize + 2];
                from.read_exact(&mut chunk)?;
                bytes.extend_from_slice(&chunk);
                if size == 0 {
                    break;
                }
            }
        } else if let Some(len) = head.content_length {
            let mut body = vec![0; len as usize];
            from.read_exact(&mut body)?;
            bytes.extend_from_slice(&body);
        } else {
            from.read_to_end(&mut bytes)?;
        }
    }
    Ok((bytes, head))
}
