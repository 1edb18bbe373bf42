//! Kubernetes audit policies, exactly as kube-apiserver reads and applies them.
//!
//! - [`load`]: read a policy file as kube-apiserver does at start-up (strict, then lenient
//!   decoding; apiVersion/kind; validation; rule count), reporting *every* problem as a
//!   [`Diagnostic`] with its field path and line:column.
//! - [`Evaluator::evaluate`]: the level, omitted stages and omitManagedFields for a request's
//!   [`Attributes`], and which rule decided ([`Decision`]). [`Attributes::from_event`] recovers
//!   the attributes from a recorded event as kube-apiserver computed them.
//!
//! Semantics follow kube-apiserver 1.28 by default; [`K8sVersion`] selects another release
//! where behaviour differs (`group: "*"` from 1.36, `omitManagedFields` from 1.23, v1beta1
//! policies up to 1.23). The upstream sources are `pkg/audit/policy/{reader,checker}.go`,
//! `pkg/apis/audit/validation/validation.go` and `pkg/endpoints/request/requestinfo.go` of
//! `k8s.io/apiserver`; deviations are listed in `docs/policy-fidelity.md`.
//!
//! ```
//! use kaudit_policy::{load, LoadOptions, Evaluator, Attributes, attrs};
//! use kaudit_model::Level;
//! let text = r#"
//! apiVersion: audit.k8s.io/v1
//! kind: Policy
//! omitStages: [RequestReceived]
//! rules:
//!   - level: None
//!     nonResourceURLs: ["/healthz*"]
//!   - level: RequestResponse
//!     resources: [{group: "", resources: [pods/exec]}]
//!   - level: Metadata
//! "#;
//! let loaded = load(text, &LoadOptions::default());
//! assert!(loaded.is_valid());
//! let ev = Evaluator::new(&loaded.policy, Default::default()).unwrap();
//! let d = ev.evaluate(&attrs::from_uri("/api/v1/namespaces/prod/pods/web-0/exec?command=sh", "create"));
//! assert_eq!((d.level, d.rule), (Level::RequestResponse, Some(1)));
//! let d = ev.evaluate(&attrs::from_uri("/healthz/etcd", "get"));
//! assert_eq!((d.level, d.rule), (Level::None, Some(0)));
//! ```

pub mod attrs;
mod diag;
mod eval;
pub mod lint;
mod load;
mod policy;
pub mod profiles;
pub mod replay;
mod validate;
mod version;
pub mod yaml;

pub use attrs::{Attributes, User};
pub use diag::{Diagnostic, Severity};
pub use eval::{Decision, Evaluator};
pub use load::{LoadOptions, Loaded, load};
pub use policy::{GroupResources, Policy, PolicyRule, Positions};
pub use version::K8sVersion;
