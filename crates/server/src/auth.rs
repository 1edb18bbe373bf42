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

/// The tokens a configured cluster may present: its `token` and its `token_file`'s (either,
/// both or neither). The first is the one `kaudit setup` prints.
pub fn tokens_of(c: &Client) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = c.token.iter().cloned().collect();
    if let Some(f) = &c.token_file {
        out.push(token_file(f)?);
    }
    Ok(out)
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
        for t in tokens_of(c)? {
            // One token, one cluster: a shared token would file one cluster's events under
            // the other's name.
            if let Some(other) = tokens.insert(t, c.name.clone())
                && other != c.name
            {
                return Err(format!(
                    "clusters {other:?} and {:?} present the same token: each cluster needs its own",
                    c.name
                ));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_may_present_its_token_and_its_token_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("prod.token");
        std::fs::write(&file, "from-the-file-token\nignored second line\n").unwrap();
        let cfg = Config::parse(&format!(
            "data: {d}\nclusters:\n  - name: prod\n    token: inline-token-1\n    token_file: {f}\n  - name: dev\n    token_file: {f}\n  - name: certs\n    client_cn: kube-apiserver-certs\n",
            d = dir.path().display(),
            f = file.display()
        ))
        .unwrap();
        let prod = &cfg.clusters[0];
        assert_eq!(
            tokens_of(prod).unwrap(),
            ["inline-token-1", "from-the-file-token"]
        );
        assert!(tokens_of(&cfg.clusters[2]).unwrap().is_empty());
        // The same token for two clusters is refused: whose events would they be?
        let e = credentials(&cfg).unwrap_err();
        assert!(
            e.contains("\"prod\" and \"dev\"") && e.contains("same token"),
            "{e}"
        );
        let mut cfg = cfg;
        cfg.clusters.remove(1);
        let (tokens, cns) = credentials(&cfg).unwrap();
        assert_eq!(tokens["inline-token-1"], "prod");
        assert_eq!(tokens["from-the-file-token"], "prod");
        assert_eq!(cns["kube-apiserver-certs"], "certs");
        assert!(
            !cns.contains_key(tls::CLIENT_CN),
            "no generated CN with clusters configured"
        );

        std::fs::write(&file, "short\n").unwrap();
        let e = credentials(&cfg).unwrap_err();
        assert!(e.contains("prod.token") && e.contains("at least 8"), "{e}");
    }

    #[test]
    fn without_clusters_the_generated_credentials_are_the_default_clusters() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::parse(&format!("data: {}\n", dir.path().display())).unwrap();
        let (tokens, cns) = credentials(&cfg).unwrap();
        assert!(tokens.is_empty(), "nothing generated yet");
        assert_eq!(cns[tls::CLIENT_CN], "default");
        tls::ensure_generated(dir.path(), &[]).unwrap();
        let t = generated_token(dir.path()).unwrap().unwrap();
        assert!(t.len() >= 32, "{t}");
        assert_eq!(credentials(&cfg).unwrap().0[&t], "default");
    }
}
