//! The optional HTTP endpoint (`--http ADDR`): read-only views of the [`Board`].
//!
//! * `/` — a self-contained live page (no external assets); `/status` — its JSON;
//! * `/metrics` — Prometheus text ([`crate::metrics`]); `/healthz` — 200 `ok` or 503 and why;
//! * `/frame/<camera>.png` — the camera's last scored frame with its heatmap overlay.
//!
//! Only GET and HEAD; nothing changes state. Bounded by construction: one accept thread,
//! [`WORKERS`] worker threads and a queue of [`QUEUE`] connections; a connection beyond that is
//! answered 503 at once and closed; a request head must arrive whole within [`HEAD_TIMEOUT`] and
//! be at most [`MAX_HEAD`] bytes; writes time out after [`IO_TIMEOUT`]; one request per
//! connection. So silent clients delay others by at most `QUEUE / WORKERS × HEAD_TIMEOUT`. The watch loop never
//! waits on any of it (see [`crate::board`]).
//!
//! With a token (`--http-token-file`), every path but `/healthz` needs `Authorization: Bearer
//! TOKEN` or `?token=TOKEN` (the page passes its own `?token=` on to its requests).

use crate::board::Board;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Threads answering requests.
pub const WORKERS: usize = 4;
/// Accepted connections waiting for a worker; more are answered 503.
pub const QUEUE: usize = 16;
/// Write timeout of every connection, and its read timeout once the request head is in.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole request head must arrive within this (a silent or trickling client is dropped).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest request line plus headers accepted.
pub const MAX_HEAD: usize = 8192;

const PAGE: &str = include_str!("page.html");

/// Why the endpoint cannot start: a bad `--http` address, token file, or socket.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("--http {spec}: {source} (expected PORT, HOST:PORT or [IPv6]:PORT)")]
    Resolve {
        spec: String,
        #[source]
        source: std::io::Error,
    },
    #[error("--http {spec}: no address (expected PORT, HOST:PORT or [IPv6]:PORT)")]
    NoAddress { spec: String },
    #[error("--http-token-file {}: {source}", path.display())]
    TokenRead {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--http-token-file {}: the file is empty", path.display())]
    TokenEmpty { path: std::path::PathBuf },
    #[error("--http-token-file {}: the token has spaces or control characters", path.display())]
    TokenCharacters { path: std::path::PathBuf },
    #[error("--http {addr}: cannot listen: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("--http {addr}: {source}")]
    LocalAddr {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("--http: cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// `PORT` (on 127.0.0.1), `HOST:PORT` or `[IPv6]:PORT`.
pub fn parse_addr(spec: &str) -> Result<SocketAddr, HttpError> {
    if let Ok(port) = spec.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    let mut addrs = spec
        .to_socket_addrs()
        .map_err(|source| HttpError::Resolve {
            spec: spec.to_string(),
            source,
        })?;
    addrs.next().ok_or_else(|| HttpError::NoAddress {
        spec: spec.to_string(),
    })
}

/// Reads the token file: its first line, trimmed; an empty token is an error.
pub fn read_token(path: &std::path::Path) -> Result<String, HttpError> {
    let text = std::fs::read_to_string(path).map_err(|source| HttpError::TokenRead {
        path: path.to_path_buf(),
        source,
    })?;
    let t = text.lines().next().unwrap_or("").trim().to_string();
    if t.is_empty() {
        return Err(HttpError::TokenEmpty {
            path: path.to_path_buf(),
        });
    }
    if t.chars().any(|c| c.is_control() || c == ' ') {
        return Err(HttpError::TokenCharacters {
            path: path.to_path_buf(),
        });
    }
    Ok(t)
}

/// A running endpoint; [`HttpServer::shutdown`] (or drop) stops accepting.
pub struct HttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds `addr` (port 0: any free port; see [`HttpServer::local_addr`]) and starts serving.
    pub fn start(
        addr: SocketAddr,
        token: Option<String>,
        board: Arc<Board>,
    ) -> Result<HttpServer, HttpError> {
        let listener =
            TcpListener::bind(addr).map_err(|source| HttpError::Listen { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| HttpError::LocalAddr { addr, source })?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = sync_channel::<TcpStream>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let token = Arc::new(token);
        for i in 0..WORKERS {
            let (rx, board, token) = (rx.clone(), board.clone(), token.clone());
            std::thread::Builder::new()
                .name(format!("http-{i}"))
                .spawn(move || worker(&rx, &board, token.as_deref()))
                .map_err(HttpError::Thread)?;
        }
        let stop2 = stop.clone();
        let accept = std::thread::Builder::new()
            .name("http-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(s) = conn else { continue };
                    if s.set_read_timeout(Some(IO_TIMEOUT)).is_err()
                        || s.set_write_timeout(Some(IO_TIMEOUT)).is_err()
                    {
                        continue;
                    }
                    match tx.try_send(s) {
                        Ok(()) => {}
                        Err(TrySendError::Full(mut s)) => {
                            let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
                            let _ = respond(
                                &mut s,
                                false,
                                "503 Service Unavailable",
                                "text/plain",
                                &[("Retry-After", "5")],
                                b"busy: too many connections\n",
                            );
                            let _ = s.shutdown(std::net::Shutdown::Write);
                        }
                        Err(TrySendError::Disconnected(_)) => break,
                    }
                }
            })
            .map_err(HttpError::Thread)?;
        Ok(HttpServer {
            addr,
            stop,
            accept: Some(accept),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting; requests in progress finish on their own (bounded by the timeouts).
    pub fn shutdown(mut self) {
        self.stop_accepting();
    }

    fn stop_accepting(&mut self) {
        let Some(h) = self.accept.take() else { return };
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept with a connection of our own.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            });
        }
        if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok() {
            let _ = h.join();
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop_accepting();
    }
}

fn worker(rx: &Mutex<Receiver<TcpStream>>, board: &Board, token: Option<&str>) {
    loop {
        let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(mut s) = next else { return };
        if let Err(e) = serve(&mut s, board, token) {
            log::debug!("http: {e}");
        }
        linger_close(s);
    }
}

/// Closes after the response: our side first, then reads (and drops) what the client still
/// sends for a moment, so unread request bytes do not turn the close into a reset that could
/// destroy the response before the client read it.
fn linger_close(mut s: TcpStream) {
    let _ = s.shutdown(std::net::Shutdown::Write);
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    let mut sink = [0u8; 4096];
    let mut total = 0;
    while total < 1 << 16 {
        match s.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

/// The request head, or `None` when it is too long or the client closed early. An error when it
/// did not arrive within [`HEAD_TIMEOUT`].
fn read_head(s: &mut TcpStream) -> std::io::Result<Option<String>> {
    let deadline = std::time::Instant::now() + HEAD_TIMEOUT;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        s.set_read_timeout(Some(left))?;
        if let Some(end) = find_end(&buf) {
            buf.truncate(end);
            return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find_end(b: &[u8]) -> Option<usize> {
    b.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| b.windows(2).position(|w| w == b"\n\n"))
}

/// Writes one response and flushes (the connection is then closed by the caller dropping it).
fn respond(
    s: &mut TcpStream,
    head_only: bool,
    status: &str,
    ctype: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut h = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    s.write_all(h.as_bytes())?;
    if !head_only {
        s.write_all(body)?;
    }
    s.flush()
}

/// `%XX` and `+` decoding of a query value.
fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 3 <= b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Equal without an early exit on the first differing byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorised(token: Option<&str>, head: &str, query: &str) -> bool {
    let Some(t) = token else { return true };
    let bearer = head.lines().skip(1).any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("authorization")
                && v.trim()
                    .strip_prefix("Bearer ")
                    .is_some_and(|v| same(v.trim().as_bytes(), t.as_bytes()))
        })
    });
    bearer
        || query.split('&').any(|kv| {
            kv.strip_prefix("token=")
                .is_some_and(|v| same(percent_decode(v).as_bytes(), t.as_bytes()))
        })
}

fn serve(s: &mut TcpStream, board: &Board, token: Option<&str>) -> std::io::Result<()> {
    let Some(head) = read_head(s)? else {
        return respond(
            s,
            false,
            "400 Bad Request",
            "text/plain",
            &[],
            b"bad request\n",
        );
    };
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return respond(
            s,
            false,
            "405 Method Not Allowed",
            "text/plain",
            &[("Allow", "GET, HEAD")],
            b"read-only: GET and HEAD only\n",
        );
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path == "/healthz" {
        let (ok, why) = board.snapshot_without_views().health();
        let status = if ok {
            "200 OK"
        } else {
            "503 Service Unavailable"
        };
        return respond(
            s,
            head_only,
            status,
            "text/plain",
            &[],
            format!("{why}\n").as_bytes(),
        );
    }
    if !authorised(token, &head, query) {
        return respond(
            s,
            head_only,
            "401 Unauthorized",
            "text/plain",
            &[("WWW-Authenticate", "Bearer")],
            b"a token is needed: Authorization: Bearer TOKEN, or ?token=TOKEN\n",
        );
    }
    match path {
        "/" | "/index.html" => respond(
            s,
            head_only,
            "200 OK",
            "text/html; charset=utf-8",
            &[(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'",
            )],
            PAGE.as_bytes(),
        ),
        "/status" => {
            let body = board.snapshot_without_views().status_json().to_string();
            respond(
                s,
                head_only,
                "200 OK",
                "application/json",
                &[],
                body.as_bytes(),
            )
        }
        "/metrics" => {
            let body = crate::metrics::render(&board.snapshot_without_views());
            respond(
                s,
                head_only,
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                &[],
                body.as_bytes(),
            )
        }
        p if p.starts_with("/frame/") && p.ends_with(".png") => {
            let name = percent_decode(&p["/frame/".len()..p.len() - ".png".len()]);
            match frame_png(board, &name) {
                Some(png) => respond(s, head_only, "200 OK", "image/png", &[], &png),
                None => respond(
                    s,
                    head_only,
                    "404 Not Found",
                    "text/plain",
                    &[],
                    format!("no scored frame of camera {name:?} yet\n").as_bytes(),
                ),
            }
        }
        _ => respond(
            s,
            head_only,
            "404 Not Found",
            "text/plain",
            &[],
            b"not found: /, /status, /metrics, /healthz, /frame/<camera>.png\n",
        ),
    }
}

/// The last scored frame of `camera` with its heatmap overlay and score, as PNG.
fn frame_png(board: &Board, camera: &str) -> Option<Vec<u8>> {
    let (view, heat, score, threshold) = board.view(camera)?;
    let scale = (256 / view.width().max(1)).max(1);
    let caption = hood_runtime::overlay::Caption {
        score,
        threshold: Some(threshold),
    };
    let img = hood_runtime::overlay::annotated(&view, &heat, 1.0, scale, &caption);
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .ok()?;
    Some(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_default_to_loopback() {
        assert_eq!(parse_addr("8080").unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(
            parse_addr("0.0.0.0:9000").unwrap().to_string(),
            "0.0.0.0:9000"
        );
        assert_eq!(parse_addr("[::1]:9000").unwrap().to_string(), "[::1]:9000");
        assert!(parse_addr("nonsense")
            .unwrap_err()
            .to_string()
            .contains("--http nonsense"));
        assert!(parse_addr("70000").is_err());
    }

    #[test]
    fn tokens_by_header_or_query() {
        let head = "GET /metrics HTTP/1.1\r\nHost: x\r\nauthorization: Bearer s3cret";
        assert!(authorised(Some("s3cret"), head, ""));
        assert!(!authorised(Some("s3cret!"), head, ""));
        assert!(authorised(
            Some("a b&c"),
            "GET / HTTP/1.1",
            "x=1&token=a%20b%26c"
        ));
        assert!(!authorised(Some("abc"), "GET / HTTP/1.1", "token=abd"));
        assert!(!authorised(Some("abc"), "GET / HTTP/1.1", "xtoken=abc"));
        assert!(authorised(None, "GET / HTTP/1.1", ""));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("a+b%2Fc"), "a b/c");
    }
}
