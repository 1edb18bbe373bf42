//! Which kube-apiserver release to behave like.

use std::fmt;
use std::str::FromStr;

/// A Kubernetes minor release (`1.28`). Loading and matching differ between releases in a
/// few places (see [`K8sVersion::DEFAULT`] and the accessors); everything else is the same
/// from 1.12 on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct K8sVersion {
    /// The minor number: 28 for 1.28.
    pub minor: u32,
}

impl K8sVersion {
    /// kube-apiserver 1.28, the default.
    pub const DEFAULT: K8sVersion = K8sVersion { minor: 28 };
    /// The newest behaviour this crate knows (1.36: `group: "*"`).
    pub const LATEST: K8sVersion = K8sVersion { minor: 36 };

    /// `group: "*"` in resource rules means every group (1.36+); before, it fails validation.
    pub fn group_wildcard(self) -> bool {
        self.minor >= 36
    }
    /// `omitManagedFields` exists (1.23+); before, it is an unknown field.
    pub fn omit_managed_fields(self) -> bool {
        self.minor >= 23
    }
    /// `audit.k8s.io/v1beta1` and `v1alpha1` policies still load (up to 1.23).
    pub fn beta_policies(self) -> bool {
        self.minor <= 23
    }
    /// Unknown fields are reported (strict decoding first, then lenient: 1.26+); before, they
    /// were dropped silently.
    pub fn strict_decoding(self) -> bool {
        self.minor >= 26
    }
}

impl Default for K8sVersion {
    fn default() -> Self {
        K8sVersion::DEFAULT
    }
}

impl fmt::Display for K8sVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1.{}", self.minor)
    }
}

impl FromStr for K8sVersion {
    type Err = String;
    /// Accepts `1.28`, `v1.28`, `1.28.3`.
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().trim_start_matches('v');
        let mut parts = t.split('.');
        let bad = || format!("invalid Kubernetes version {s:?}: expected a release such as 1.28");
        let major: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let minor: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        if let Some(p) = parts.next() {
            p.split(['-', '+'])
                .next()
                .and_then(|p| p.parse::<u32>().ok())
                .ok_or_else(bad)?;
        }
        if major != 1 || !(12..=99).contains(&minor) {
            return Err(format!(
                "unsupported Kubernetes version {s:?}: audit.k8s.io/v1 policies exist from 1.12"
            ));
        }
        Ok(K8sVersion { minor })
    }
}
