//! Ready-made policies (`kaudit policy init --profile NAME`).

/// A built-in policy.
pub struct Profile {
    /// The name users give to `--profile`.
    pub name: &'static str,
    /// One line about it.
    pub summary: &'static str,
    /// The policy file.
    pub text: &'static str,
    /// Lint findings above info that the profile has on purpose, with the reason.
    pub accepted_findings: &'static [(&'static str, &'static str)],
}

/// Every built-in profile.
pub const PROFILES: &[Profile] = &[
    Profile {
        name: "recipe",
        summary: "the widely used recipe: Metadata by default, bodies for secrets, configmaps, RBAC, token reviews, exec and node/namespace writes, no noise",
        text: include_str!("../profiles/recipe.yaml"),
        accepted_findings: &[(
            "secret-values-logged",
            "the recipe records secrets at RequestResponse, as published; the hardened profile does not",
        )],
    },
    Profile {
        name: "hardened",
        summary: "everything an investigation needs, never a secret value or credential in the log",
        text: include_str!("../profiles/hardened.yaml"),
        accepted_findings: &[],
    },
    Profile {
        name: "gce",
        summary: "the kube-up/GCE reference policy (configure-helper.sh), which GKE follows",
        text: include_str!("../profiles/gce.yaml"),
        accepted_findings: &[],
    },
    Profile {
        name: "openshift-default",
        summary: "OpenShift's Default profile: Metadata, plus bodies for identity and OAuth token writes",
        text: include_str!("../profiles/openshift-default.yaml"),
        accepted_findings: &[],
    },
    Profile {
        name: "openshift-write-request-bodies",
        summary: "OpenShift's WriteRequestBodies profile: bodies for every write, except sensitive resources",
        text: include_str!("../profiles/openshift-write-request-bodies.yaml"),
        accepted_findings: &[(
            "unknown-field",
            "OpenShift renders the machineconfiguration entry with a misspelled \"resource:\" key; reproduced as shipped",
        )],
    },
    Profile {
        name: "openshift-all-request-bodies",
        summary: "OpenShift's AllRequestBodies profile: bodies for every request, except sensitive resources",
        text: include_str!("../profiles/openshift-all-request-bodies.yaml"),
        accepted_findings: &[(
            "unknown-field",
            "OpenShift renders the machineconfiguration entry with a misspelled \"resource:\" key; reproduced as shipped",
        )],
    },
];

/// The profile called `name`.
pub fn profile(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{K8sVersion, LoadOptions, Severity, lint, load};

    #[test]
    fn every_profile_loads_and_lints_clean_or_says_why() {
        for version in [K8sVersion::DEFAULT, K8sVersion::LATEST] {
            for p in PROFILES {
                let loaded = load(p.text, &LoadOptions { version });
                assert!(loaded.is_valid(), "{}: {:?}", p.name, loaded.diagnostics);
                for f in lint::lint(&loaded, version) {
                    if f.severity > Severity::Info {
                        assert!(
                            p.accepted_findings.iter().any(|(code, _)| *code == f.code),
                            "profile {} @{version}: unexpected {} {}: {}",
                            p.name,
                            f.severity,
                            f.code,
                            f.message
                        );
                    }
                }
            }
        }
    }
}
