//! Live detection in `kaudit serve`: every stored event is evaluated; alerts are stored,
//! queryable over the API, delivered to sinks (a file, syslog over UDP) and counted in the
//! metrics; after a restart nothing is delivered twice, and after losing the detector's
//! saved position (a crash before it was saved) the alerts raised again are not stored twice.

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{event_list, request, start};

fn exec(id: &str, user: &str, cmd: &str) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{id}","stage":"ResponseStarted","requestURI":"/api/v1/namespaces/default/pods/web/exec?command={cmd}&container=app&stdin=true&tty=true","verb":"create","user":{{"username":"{user}","groups":["devs"]}},"sourceIPs":["10.0.0.9"],"objectRef":{{"resource":"pods","subresource":"exec","namespace":"default","name":"web","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":101}},"requestReceivedTimestamp":"2026-03-01T10:00:00.000000Z","stageTimestamp":"2026-03-01T10:00:00.100000Z"}}"#
    )
}

fn quiet(id: &str) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{id}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/configmaps","verb":"list","user":{{"username":"system:serviceaccount:kube-system:ctrl","groups":["system:serviceaccounts"]}},"sourceIPs":["10.0.0.3"],"objectRef":{{"resource":"configmaps","namespace":"default","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":200}},"requestReceivedTimestamp":"2026-03-01T10:00:00.000000Z","stageTimestamp":"2026-03-01T10:00:00.010000Z"}}"#
    )
}

fn lines(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(30), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn metric(addr: &str, name: &str) -> f64 {
    let m = request(addr, "/metrics", None, b"").body;
    m.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_detection_stores_queries_and_delivers_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = tmp.path().join("alerts.jsonl");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let yaml = format!(
        "clusters:\n  - name: prod\n    token: sender-token\ndetect:\n  save_every: 100ms\n  throttle: {{window: 0s}}\n  sinks:\n    - name: file\n      type: file\n      path: {}\n    - name: syslog\n      type: syslog\n      address: udp://{}\n      rules: [\"k8s.exec.*\"]\n",
        out.display(),
        udp.local_addr().unwrap()
    );
    let (server, addr) = start(&data, &yaml).await;
    let a = addr.clone();
    let o = out.clone();
    let u = udp.try_clone().unwrap();
    tokio::task::spawn_blocking(move || {
        let body = event_list(&[quiet("q1"), exec("x1", "jane", "bash"), quiet("q2")]);
        assert_eq!(
            request(&a, "/audit", Some("sender-token"), &body).status,
            200
        );
        wait_for("the file sink", || !lines(&o).is_empty());
        let got = lines(&o);
        assert!(got.iter().all(|l| l["auditID"] == "x1"), "{got:?}");
        assert!(got.iter().any(|l| l["rule"] == "k8s.exec.pod"), "{got:?}");
        assert_eq!(got[0]["cluster"], "prod");
        let mut buf = [0u8; 65536];
        let n = u.recv(&mut buf).unwrap();
        let msg = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(msg.contains("rule=\"k8s.exec."), "{msg}");
        // Queryable.
        let r = request(&a, "/api/v1/alerts?rule=k8s.exec.pod", None, b"");
        assert_eq!(r.status, 200, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["total"], 1);
        assert_eq!(v["alerts"][0]["user"], "jane");
        let r = request(&a, "/api/v1/alerts?min_severity=urgent", None, b"");
        assert_eq!(r.status, 400, "{}", r.body);
        // Counted.
        wait_for("metrics", || {
            metric(&a, "kaudit_detect_events_total") >= 3.0
        });
        assert!(metric(&a, "kaudit_alerts_total") >= 1.0);
        wait_for("deliveries metric", || {
            metric(&a, "kaudit_alert_deliveries_total{sink=\"file\"}") >= 1.0
        });
        wait_for("no lag", || metric(&a, "kaudit_detect_lag_events") == 0.0);
    })
    .await
    .unwrap();
    server.shutdown().await.unwrap();
    let delivered = lines(&out).len();

    // Restarted: nothing again; a new exec is delivered.
    let (server, addr) = start(&data, &yaml).await;
    let a = addr.clone();
    let o = out.clone();
    tokio::task::spawn_blocking(move || {
        let body = event_list(&[exec("x2", "bob", "sh")]);
        assert_eq!(
            request(&a, "/audit", Some("sender-token"), &body).status,
            200
        );
        wait_for("the new alert", || {
            lines(&o).iter().any(|l| l["auditID"] == "x2")
        });
        std::thread::sleep(Duration::from_millis(300));
        let got = lines(&o);
        let x1 = got.iter().filter(|l| l["auditID"] == "x1").count();
        assert_eq!(x1, delivered, "x1's alerts were not delivered again");
    })
    .await
    .unwrap();
    server.shutdown().await.unwrap();

    // The detector's position lost (as if it crashed before saving): every event is
    // evaluated again, and the alerts raised again are recognised, not stored twice.
    let saved = data.join("alerts/detector.json");
    let mut s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(s["next"], 4);
    // Back to the beginning with the state of a detector that has seen nothing.
    s["next"] = 0.into();
    s["engine"] = serde_json::json!({"latest": 0, "open": [], "rules": []});
    std::fs::write(&saved, s.to_string()).unwrap();
    let before = lines(&out).len();
    let (server, addr) = start(&data, &yaml).await;
    let a = addr.clone();
    tokio::task::spawn_blocking(move || {
        wait_for("re-evaluation", || {
            metric(&a, "kaudit_detect_events_total") >= 4.0
        });
        assert!(metric(&a, "kaudit_alerts_deduplicated_total") >= 2.0);
        assert_eq!(metric(&a, "kaudit_alerts_total"), 0.0);
    })
    .await
    .unwrap();
    server.shutdown().await.unwrap();
    assert_eq!(lines(&out).len(), before);
    // And the CLI's view agrees with the log.
    let found = kaudit_alerts::query::run(&data.join("alerts"), &Default::default()).unwrap();
    assert_eq!(found.total as usize, found.alerts.len());
    assert_eq!(found.total as usize, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_detect_configuration_is_refused_before_listening() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = kaudit_server::Config::parse(&format!(
        "data: {}\nlisten: 127.0.0.1:0\ntls: {{enabled: false}}\ndetect:\n  enable: [k8s.nope]\n",
        tmp.path().display()
    ))
    .unwrap();
    let e = match kaudit_server::start(cfg, std::sync::Arc::new(|_: &str| {})).await {
        Ok(_) => panic!("started"),
        Err(e) => e,
    };
    assert!(e.contains("detect.enable") && e.contains("k8s.nope"), "{e}");
    // A damaged saved position is named, not silently replaced.
    std::fs::create_dir_all(tmp.path().join("alerts")).unwrap();
    std::fs::write(tmp.path().join("alerts/detector.json"), "{\"next\": ").unwrap();
    let cfg = kaudit_server::Config::parse(&format!(
        "data: {}\nlisten: 127.0.0.1:0\ntls: {{enabled: false}}\n",
        tmp.path().display()
    ))
    .unwrap();
    let e = match kaudit_server::start(cfg, std::sync::Arc::new(|_: &str| {})).await {
        Ok(_) => panic!("started"),
        Err(e) => e,
    };
    assert!(e.contains("detector.json"), "{e}");
    let e = kaudit_server::Config::parse(
        "detect:\n  sinks:\n    - name: s\n      type: syslog\n      address: 10.0.0.1\n",
    )
    .unwrap_err();
    assert!(e.contains("detect.sinks[0] (s).address"), "{e}");
}
