//! What the server's plain-HTTP tests share: starting a server in this process on a free
//! loopback port (the client and webhook bodies come from `kaudit_testkit`).

#![allow(dead_code, unused_imports)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use kaudit_server::{Config, Server};

/// Starts a server (plain HTTP on a free loopback port) with `yaml` after the `data`, `listen`
/// and `tls` lines, and waits until it is ready. Returns it and its address.
pub async fn start(data: &std::path::Path, yaml: &str) -> (Server, String) {
    let addr = format!("127.0.0.1:{}", kaudit_testkit::free_port());
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

pub use kaudit_testkit::{event_list, request};
