//! `kaudit gen`: realistic Kubernetes audit traffic from a fake cluster, deterministic for a
//! seed.
//!
//! The cluster has nodes, namespaces with deployments and pods, control-plane components,
//! service accounts and people. Each simulated request is what that actor does in a real
//! cluster, with the weights of real traffic: kubelets renewing leases and reading their node
//! (the bulk of any audit log), controllers watching and updating, CoreDNS and kube-proxy
//! watching, health probes, people running kubectl (get, list, logs, exec, port-forward,
//! secret reads, RBAC changes, impersonation), CI service accounts applying and patching
//! (some as dry-runs, some with JSON-patch bodies), failed logins (401: a lone
//! ResponseStarted event with `"user":{}`) and denied requests (403).
//!
//! A real audit [`Evaluator`] decides each request's level and stages, exactly as
//! kube-apiserver would; events carry the bodies their level calls for and are written in
//! stage-time order (a long exec session's ResponseComplete comes minutes after its
//! ResponseStarted), in kube-apiserver's byte format, as audit.log lines or EventList batches.

mod traffic;

use std::collections::BinaryHeap;
use std::io::{self, Write};

use kaudit_model::encode;
use kaudit_model::{
    Event, Level, MicroTime, ObjectReference, ResponseStatus, Stage, Text, UserInfo,
};
use kaudit_policy::{Attributes, Evaluator, User};
use rand_pcg::Pcg64Mcg;
use rand_pcg::rand_core::SeedableRng;
use serde_json::value::RawValue;

pub use traffic::Cluster;

/// Output shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One event per line, as the log backend writes `audit.log`.
    Lines,
    /// `EventList` bodies of up to this many events, one per line, as the webhook backend
    /// POSTs them.
    EventList(usize),
}

/// What to generate.
pub struct Config {
    /// How many events to write.
    pub events: u64,
    /// When the traffic starts.
    pub start: MicroTime,
    /// How long it lasts, in microseconds.
    pub span_micros: i64,
    /// The seed: the same seed and config give the same bytes.
    pub seed: u64,
    /// Worker nodes.
    pub nodes: u32,
    /// Output shape.
    pub format: Format,
    /// The policy deciding levels and stages.
    pub policy: Evaluator,
}

impl Config {
    /// audit.log lines recorded with the built-in `recipe` policy (`kaudit gen`'s default):
    /// the traffic tests and benchmarks generate.
    pub fn recipe(
        events: u64,
        start: MicroTime,
        span_micros: i64,
        seed: u64,
        nodes: u32,
    ) -> Config {
        let p = kaudit_policy::load(
            kaudit_policy::profiles::profile("recipe")
                .expect("the recipe profile is built in")
                .text,
            &kaudit_policy::LoadOptions::default(),
        );
        Config {
            events,
            start,
            span_micros,
            seed,
            nodes,
            format: Format::Lines,
            policy: Evaluator::new(&p.policy, kaudit_policy::K8sVersion::DEFAULT)
                .expect("the recipe profile is valid"),
        }
    }
}

/// What was generated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Simulated API requests (including those the policy does not record).
    pub requests: u64,
    /// Events written.
    pub events: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// One API request as the fake cluster makes it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Request {
    pub verb: &'static str,
    pub uri: String,
    pub user: Option<Identity>,
    pub impersonated: Option<Identity>,
    pub source_ip: String,
    pub user_agent: String,
    pub object: Option<Obj>,
    pub code: i32,
    /// (status, reason, message) when the answer is a Status.
    pub status: Option<(&'static str, &'static str, String)>,
    pub request_body: Option<String>,
    pub response_body: Option<String>,
    /// Response body with metadata.managedFields, when the object has them.
    pub response_body_managed: Option<String>,
    pub long_running: bool,
    pub duration_micros: i64,
    /// Authorization annotations: (decision, reason).
    pub authz: Option<(&'static str, String)>,
    pub annotations: Vec<(String, String)>,
}

impl Request {
    /// The object the API answers with, without and with `metadata.managedFields`.
    pub(crate) fn respond(&mut self, plain: String, managed: String) {
        self.response_body = Some(plain);
        self.response_body_managed = Some(managed);
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Identity {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Obj {
    pub resource: &'static str,
    pub namespace: String,
    pub name: String,
    pub api_group: &'static str,
    pub api_version: &'static str,
    pub subresource: &'static str,
    pub uid: String,
    pub resource_version: String,
}

/// A small random source over PCG (stable output for a seed across releases).
pub(crate) struct Rng(Pcg64Mcg);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(Pcg64Mcg::seed_from_u64(seed))
    }
    pub fn u64(&mut self) -> u64 {
        rand_pcg::rand_core::Rng::next_u64(&mut self.0)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.u64() as u128 * n as u128) >> 64) as u64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// An index chosen by weight.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|w| *w as u64).sum();
        let mut x = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if x < *w as u64 {
                return i;
            }
            x -= *w as u64;
        }
        weights.len() - 1
    }
    /// A random (version 4) UUID, as kube-apiserver makes audit IDs.
    pub fn uuid(&mut self) -> String {
        let a = self.u64();
        let b = self.u64();
        let a = (a & 0xffff_ffff_ffff_0fff) | 0x4000;
        let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }
    /// Lower-case alphanumerics, as in generated pod names.
    pub fn suffix(&mut self, n: usize) -> String {
        const A: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..n)
            .map(|_| A[self.below(A.len() as u64) as usize] as char)
            .collect()
    }
}

/// An event waiting for its stage time.
struct Pending {
    at: i64,
    seq: u64,
    bytes: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq)) // min-heap
    }
}

struct Writer<'w, W: Write> {
    out: &'w mut W,
    limit: u64,
    format: Format,
    batch: Vec<u8>,
    in_batch: usize,
    summary: Summary,
}

impl<W: Write> Writer<'_, W> {
    fn event(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.summary.events >= self.limit {
            return Ok(()); // the log ends here, as a real one does, mid-request for some
        }
        self.summary.events += 1;
        match self.format {
            Format::Lines => {
                self.out.write_all(bytes)?;
                self.out.write_all(b"\n")?;
                self.summary.bytes += bytes.len() as u64 + 1;
            }
            Format::EventList(n) => {
                if self.in_batch > 0 {
                    self.batch.push(b',');
                }
                self.batch.extend_from_slice(bytes);
                self.in_batch += 1;
                if self.in_batch >= n {
                    self.flush_batch()?;
                }
            }
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> io::Result<()> {
        if self.in_batch == 0 {
            return Ok(());
        }
        let head = b"{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{},\"items\":[";
        self.out.write_all(head)?;
        self.out.write_all(&self.batch)?;
        self.out.write_all(b"]}\n")?;
        self.summary.bytes += (head.len() + self.batch.len() + 3) as u64;
        self.batch.clear();
        self.in_batch = 0;
        Ok(())
    }
}

/// Writes the traffic `cfg` describes to `out`.
pub fn generate<W: Write>(cfg: &Config, out: &mut W) -> io::Result<Summary> {
    let mut rng = Rng::new(cfg.seed);
    let mut cluster = Cluster::new(&mut rng, cfg.nodes.max(1));
    let mut w = Writer {
        out,
        limit: cfg.events,
        format: cfg.format,
        batch: Vec::new(),
        in_batch: 0,
        summary: Summary::default(),
    };
    let mut heap: BinaryHeap<Pending> = BinaryHeap::new();
    let mut seq = 0u64;
    // The clock follows the events produced, so the traffic fills the span evenly.
    let step = cfg.span_micros.max(1) as f64 / cfg.events.max(1) as f64;
    let mut produced = 0u64;
    let mut last_now = cfg.start.0;
    let mut buf = Vec::with_capacity(4096);
    let mut emitted = 0u64;
    while emitted + (heap.len() as u64) < cfg.events {
        let jitter = rng.below(step.max(1.0) as u64) as i64;
        let now = (cfg.start.0 + (produced as f64 * step) as i64 + jitter).max(last_now);
        last_now = now;
        while heap.peek().is_some_and(|p| p.at <= now) {
            let p = heap.pop().unwrap();
            w.event(&p.bytes)?;
            emitted += 1;
        }
        cluster.set_now(now);
        let req = cluster.next_request(&mut rng);
        w.summary.requests += 1;
        produced += emit(
            &req,
            now,
            &cfg.policy,
            &mut rng,
            cfg.format,
            &mut buf,
            |at, bytes| {
                seq += 1;
                heap.push(Pending { at, seq, bytes });
            },
        ) as u64;
    }
    while let Some(p) = heap.pop() {
        w.event(&p.bytes)?;
    }
    w.flush_batch()?;
    w.out.flush()?;
    Ok(w.summary)
}

fn user_info(id: &Identity) -> UserInfo<'_> {
    UserInfo {
        username: Text::borrowed(&id.name),
        uid: Text::borrowed(&id.uid),
        groups: id.groups.iter().map(|g| Text::borrowed(g)).collect(),
        extra: Default::default(),
    }
}

/// Encodes the events of one request (the stages its decision records) and hands each to
/// `push` with its stage time. Returns how many.
fn emit(
    req: &Request,
    received: i64,
    policy: &Evaluator,
    rng: &mut Rng,
    format: Format,
    buf: &mut Vec<u8>,
    mut push: impl FnMut(i64, Vec<u8>),
) -> usize {
    let groups: Vec<Text<'_>> = req
        .user
        .as_ref()
        .map(|u| u.groups.iter().map(|g| Text::borrowed(g)).collect())
        .unwrap_or_default();
    let mut attrs: Attributes<'_> = kaudit_policy::attrs::from_uri(&req.uri, req.verb);
    attrs.user = req.user.as_ref().map(|u| User {
        name: &u.name,
        groups: &groups,
    });
    let d = policy.evaluate(&attrs);
    if d.level == Level::None {
        return 0;
    }
    let audit_id = rng.uuid();
    let source_ips = [Text::borrowed(&req.source_ip)];
    let req_body = req
        .request_body
        .as_deref()
        .and_then(|b| RawValue::from_string(b.to_string()).ok());
    let resp_src = if d.omit_managed_fields {
        req.response_body.as_deref()
    } else {
        req.response_body_managed
            .as_deref()
            .or(req.response_body.as_deref())
    };
    let resp_body = resp_src.and_then(|b| RawValue::from_string(b.to_string()).ok());
    let details = req
        .status
        .as_ref()
        .filter(|s| s.1 == "NotFound" || s.1 == "AlreadyExists" || s.1 == "Conflict")
        .and_then(|_| {
            req.object.as_ref().map(|o| {
                RawValue::from_string(format!(
                    "{{\"name\":{},\"kind\":\"{}\"}}",
                    serde_json::to_string(&o.name).unwrap(),
                    o.resource
                ))
                .unwrap()
            })
        });
    let object_ref = req.object.as_ref().map(|o| ObjectReference {
        resource: Text::borrowed(o.resource),
        namespace: Text::borrowed(&o.namespace),
        name: Text::borrowed(&o.name),
        uid: Text::borrowed(&o.uid),
        api_group: Text::borrowed(o.api_group),
        api_version: Text::borrowed(o.api_version),
        resource_version: Text::borrowed(&o.resource_version),
        subresource: Text::borrowed(o.subresource),
    });
    let status = || ResponseStatus {
        status: Text::borrowed(req.status.as_ref().map_or("", |s| s.0)),
        message: Text::borrowed(req.status.as_ref().map_or("", |s| s.2.as_str())),
        reason: Text::borrowed(req.status.as_ref().map_or("", |s| s.1)),
        details: details.as_deref(),
        code: req.code,
    };
    let mut ev = Event::default();
    ev.level = Some(d.level);
    ev.audit_id = Text::borrowed(&audit_id);
    ev.request_uri = Text::borrowed(&req.uri);
    ev.verb = Text::borrowed(req.verb);
    ev.user = req.user.as_ref().map(user_info).unwrap_or_default();
    ev.source_ips = source_ips.to_vec();
    ev.user_agent = Text::borrowed(&req.user_agent);
    ev.object_ref = object_ref;
    ev.request_received_timestamp = Some(MicroTime(received));
    let top = format == Format::Lines;
    let mut n = 0;
    let mut write = |ev: &Event<'_>, at: i64, buf: &mut Vec<u8>| {
        buf.clear();
        encode::write_event(buf, ev, encode::V1, top);
        push(at, buf.clone());
        n += 1;
    };
    if req.user.is_none() {
        // Failed authentication: one ResponseStarted event, no user.
        if d.records(Stage::ResponseStarted) {
            ev.stage = Some(Stage::ResponseStarted);
            ev.response_status = Some(status());
            ev.stage_timestamp = Some(MicroTime(received + 80 + rng.below(400) as i64));
            write(&ev, ev.stage_timestamp.unwrap().0, buf);
        }
        return n;
    }
    if d.records(Stage::RequestReceived) {
        ev.stage = Some(Stage::RequestReceived);
        ev.stage_timestamp = ev.request_received_timestamp;
        write(&ev, received, buf);
    }
    // After authorization.
    ev.impersonated_user = req.impersonated.as_ref().map(user_info);
    let mut ann: Vec<(Text<'_>, Text<'_>)> = Vec::new();
    if let Some((dec, reason)) = &req.authz {
        ann.push((
            Text::borrowed("authorization.k8s.io/decision"),
            Text::borrowed(dec),
        ));
        ann.push((
            Text::borrowed("authorization.k8s.io/reason"),
            Text::borrowed(reason),
        ));
    }
    for (k, v) in &req.annotations {
        ann.push((Text::borrowed(k), Text::borrowed(v)));
    }
    ev.annotations = kaudit_model::Annotations(ann);
    ev.response_status = Some(status());
    if d.level >= Level::Request {
        ev.request_object = req_body.as_deref();
    }
    let mut t = received;
    if req.long_running {
        t += 2_000 + rng.below(20_000) as i64;
        if d.records(Stage::ResponseStarted) {
            ev.stage = Some(Stage::ResponseStarted);
            ev.stage_timestamp = Some(MicroTime(t));
            write(&ev, t, buf);
        }
    }
    if d.records(Stage::ResponseComplete) {
        t = received + req.duration_micros.max(t - received + 100);
        ev.stage = Some(Stage::ResponseComplete);
        ev.stage_timestamp = Some(MicroTime(t));
        if d.level == Level::RequestResponse {
            ev.response_object = resp_body.as_deref();
        }
        write(&ev, t, buf);
    }
    n
}
