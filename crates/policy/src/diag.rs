//! Diagnostics: problems found in a policy file, with where they are.

use std::fmt;

use crate::yaml::Pos;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Probably not what was meant.
    Warning,
    /// kube-apiserver refuses the policy, or a rule is dead.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A problem found while loading or validating a policy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// How bad.
    pub severity: Severity,
    /// A stable code, such as `unknown-field`.
    pub code: &'static str,
    /// The field path, such as `rules[3].resources[0].verbs` (empty for the whole file).
    pub path: String,
    /// Where in the file.
    #[serde(skip)]
    pub pos: Option<Pos>,
    /// What is wrong, and what kube-apiserver does about it.
    pub message: String,
}

impl Diagnostic {
    /// `file:line:col: severity: path: message`.
    pub fn render(&self, file: &str) -> String {
        let at = match self.pos {
            Some(p) => format!("{file}:{}:{}", p.line, p.col),
            None => file.to_string(),
        };
        if self.path.is_empty() {
            format!("{at}: {}: {}", self.severity, self.message)
        } else {
            format!("{at}: {}: {}: {}", self.severity, self.path, self.message)
        }
    }
}
