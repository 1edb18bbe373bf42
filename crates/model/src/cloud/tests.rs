//! The clouds' shapes against small hand-made inputs: formats, odd shapes, cut events.

use super::*;

#[test]
fn format_names_round_trip() {
    for f in Format::ALL {
        assert_eq!(f.to_string().parse::<Format>(), Ok(f));
    }
    assert_eq!("EKS".parse::<Format>(), Ok(Format::Eks));
    assert!("cloudwatch".parse::<Format>().is_err());
}

fn run(data: &str, format: Format) -> Vec<String> {
    let mut out = vec![];
    decode_as(data.as_bytes(), format, |r| {
        out.push(match r {
            Ok(rec) => format!(
                "ok {}{} id={} raw={}",
                rec.line,
                rec.item.map(|i| format!("[{i}]")).unwrap_or_default(),
                rec.event.audit_id,
                rec.raw
            ),
            Err(e) => e.to_string(),
        });
        ControlFlow::Continue(())
    });
    out
}

const EV: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{"username":"u"},"requestReceivedTimestamp":"2026-01-02T03:04:05.000001Z","stageTimestamp":"2026-01-02T03:04:05.000002Z"}"#;

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

#[test]
fn eks_less_common_shapes() {
    let klog = r#"{"events":[{"timestamp":1,"message":"I0512 09:14:03.118204      10 handler.go:143] GET /readyz"}]}"#;
    assert_eq!(
        run(klog, Format::Eks),
        [
            r#"line 1, item 0: not an audit event: message: "I0512 09:14:03.118204      10 handler.go"… is not JSON (klog text from a non-audit stream?)"#
        ]
    );
    let gz = r#"{"awslogs":{"data":"H4sIAAAAAAAA/6tWKkktLlGyUlBKzs8rSc0rUaoFAG6sRgQVAAAA"}}"#;
    assert_eq!(
        run(gz, Format::Eks),
        [
            "line 1: not UTF-8: awslogs.data: gzip-compressed CloudWatch Logs subscription data; decode the base64 and gunzip it first (kaudit reads the decompressed JSON)"
        ]
    );
    // Firehose HTTP endpoint delivery whose records were not compressed.
    let payload = format!(
        r#"{{"messageType":"DATA_MESSAGE","logStream":"kube-apiserver-audit-1","logEvents":[{{"id":"1","timestamp":1,"message":{}}}]}}"#,
        quoted(EV)
    );
    let mut b64 = String::new();
    for chunk in payload.as_bytes().chunks(3) {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            b64.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    let firehose = format!(r#"{{"requestId":"r","timestamp":1,"records":[{{"data":"{b64}"}}]}}"#);
    assert_eq!(detect(firehose.as_bytes()), Format::Eks);
    assert_eq!(
        run(&firehose, Format::Eks),
        [format!("ok 1[0] id=a1 raw={EV}")]
    );
    // Not a string where the message should be.
    assert_eq!(
        run(
            r#"{"logStreamName":"kube-apiserver-audit-1","message":42}"#,
            Format::Eks
        ),
        ["line 1: invalid field: message: expected a string, found a number"]
    );
}

#[test]
fn gke_rewrapped_and_broken_pubsub_data() {
    let entry = r#"{"insertId":"i1","protoPayload":{"serviceName":"k8s.io","methodName":"io.k8s.core.v1.pods.list","resourceName":"core/v1/namespaces/n/pods","status":{}},"timestamp":"2026-01-02T03:04:05Z"}"#;
    // Splunk's GCP add-on: {publish_time, data:<LogEntry object>, attributes}.
    let splunk = format!(r#"{{"publish_time":1767322000.1,"data":{entry},"attributes":{{}}}}"#);
    assert_eq!(detect(splunk.as_bytes()), Format::Gke);
    let out = run(&splunk, Format::Gke);
    assert!(
        out[0].starts_with("ok 1 id=i1 raw={\"kind\":\"Event\""),
        "{out:?}"
    );
    assert_eq!(
        run(r#"{"message":{"data":"not*base64"}}"#, Format::Gke),
        ["line 1: invalid field: message.data: not base64: unexpected '*' at byte 3"]
    );
    assert_eq!(
        run(r#"{"message":{"data":"eyJpbnNlcnRJZCI6"}}"#, Format::Gke),
        [
            "line 1: truncated record: message.data: decoded data is not JSON: EOF while parsing a value"
        ]
    );
    assert_eq!(
        run(
            &entry.replace("2026-01-02T03:04:05Z", "yesterday"),
            Format::Gke
        ),
        [r#"line 1: invalid field: timestamp: "yesterday" is not an RFC 3339 time"#]
    );
    assert_eq!(
        run(
            &entry.replace(r#""status":{}"#, r#""status":{"code":"7"}"#),
            Format::Gke
        ),
        [
            "line 1: invalid field: protoPayload.status.code: invalid type: string \"7\", expected i64"
        ]
    );
}

#[test]
fn aks_bad_records() {
    assert_eq!(
        run(
            r#"{"records":[{"category":"kube-audit","properties":{"log":7}},{"category":"kube-audit","properties":{}},{"properties":{"log":"{}"}},{"time":"x"}]}"#,
            Format::Aks
        ),
        [
            "line 1, item 0: invalid field: properties.log: expected a JSON string or object, found a number",
            "line 1, item 1: invalid field: properties.log: missing",
            "line 1, item 2: invalid field: category: missing",
            "line 1, item 3: not an audit event: not an AKS diagnostic record (no category; keys: time)",
        ]
    );
    let rec = format!(
        r#"{{"category":"kube-audit-admin","properties":{{"log":{}}}}}"#,
        quoted(&EV.replace(r#""verb":"list""#, r#""verb":5"#))
    );
    assert_eq!(
        run(&rec, Format::Aks),
        [
            "line 1: invalid field: properties.log: verb: invalid type: integer `5`, expected a string"
        ]
    );
    let rec = format!(
        r#"{{"category":"kube-audit","properties":{{"log":{}}}}}"#,
        quoted("{\"kind\":\"Event\",\"auditID\" \"x\"}")
    );
    assert_eq!(
        run(&rec, Format::Aks),
        ["line 1: malformed JSON: properties.log: expected `:` (column 27 of the embedded event)"]
    );
}

#[test]
fn plain_events_pass_through_every_cloud_format() {
    for format in [Format::Eks, Format::Gke, Format::Aks] {
        assert_eq!(
            run(EV, format),
            [format!("ok 1 id=a1 raw={EV}")],
            "{format}"
        );
    }
}

#[test]
fn recovers_fields_of_cut_events() {
    let t = r#"{"kind":"Event","auditID" : "a-1","verb":"get","requestURI":"/api/v1/x?y=\"z","requestObject":{"n"#;
    assert_eq!(recovered(t), r#"auditID "a-1", verb "get""#);
    assert_eq!(recovered("{\"kind\":"), "auditID not recoverable");
}
