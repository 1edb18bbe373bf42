//! The alert log and delivery, end to end on real sockets: an HTTP receiver that fails
//! before it accepts, an unreachable one, syslog over UDP and TCP, a file; restarts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kaudit_alerts::{AlertLog, Delivery, LogReader, SinkConfig, ThrottleConfig};
use kaudit_detect::{Alert, Severity};

fn alert(i: u64, rule: &str, user: &str, severity: Severity) -> Alert {
    Alert {
        rule: rule.into(),
        title: format!("title {rule}"),
        severity,
        mitre: vec![],
        time: "2026-01-01T00:00:00Z".into(),
        micros: 0,
        message: format!("message {i}"),
        cluster: "prod".into(),
        audit_id: format!("audit-{i}"),
        stage: "ResponseComplete".into(),
        user: user.into(),
        verb: "get".into(),
        resource: "secrets".into(),
        namespace: "default".into(),
        name: format!("s{i}"),
        source_ip: "10.0.0.1".into(),
        code: Some(200),
        group: String::new(),
        count: None,
    }
}

fn quiet() -> kaudit_alerts::deliver::Log {
    Arc::new(|m: &str| eprintln!("{m}"))
}

fn no_throttle() -> ThrottleConfig {
    ThrottleConfig {
        window: Duration::ZERO,
        ..ThrottleConfig::default()
    }
}

fn sink(yaml_json: &str) -> SinkConfig {
    serde_json::from_str(yaml_json).unwrap()
}

/// An HTTP/1.1 receiver: answers the first `fail` requests with 503, then 200; records the
/// bodies it accepted.
struct Receiver {
    port: u16,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start(fail: usize) -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let b = bodies.clone();
        let seen = Arc::new(Mutex::new(0usize));
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { continue };
                let (b, seen) = (b.clone(), seen.clone());
                std::thread::spawn(move || serve(s, fail, &b, &seen));
            }
        });
        Receiver { port, bodies }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}

fn serve(s: TcpStream, fail: usize, bodies: &Mutex<Vec<String>>, seen: &Mutex<usize>) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        let n = {
            let mut n = seen.lock().unwrap();
            *n += 1;
            *n
        };
        let resp = if n <= fail {
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy".to_string()
        } else {
            bodies
                .lock()
                .unwrap()
                .push(String::from_utf8(body).unwrap());
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_string()
        };
        if w.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn seqs(bodies: &[String]) -> Vec<u64> {
    bodies
        .iter()
        .map(|b| {
            serde_json::from_str::<serde_json::Value>(b).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn log_dedups_survives_reopen_and_cuts_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = AlertLog::open(dir.path()).unwrap();
    log.set_max_file(600);
    let a: Vec<Alert> = (0..10)
        .map(|i| alert(i, "r", "u", Severity::High))
        .collect();
    assert_eq!(log.append(&a[..6], 1).unwrap().len(), 6);
    // Again, overlapping: only the new ones.
    let stored = log.append(&a[4..], 2).unwrap();
    assert_eq!(
        stored.iter().map(|s| s.seq).collect::<Vec<_>>(),
        vec![6, 7, 8, 9]
    );
    // Within one batch, a repeated alert is stored once.
    let twice = vec![
        alert(10, "r", "u", Severity::Low),
        alert(10, "r", "u", Severity::Low),
    ];
    assert_eq!(log.append(&twice, 3).unwrap().len(), 1);
    drop(log);
    let files = kaudit_alerts::log::list(&kaudit_alerts::log::log_dir(dir.path())).unwrap();
    assert!(files.len() > 1, "rotated: {files:?}");
    // A torn write at the end of the last file.
    let last = &files.last().unwrap().1;
    std::fs::OpenOptions::new()
        .append(true)
        .open(last)
        .unwrap()
        .write_all(b"{\"seq\":11,\"sto")
        .unwrap();
    let mut log = AlertLog::open(dir.path()).unwrap();
    assert_eq!(log.recovered.torn_bytes, 14);
    assert_eq!(log.next_seq(), 11);
    assert!(
        log.append(&a, 4).unwrap().is_empty(),
        "still deduplicated after reopening"
    );
    assert_eq!(
        log.append(&[alert(11, "r", "u", Severity::Low)], 5)
            .unwrap()[0]
            .seq,
        11
    );
    // A reader follows across files, from anywhere.
    let mut r = LogReader::new(dir.path(), 3);
    let mut got = Vec::new();
    loop {
        let b = r.read(2).unwrap();
        if b.is_empty() {
            break;
        }
        got.extend(b.into_iter().map(|a| a.seq));
    }
    assert_eq!(got, (3..12).collect::<Vec<_>>());
    // Not past what the writer reported durable; the rest on the next read.
    let mut r = LogReader::new(dir.path(), 0);
    let first: Vec<u64> = r
        .read_until(100, 5)
        .unwrap()
        .iter()
        .map(|a| a.seq)
        .collect();
    assert_eq!(first, vec![0, 1, 2, 3, 4]);
    assert!(r.read_until(100, 5).unwrap().is_empty());
    let rest: Vec<u64> = r
        .read_until(100, 12)
        .unwrap()
        .iter()
        .map(|a| a.seq)
        .collect();
    assert_eq!(rest, (5..12).collect::<Vec<_>>());
}

#[test]
fn a_failing_webhook_gets_every_alert_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(3);
    let sinks = vec![sink(&format!(
        r#"{{"name":"hook","type":"webhook","url":"{}","retry_min":"20ms","retry_max":"100ms"}}"#,
        rx.url()
    ))];
    let mut log = AlertLog::open(dir.path()).unwrap();
    let d = Delivery::start(dir.path(), &sinks, &no_throttle(), 0, quiet()).unwrap();
    for chunk in 0..5u64 {
        let batch: Vec<Alert> = (chunk * 4..chunk * 4 + 4)
            .map(|i| alert(i, "r", "u", Severity::High))
            .collect();
        log.append(&batch, 1).unwrap();
        d.notify.publish(log.next_seq());
    }
    wait_for("20 deliveries", 20, || rx.bodies().len() >= 20);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(seqs(&rx.bodies()), (0..20).collect::<Vec<_>>());
    let st = &d.stats[0];
    assert_eq!(st.failures.load(std::sync::atomic::Ordering::Relaxed), 3);
    wait_for("the cursor", 5, || {
        st.next.load(std::sync::atomic::Ordering::Relaxed) == 20
    });
    d.stop();
    // Restarted: nothing is sent again.
    let d = Delivery::start(dir.path(), &sinks, &no_throttle(), 20, quiet()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    d.stop();
    assert_eq!(rx.bodies().len(), 20);
}

#[test]
fn an_unreachable_sink_waits_without_holding_up_the_others() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = dir.path().join("alerts-out.jsonl");
    let sinks = |port: u16| {
        vec![
            sink(&format!(
                r#"{{"name":"siem","type":"webhook","url":"http://127.0.0.1:{port}/x","batch":true,"retry_min":"20ms","retry_max":"50ms","timeout":"1s"}}"#
            )),
            sink(&format!(
                r#"{{"name":"file","type":"file","path":{:?},"min_severity":"medium"}}"#,
                out.display().to_string()
            )),
        ]
    };
    let mut log = AlertLog::open(dir.path()).unwrap();
    let d = Delivery::start(dir.path(), &sinks(dead), &no_throttle(), 0, quiet()).unwrap();
    let batch: Vec<Alert> = (0..30)
        .map(|i| {
            let sev = if i % 3 == 0 {
                Severity::Low
            } else {
                Severity::High
            };
            alert(i, "r", "u", sev)
        })
        .collect();
    log.append(&batch, 1).unwrap();
    d.notify.publish(log.next_seq());
    // The file sink gets its 20 (the low ones are filtered) while the webhook fails.
    wait_for("the file sink", 10, || {
        std::fs::read_to_string(&out)
            .map(|s| s.lines().count())
            .unwrap_or(0)
            == 20
    });
    wait_for("failures", 10, || {
        d.stats[0]
            .failures
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3
    });
    assert_eq!(
        d.stats[0].next.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    d.stop();
    // The receiver comes up (on another port, same sink name): the backlog is delivered.
    let rx = Receiver::start(0);
    let d = Delivery::start(dir.path(), &sinks(rx.port), &no_throttle(), 30, quiet()).unwrap();
    wait_for("the backlog", 10, || {
        rx.bodies()
            .iter()
            .map(|b| {
                serde_json::from_str::<Vec<serde_json::Value>>(b)
                    .unwrap()
                    .len()
            })
            .sum::<usize>()
            == 30
    });
    d.stop();
    let first: Vec<serde_json::Value> = serde_json::from_str(&rx.bodies()[0]).unwrap();
    assert_eq!(first[0]["kind"], "alert");
    assert_eq!(first[0]["seq"], 0);
    // The file sink was not sent anything twice.
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 20);
}

#[test]
fn throttled_alerts_are_summarised() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let sinks = vec![sink(&format!(
        r#"{{"name":"f","type":"file","path":{:?},"throttle":{{"window":"1h","max":2,"by":["rule","user"]}}}}"#,
        out.display().to_string()
    ))];
    let mut log = AlertLog::open(dir.path()).unwrap();
    let d = Delivery::start(dir.path(), &sinks, &no_throttle(), 0, quiet()).unwrap();
    let hour = 3_600_000_000i64;
    let t0 = 1_700_000_000_000_000i64;
    for i in 0..10 {
        log.append(&[alert(i, "r", "jane", Severity::High)], t0 + i as i64)
            .unwrap();
    }
    // The next hour: jane's window closed; a new alert of hers comes after the summary.
    log.append(&[alert(100, "r", "jane", Severity::High)], t0 + hour + 1)
        .unwrap();
    d.notify.publish(log.next_seq());
    wait_for("deliveries", 10, || {
        std::fs::read_to_string(&out)
            .map(|s| s.lines().count())
            .unwrap_or(0)
            == 4
    });
    d.stop();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["alert", "alert", "summary", "alert"]);
    assert_eq!(lines[2]["suppressed"], 8);
    assert_eq!(lines[2]["group"], "r jane");
    assert_eq!(lines[3]["seq"], 10);
}

#[test]
fn syslog_over_udp_and_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let sinks = vec![
        sink(&format!(
            r#"{{"name":"udp","type":"syslog","address":"udp://{}","hostname":"h1"}}"#,
            udp.local_addr().unwrap()
        )),
        sink(&format!(
            r#"{{"name":"tcp","type":"syslog","address":"tcp://{}","facility":"authpriv"}}"#,
            tcp.local_addr().unwrap()
        )),
    ];
    let mut log = AlertLog::open(dir.path()).unwrap();
    let d = Delivery::start(dir.path(), &sinks, &no_throttle(), 0, quiet()).unwrap();
    log.append(
        &[
            alert(1, "k8s.a", "u", Severity::Critical),
            alert(2, "k8s.b", "u", Severity::Info),
        ],
        1,
    )
    .unwrap();
    d.notify.publish(log.next_seq());
    let mut buf = [0u8; 65536];
    let mut got = Vec::new();
    for _ in 0..2 {
        let n = udp.recv(&mut buf).unwrap();
        got.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
    assert!(got[0].starts_with("<130>1 "), "{}", got[0]); // local0.crit
    assert!(
        got[0].contains(" h1 kaudit - ALERT [kaudit@32473 rule=\"k8s.a\""),
        "{}",
        got[0]
    );
    assert!(got[1].starts_with("<134>1 "), "{}", got[1]); // local0.info
    // TCP: octet-counted frames.
    let (s, _) = tcp.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s);
    for want in ["<82>1 ", "<86>1 "] {
        let mut len = Vec::new();
        r.read_until(b' ', &mut len).unwrap();
        let n: usize = std::str::from_utf8(&len[..len.len() - 1])
            .unwrap()
            .parse()
            .unwrap();
        let mut msg = vec![0; n];
        r.read_exact(&mut msg).unwrap();
        let msg = String::from_utf8(msg).unwrap();
        assert!(msg.starts_with(want), "{msg}");
        assert!(msg.ends_with('}'), "{msg}");
    }
    d.stop();
}

#[test]
fn a_new_sink_starts_at_the_end_of_history() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.jsonl");
    let mut log = AlertLog::open(dir.path()).unwrap();
    log.append(&[alert(1, "r", "u", Severity::High)], 1)
        .unwrap();
    let sinks = vec![sink(&format!(
        r#"{{"name":"f","type":"file","path":{:?}}}"#,
        out.display().to_string()
    ))];
    let d = Delivery::start(dir.path(), &sinks, &no_throttle(), log.next_seq(), quiet()).unwrap();
    log.append(&[alert(2, "r", "u", Severity::High)], 2)
        .unwrap();
    d.notify.publish(log.next_seq());
    wait_for("one line", 10, || {
        out.exists() && std::fs::read_to_string(&out).unwrap().lines().count() == 1
    });
    d.stop();
    let line = std::fs::read_to_string(&out).unwrap();
    assert!(line.contains("\"seq\":1"), "{line}");
}
