//! Just enough HTTP/1.1 for a test mirror: parse one request head, write one response.
//!
//! Every response carries `Connection: close` and the connection ends after it, so there is no
//! keep-alive, chunking or pipelining to get wrong.

use std::io::{self, BufRead, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Limits that keep a misbehaving client from holding a thread or memory.
const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;

pub(crate) struct Request {
    pub(crate) method: String,
    /// The request target as sent (path + query), for the request log.
    pub(crate) target: String,
    pub(crate) path: String,
    pub(crate) query: String,
    headers: Vec<(String, String)>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Value of `name` in the query string, e.g. `per_page`.
    pub(crate) fn query_param(&self, name: &str) -> Option<&str> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }
}

/// Reads one request head. `Ok(None)` when the peer closed without sending anything (the
/// mirror's own wake-up connection on shutdown does that).
pub(crate) fn read_request(r: &mut impl BufRead) -> io::Result<Option<Request>> {
    let mut total = 0usize;
    let mut line = String::new();
    let n = read_line(r, &mut line, &mut total)?;
    if n == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad("not HTTP/1.x"));
    }
    let method = method.to_owned();
    let target = target.to_owned();

    let mut headers = Vec::new();
    loop {
        line.clear();
        if read_line(r, &mut line, &mut total)? == 0 {
            return Err(bad("connection closed inside the request head"));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(bad("too many headers"));
        }
        let (name, value) = l.split_once(':').ok_or_else(|| bad("malformed header"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }

    // Accept absolute-form targets too (what a client sends to a proxy).
    let origin_form = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target.as_str(),
    };
    let (path, query) = origin_form.split_once('?').unwrap_or((origin_form, ""));
    Ok(Some(Request {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        target,
        headers,
    }))
}

fn read_line(r: &mut impl BufRead, line: &mut String, total: &mut usize) -> io::Result<usize> {
    let budget = (MAX_HEAD_BYTES - *total) as u64;
    let n = r.take(budget).read_line(line)?;
    *total += n;
    if *total >= MAX_HEAD_BYTES {
        return Err(bad("request head too large"));
    }
    Ok(n)
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Writes a status line and headers (always `Content-Length` and `Connection: close`).
pub(crate) fn write_head(
    w: &mut impl Write,
    status: u16,
    content_length: u64,
    extra: &[(&str, &str)],
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {content_length}\r\nConnection: close\r\n",
        reason(status)
    );
    for (name, value) in extra {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.flush()
}

/// A complete small response (errors, JSON).
pub(crate) fn write_simple(
    w: &mut impl Write,
    status: u16,
    content_type: &str,
    body: &[u8],
    head_only: bool,
    extra: &[(&str, &str)],
) -> io::Result<()> {
    let mut headers = vec![("Content-Type", content_type)];
    headers.extend_from_slice(extra);
    write_head(w, status, body.len() as u64, &headers)?;
    if !head_only {
        w.write_all(body)?;
    }
    w.flush()
}

/// How to send (part of) a body.
pub(crate) struct BodyPlan {
    /// Stop after this many bytes (truncation, stall point) or at the end of the source.
    pub(crate) limit: u64,
    /// Flip every byte: same length, different content.
    pub(crate) corrupt: bool,
    /// Bytes per second for this connection, `None` for as fast as possible.
    pub(crate) throttle: Option<u64>,
}

/// Streams `src` to `w` in chunks, never holding more than one chunk in memory. Returns the
/// number of bytes sent.
pub(crate) fn send_body(
    w: &mut impl Write,
    src: &mut dyn Read,
    plan: &BodyPlan,
    shutdown: &AtomicBool,
) -> io::Result<u64> {
    let chunk = match plan.throttle {
        // Small chunks under a cap keep the rate smooth instead of bursty.
        Some(rate) => (rate / 20).clamp(1, 64 * 1024) as usize,
        None => 64 * 1024,
    };
    let mut buf = vec![0u8; chunk];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < plan.limit {
        if shutdown.load(Ordering::Relaxed) {
            return Err(io::Error::other("mirror shutting down"));
        }
        let want = (plan.limit - sent).min(chunk as u64) as usize;
        let n = src.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        if plan.corrupt {
            buf[..n].iter_mut().for_each(|b| *b ^= 0xA5);
        }
        w.write_all(&buf[..n])?;
        sent += n as u64;
        if let Some(rate) = plan.throttle {
            let due = Duration::from_secs_f64(sent as f64 / rate.max(1) as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    w.flush()?;
    Ok(sent)
}

/// Sleeps for `d`, waking early if the mirror shuts down, so stall faults never outlive it.
pub(crate) fn interruptible_sleep(d: Duration, shutdown: &AtomicBool) {
    let end = Instant::now() + d;
    while !shutdown.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

/// Decodes `%XX` escapes in one path segment (asset names are plain ASCII, but a client may
/// escape `+` or similar).
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_head() {
        let raw = b"GET /download/b1/a%2Bb.zip?x=1&per_page=5 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer t\r\n\r\n";
        let req = read_request(&mut &raw[..]).unwrap().unwrap();
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, "/download/b1/a%2Bb.zip");
        assert_eq!(req.query_param("per_page"), Some("5"));
        assert_eq!(req.header("authorization"), Some("Bearer t"));
        assert_eq!(percent_decode("a%2Bb.zip"), "a+b.zip");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn absolute_form_target() {
        let raw = b"GET http://127.0.0.1:1/api/x?y HTTP/1.1\r\n\r\n";
        let req = read_request(&mut &raw[..]).unwrap().unwrap();
        assert_eq!(req.path, "/api/x");
        assert_eq!(req.query, "y");
    }

    #[test]
    fn empty_connection_and_garbage() {
        assert!(read_request(&mut &b""[..]).unwrap().is_none());
        assert!(read_request(&mut &b"hello\r\n\r\n"[..]).is_err());
        let huge = vec![b'a'; MAX_HEAD_BYTES + 10];
        assert!(read_request(&mut &huge[..]).is_err());
    }
}
