//! What kaudit's tests and benchmarks share. A dev-dependency only, with no dependencies of
//! its own: every crate's tests can use it without building more.
//!
//! - [`expect`]: golden files (an expected output beside each input); `KAUDIT_BLESS=1`
//!   rewrites them.
//! - [`event_list`]: a webhook body (`EventList`) around audit events.
//! - [`crate_dir`]: the tested crate's directory, found when the test runs.
//! - [`free_port`], [`Serve`] (a `kaudit serve` process, ready, stopped when dropped) and
//!   [`request`] (a one-shot HTTP/1.1 client) for tests that talk to a server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The directory of the crate whose test is running. Cargo sets `CARGO_MANIFEST_DIR` for the
/// test process, and that is what this returns, so a test binary built from one checkout and
/// run from another (both sharing one `CARGO_TARGET_DIR`, where cargo does not rebuild it)
/// reads the files of the checkout it runs in. `compiled` is the caller's
/// `env!("CARGO_MANIFEST_DIR")`, used when the binary runs outside cargo.
pub fn crate_dir(compiled: &'static str) -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(compiled))
}

/// The environment variable that makes [`expect`] write what it got instead of comparing.
pub const BLESS: &str = "KAUDIT_BLESS";

/// Compares `got` with the file at `expected`: equal, or the test fails naming the file. With
/// `KAUDIT_BLESS=1` in the environment the file is (re)written instead. A missing file is a
/// failure (an input without its expectation is not tested).
pub fn expect(expected: &Path, got: &str) {
    if std::env::var_os(BLESS).is_some() {
        std::fs::write(expected, got).unwrap_or_else(|e| panic!("{}: {e}", expected.display()));
        return;
    }
    let want = std::fs::read_to_string(expected).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with {BLESS}=1 to write it, then review it)",
            expected.display()
        )
    });
    if got != want {
        let line = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| got.lines().count().min(want.lines().count()));
        panic!(
            "{} differs from what the test got, first at line {}:\n  got:  {}\n  want: {}\n\
             (run with {BLESS}=1 to accept the new output, then review the diff)",
            expected.display(),
            line + 1,
            got.lines().nth(line).unwrap_or("<end>"),
            want.lines().nth(line).unwrap_or("<end>"),
        );
    }
}

/// The test inputs in `dir`: its files (not subdirectories) except the `*.expected` ones,
/// sorted. The test fails if there are none, so a moved or emptied folder of test data cannot
/// pass silently.
pub fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "expected"))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{}: no test inputs", dir.display());
    out
}

/// The expected-output file beside an input: `<input>.expected`.
pub fn expected_of(input: &Path) -> PathBuf {
    let mut p = input.as_os_str().to_owned();
    p.push(".expected");
    PathBuf::from(p)
}

/// A webhook body: an `audit.k8s.io/v1` `EventList` holding `items` (each one event's JSON),
/// as kube-apiserver sends it.
pub fn event_list<S: AsRef<str>>(items: &[S]) -> Vec<u8> {
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!(
        "{{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{{}},\"items\":[{}]}}\n",
        items.join(",")
    )
    .into_bytes()
}

/// A loopback port nobody listens on (just now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a loopback port")
        .port()
}

/// The answer to one [`request`].
#[derive(Debug)]
pub struct Answer {
    /// 0 when the connection was refused or closed before a status line.
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Answer {
    /// Whether it says when to come back (`Retry-After`).
    pub fn retry_after(&self) -> bool {
        self.headers
            .to_ascii_lowercase()
            .contains("\r\nretry-after:")
    }
}

/// One HTTP/1.1 request on its own connection to `addr` (`host:port`): `GET` when `body` is
/// empty, else `POST` of JSON; with a bearer `token` if given. A server that answers and
/// closes before the body is all sent still yields its answer; a refused connection gives
/// status 0.
pub fn request(addr: &str, path: &str, token: Option<&str>, body: &[u8]) -> Answer {
    let none = Answer {
        status: 0,
        headers: String::new(),
        body: String::new(),
    };
    let Ok(mut s) = TcpStream::connect(addr) else {
        return none;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let method = if body.is_empty() { "GET" } else { "POST" };
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(body))
        .is_err()
    {
        return none;
    }
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp);
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Answer {
        status: headers
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        headers: headers.to_string(),
        body: body.to_string(),
    }
}

/// A `kaudit serve` process (the binary at `exe`, with the configuration file `config`),
/// stopped with SIGKILL when dropped unless [`Serve::stop`] stopped it first.
pub struct Serve {
    child: Option<Child>,
}

impl Serve {
    /// Starts it; its output goes to `stderr` (inherited when `None`, so a failing test shows
    /// the server's log).
    pub fn start(exe: &Path, config: &Path, stderr: Option<Stdio>) -> Serve {
        let child = Command::new(exe)
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(stderr.unwrap_or_else(Stdio::inherit))
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
        Serve { child: Some(child) }
    }

    /// Waits until `GET /readyz` on `addr` (plain HTTP) says 200, at most `within`.
    pub fn wait_ready(&mut self, addr: &str, within: Duration) {
        let t = Instant::now();
        loop {
            if request(addr, "/readyz", None, b"").status == 200 {
                return;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("kaudit serve exited before it was ready: {st}");
            }
            assert!(t.elapsed() < within, "kaudit serve not ready in {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The child process (for its stderr, or to wait on it).
    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("running")
    }

    /// SIGTERM (a graceful stop: in-flight batches drained, the store closed), then waits for
    /// the exit, at most `within` (then SIGKILL). Returns how it exited (`None`: killed) and
    /// what it wrote to a piped stderr.
    pub fn stop(mut self, within: Duration) -> Stopped {
        let mut c = self.child.take().expect("running");
        // Read while it shuts down, so a full pipe never holds it up.
        let reader = c.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = e.read_to_string(&mut s);
                s
            })
        });
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let t = Instant::now();
        let mut status = None;
        while status.is_none() && t.elapsed() < within {
            status = c.try_wait().ok().flatten();
            std::thread::sleep(Duration::from_millis(20));
        }
        if status.is_none() {
            let _ = c.kill();
        }
        let _ = c.wait();
        Stopped {
            status,
            stderr: reader
                .map(|r| r.join().unwrap_or_default())
                .unwrap_or_default(),
        }
    }

    /// SIGKILL now (a crash), and reaps it.
    pub fn kill(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// How a [`Serve`] ended.
#[derive(Debug)]
pub struct Stopped {
    /// Its exit status; `None` when it had to be killed.
    pub status: Option<std::process::ExitStatus>,
    /// What it wrote to stderr, when that was piped.
    pub stderr: String,
}

impl Stopped {
    /// Whether it exited by itself, successfully.
    pub fn clean(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
