//! Load on `kaudit serve` from a generator on loopback: sustained events/s with durable acks,
//! ack latency of 400-event batches (p50, p99), and the server's peak RSS.
//!
//! `cargo bench -p kaudit --bench serve_load [-- SECONDS CONNECTIONS [tls]]` (defaults 20 s,
//! 8, plain HTTP). The server runs as its own process (the release `kaudit serve`), HTTP/1.1
//! with keep-alive; with `tls`, HTTPS with the generated CA and a bearer token, as
//! kube-apiserver connects. Default store settings, plus any YAML given in `LOAD_CONFIG`
//! (e.g. `detect: {enabled: false}` to compare ingestion without live detection). Live
//! detection's progress is read from `/metrics`: events evaluated during the run, and how
//! long it took after the load stopped to evaluate the rest. `KAUDIT=path` drives another
//! `kaudit` binary (an older build, to compare on the same day).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request on a keep-alive connection: the status, or `None` if the connection broke.
fn exchange<S: Read + Write>(r: &mut BufReader<S>, body: &[u8]) -> Option<u16> {
    let head = format!(
        "POST /audit?timeout=30s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer load-token\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let s = r.get_mut();
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    s.flush().ok()?;
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut len = 0;
    let mut close = false;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        if h == "\r\n" || h.is_empty() {
            break;
        }
        let h = h.to_ascii_lowercase();
        if let Some(v) = h.strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
        if h.starts_with("connection: close") {
            close = true;
        }
    }
    let mut b = vec![0; len];
    r.read_exact(&mut b).ok()?;
    // A refusal that closes the connection: reconnect before the retry.
    if close && status != 200 {
        return None;
    }
    Some(status)
}

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let secs: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(20);
    let conns: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(8);
    // `tls` as third argument: HTTPS with the generated CA, as kube-apiserver connects.
    let tls = args.get(2).is_some_and(|a| a == "tls");
    // KAUDIT=path times another build of `kaudit serve` (an older one, to compare).
    let exe_owned = std::env::var("KAUDIT").unwrap_or_else(|_| env!("CARGO_BIN_EXE_kaudit").into());
    let exe = exe_owned.as_str();
    let dir = std::env::temp_dir().join(format!("kaudit-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bodies = corpus(exe, &dir);
    let addr = format!("127.0.0.1:{}", kaudit_testkit::free_port());
    let cfg = dir.join("kaudit.yaml");
    std::fs::write(
        &cfg,
        format!(
            "data: {}\nlisten: {addr}\ntls: {{enabled: {tls}}}\nclusters:\n  - name: load\n    token: load-token\n{}",
            dir.join("data").display(),
            // Extra settings to compare (e.g. "store: {seal_rows: 200000}").
            std::env::var("LOAD_CONFIG").unwrap_or_default()
        ),
    )
    .unwrap();
    let mut server = Command::new(exe)
        .args(["serve", "--config"])
        .arg(&cfg)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = server.id();
    let t0 = Instant::now();
    while TcpStream::connect(&addr).is_err() || (tls && !dir.join("data/tls/ca.pem").exists()) {
        assert!(t0.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    let client_cfg = tls.then(|| {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(dir.join("data/tls/ca.pem")).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    });
    let connect = {
        let addr = addr.clone();
        let client_cfg = client_cfg.clone();
        move || -> BufReader<Box<dyn ReadWrite>> {
            let s = TcpStream::connect(&addr).unwrap();
            s.set_nodelay(true).unwrap();
            let s: Box<dyn ReadWrite> = match &client_cfg {
                Some(c) => Box::new(rustls::StreamOwned::new(
                    rustls::ClientConnection::new(c.clone(), "localhost".try_into().unwrap())
                        .unwrap(),
                    s,
                )),
                None => Box::new(s),
            };
            BufReader::new(s)
        }
    };
    // Ready: the store is open.
    let t0 = Instant::now();
    loop {
        let mut r = connect();
        let s = r.get_mut();
        let _ = s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let _ = s.flush();
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        if line.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }

    let (bodies, load) = drive(bodies, conns, secs, &connect);
    let (evaluated, caught_up) = detection(&connect);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = server.wait();
    let mut l = load.latencies;
    l.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| {
        l.get(((l.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0.0)
            * 1000.0
    };
    let n = load.acked;
    let bytes: usize = bodies.iter().take(n as usize / 400).map(|b| b.len()).sum();
    let elapsed = load.elapsed;
    println!(
        "serve load ({}): {conns} connections, {elapsed:.1} s: {n} events acknowledged durably, {:.0} events/s ({:.0} MB/s of JSON); \
         400-event batch ack p50 {:.1} ms, p99 {:.1} ms; {} refused (429/503); server peak RSS {hwm}",
        if tls { "HTTPS" } else { "HTTP" },
        n as f64 / elapsed,
        bytes as f64 / elapsed / 1e6,
        pct(0.5),
        pct(0.99),
        load.refused,
    );
    match (evaluated, caught_up) {
        (Some(e), Some(c)) => println!(
            "  live detection: {e:.0} of {n} events evaluated while the load ran ({:.0}%), all of them {c:.1} s after it stopped",
            100.0 * e / n.max(1) as f64
        ),
        (Some(e), None) => {
            println!("  live detection: {e:.0} of {n} evaluated; not caught up in 300 s")
        }
        _ => println!("  live detection: off"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `kaudit gen` traffic in webhook bodies of 400 events: enough distinct events that nothing
/// repeats during the run.
fn corpus(exe: &str, dir: &std::path::Path) -> Vec<Vec<u8>> {
    let n_events = 4_000_000u64;
    let log = dir.join("audit.log");
    eprintln!("generating {n_events} events...");
    let st = Command::new(exe)
        .args([
            "gen",
            "-n",
            &n_events.to_string(),
            "--seed",
            "3",
            "--span",
            "24h",
            "--out",
        ])
        .arg(&log)
        .status()
        .unwrap();
    assert!(st.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let bodies: Vec<Vec<u8>> = text
        .lines()
        .collect::<Vec<_>>()
        .chunks(400)
        .map(kaudit_testkit::event_list)
        .collect();
    drop(text);
    let _ = std::fs::remove_file(&log);
    bodies
}

/// What the load did.
struct Load {
    acked: u64,
    refused: u64,
    /// Seconds from sending a batch to its 200.
    latencies: Vec<f64>,
    elapsed: f64,
}

/// `conns` connections each sending the next body as soon as the previous one is answered,
/// for `secs` seconds or until every body was sent; refusals are retried after 100 ms.
fn drive(
    bodies: Vec<Vec<u8>>,
    conns: usize,
    secs: u64,
    connect: &(impl Fn() -> BufReader<Box<dyn ReadWrite>> + Clone + Send + 'static),
) -> (Arc<Vec<Vec<u8>>>, Load) {
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(Vec::<f64>::new()));
    let mut threads = Vec::new();
    let start = Instant::now();
    for _ in 0..conns {
        let (bodies, next, stop, acked, refused, lat, connect) = (
            bodies.clone(),
            next.clone(),
            stop.clone(),
            acked.clone(),
            refused.clone(),
            lat.clone(),
            connect.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let mut r = connect();
            let mut mine = Vec::new();
            let mut i = next.fetch_add(1, Ordering::Relaxed) as usize;
            while !stop.load(Ordering::Relaxed) {
                let Some(body) = bodies.get(i) else { break };
                let t = Instant::now();
                // A refusal sent before the body is read closes the connection (as HTTP
                // allows); kube-apiserver's client reconnects and retries, and so does this.
                match exchange(&mut r, body) {
                    Some(200) => {
                        acked.fetch_add(400, Ordering::Relaxed);
                        mine.push(t.elapsed().as_secs_f64());
                        i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    }
                    status => {
                        refused.fetch_add(1, Ordering::Relaxed);
                        if status.is_none() {
                            r = connect();
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
            lat.lock().unwrap().extend(mine);
        }));
    }
    // Until the time is up or every event was sent.
    while start.elapsed() < Duration::from_secs(secs) && !threads.iter().all(|t| t.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let latencies = lat.lock().unwrap().clone();
    let load = Load {
        acked: acked.load(Ordering::Relaxed),
        refused: refused.load(Ordering::Relaxed),
        latencies,
        elapsed,
    };
    (bodies, load)
}

/// Live detection: how many events it had evaluated when the load stopped (`None`: off), and
/// how long after that it caught up.
fn detection(connect: &impl Fn() -> BufReader<Box<dyn ReadWrite>>) -> (Option<f64>, Option<f64>) {
    let metric = |name: &str| -> Option<f64> {
        let mut r = connect();
        let s = r.get_mut();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .ok()?;
        s.flush().ok()?;
        let mut body = String::new();
        r.read_to_string(&mut body).ok()?;
        body.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    let evaluated = metric("kaudit_detect_rules")
        .filter(|r| *r > 0.0)
        .and_then(|_| metric("kaudit_detect_events_total"));
    let t_load_end = Instant::now();
    let mut caught_up = None;
    if evaluated.is_some() {
        while t_load_end.elapsed() < Duration::from_secs(300) {
            if metric("kaudit_detect_lag_events") == Some(0.0) {
                caught_up = Some(t_load_end.elapsed().as_secs_f64());
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    (evaluated, caught_up)
}
