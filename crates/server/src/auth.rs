//! Who may send events: each configured cluster's bearer token and client certificate name,
//! and (with no clusters configured) the credentials generated on first start, for the
//! cluster `default`. The one place tokens are read: `kaudit serve` checks them and
//! `kaudit setup` prints them.

use std::collections::HashMap;
use std::path::Path;

use crate::config::{Client, Config};
use crate::tls;

/// Bearer token -> cluster, and client certificate CN -> cluster.
pub type Credentials = (HashMap<String, String>, HashMap<String, String>);

/// The shortest token taken (a shorter one is guessable).
const MIN_TOKEN: usize = 8;

/// The token in a token file: its first line, trimmed.
pub fn token_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let t = text.lines().next().unwrap_or("").trim().to_string();
    if t.len() < MIN_TOKEN {
        return Err(format!(
            "{}: the token must be at least {MIN_TOKEN} characters",
            path.display()
        ));
    }
    Ok(t)
}

/// The token a configured cluster presents (its `token`, else its `token_file`'s), if it
/// authenticates with one.
pub fn token_of(c: &Client) -> Result<Option<String>, String> {
    match (&c.token, &c.token_file) {
        (Some(t), _) => Ok(Some(t.clone())),
        (None, Some(f)) => token_file(f).map(Some),
        (None, None) => Ok(None),
    }
}

/// The token generated on first start in `<data>/tls/` (the cluster `default`'s when no
/// clusters are configured), if there is one.
pub fn generated_token(data: &Path) -> Result<Option<String>, String> {
    let p = tls::Generated::new(data).token();
    if !p.exists() {
        return Ok(None);
    }
    token_file(&p).map(Some)
}

/// The credentials webhook senders present.
pub fn credentials(cfg: &Config) -> Result<Credentials, String> {
    let mut tokens = HashMap::new();
    let mut cns = HashMap::new();
    for c in &cfg.clusters {
        if let Some(t) = token_of(c)? {
            tokens.insert(t, c.name.clone());
        }
        if let Some(cn) = &c.client_cn {
            cns.insert(cn.clone(), c.name.clone());
        }
    }
    if cfg.clusters.is_empty() {
        if let Some(t) = generated_token(&cfg.data)? {
            tokens.insert(t, "default".into());
        }
        cns.insert(tls::CLIENT_CN.to_string(), "default".into());
    }
    Ok((tokens, cns))
}
