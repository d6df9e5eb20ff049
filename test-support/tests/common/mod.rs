//! A raw HTTP/1.1 client for the mirror tests: it shows exactly what went over the wire
//! (a truncated body is returned as is, not turned into an error).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn content_length(&self) -> u64 {
        self.header("content-length").unwrap().parse().unwrap()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Splits `http://127.0.0.1:PORT/path` into the address and the path.
pub fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let i = rest.find('/').unwrap_or(rest.len());
    (rest[..i].to_owned(), rest[i..].to_owned())
}

/// Sends one request and sends the request head only; the caller reads.
pub fn open(method: &str, url: &str, extra: &[(&str, &str)]) -> TcpStream {
    let (addr, path) = split_url(url);
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (n, v) in extra {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s
}

/// Reads the response head from `s` (byte by byte: no read-ahead into the body).
pub fn read_head(s: &mut TcpStream) -> (u16, Vec<(String, String)>) {
    let mut raw = Vec::new();
    let mut b = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut b).unwrap();
        assert_eq!(n, 1, "connection closed inside the response head");
        raw.push(b[0]);
    }
    let text = String::from_utf8(raw).unwrap();
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    (status, headers)
}

/// Whole exchange: the body is whatever arrived before the server closed.
pub fn request(method: &str, url: &str, extra: &[(&str, &str)]) -> Response {
    let mut s = open(method, url, extra);
    let (status, headers) = read_head(&mut s);
    let mut body = Vec::new();
    s.read_to_end(&mut body).unwrap();
    Response {
        status,
        headers,
        body,
    }
}

pub fn get(url: &str) -> Response {
    request("GET", url, &[])
}

/// Deterministic test bytes of length `n`.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}
