//! What the server's plain-HTTP tests share: starting a server on a free loopback port and a
//! one-shot HTTP/1.1 client.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kaudit_server::{Config, Server};

/// Starts a server (plain HTTP on a free loopback port) with `yaml` after the `data`, `listen`
/// and `tls` lines, and waits until it is ready. Returns it and its address.
pub async fn start(data: &std::path::Path, yaml: &str) -> (Server, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let cfg = Config::parse(&format!(
        "data: {}\nlisten: {addr}\ntls: {{enabled: false}}\n{yaml}",
        data.display()
    ))
    .unwrap();
    let server = kaudit_server::start(cfg, Arc::new(|m: &str| eprintln!("server: {m}")))
        .await
        .unwrap();
    let t = Instant::now();
    while !server.ready() {
        assert!(t.elapsed() < Duration::from_secs(20), "not ready in 20 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (server, addr)
}

/// The answer to one request.
pub struct Answer {
    pub status: u16,
    pub retry_after: bool,
    pub body: String,
}

/// One request on its own connection (`GET` when `body` is empty). A connection the server
/// closes early still yields its answer; a connection refused gives status 0.
pub fn request(addr: &str, path: &str, token: Option<&str>, body: &[u8]) -> Answer {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return Answer {
            status: 0,
            retry_after: false,
            body: String::new(),
        };
    };
    let method = if body.is_empty() { "GET" } else { "POST" };
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    Answer {
        status: out
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse().ok())
            .unwrap_or(0),
        retry_after: out.to_ascii_lowercase().contains("\r\nretry-after:"),
        body: out.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
    }
}

/// An `EventList` body of `items`.
pub fn event_list(items: &[String]) -> Vec<u8> {
    format!(
        "{{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{{}},\"items\":[{}]}}\n",
        items.join(",")
    )
    .into_bytes()
}
