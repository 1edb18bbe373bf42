//! AKS: `kube-audit` and `kube-audit-admin` diagnostic records (Event Hub `{"records":[…]}`
//! bodies, storage-account `PT1H.json` lines).

use std::ops::ControlFlow;

use super::{At, Cloud, Cut, Obj, Sink, json_type};
use crate::Text;
use crate::decode::ErrorKind;

/// What a non-audit AKS diagnostic category holds.
fn category_kind(category: &str) -> &'static str {
    match category {
        "guard" => "Entra ID / Azure RBAC authorization decisions",
        "kube-apiserver"
        | "kube-controller-manager"
        | "kube-scheduler"
        | "cluster-autoscaler"
        | "cloud-controller-manager" => "a control-plane component log (klog text)",
        c if c.starts_with("csi-") => "a CSI driver log (klog text)",
        _ => "not an audit category",
    }
}

impl Cloud<'_> {
    pub(super) fn aks(&mut self, v: &str, at: At, f: &mut Sink<'_>) -> ControlFlow<()> {
        let Some(o) = Obj::parse(v) else {
            return self.skip(
                at,
                ErrorKind::NotAnEvent,
                format!("{} is not an AKS diagnostic record", json_type(v)),
                f,
            );
        };
        if o.is_k8s() {
            return self.embedded(v, at, Cut::None, "", f);
        }
        if let Some(records) = o.get("records") {
            // An Event Hub body.
            return self.list(records, "records", at, f, |d, r, at, f| {
                d.aks_record(r, at, f)
            });
        }
        self.aks_record(v, at, f)
    }

    /// One record: `{category, operationName, properties:{log, pod, …}, resourceId, time}`.
    fn aks_record(&mut self, v: &str, at: At, f: &mut Sink<'_>) -> ControlFlow<()> {
        let Some(o) = Obj::parse(v) else {
            return self.skip(
                at,
                ErrorKind::NotAnEvent,
                format!("{} is not an AKS diagnostic record", json_type(v)),
                f,
            );
        };
        if o.is_k8s() {
            return self.embedded(v, at, Cut::None, "", f);
        }
        let category = match o.str("category") {
            Ok(Some(c)) => c,
            Ok(None) if o.has("properties") => {
                return self.skip(at, ErrorKind::InvalidField, "category: missing".into(), f);
            }
            Ok(None) => {
                return self.skip(
                    at,
                    ErrorKind::NotAnEvent,
                    format!(
                        "not an AKS diagnostic record (no category; keys: {})",
                        o.keys()
                    ),
                    f,
                );
            }
            Err(m) => return self.skip(at, ErrorKind::InvalidField, m, f),
        };
        if category != "kube-audit" && category != "kube-audit-admin" {
            return self.skip(
                at,
                ErrorKind::NotAnEvent,
                format!(
                    "AKS diagnostic record of category {:?}: {}, not kube-audit or kube-audit-admin",
                    category.as_str(),
                    category_kind(&category)
                ),
                f,
            );
        }
        let Some(props) = o.get("properties") else {
            return self.skip(at, ErrorKind::InvalidField, "properties: missing".into(), f);
        };
        let Some(props) = Obj::parse(props.get()) else {
            return self.skip(
                at,
                ErrorKind::InvalidField,
                format!(
                    "properties: expected an object, found {}",
                    json_type(props.get())
                ),
                f,
            );
        };
        let Some(log) = props.get("log") else {
            return self.skip(
                at,
                ErrorKind::InvalidField,
                "properties.log: missing".into(),
                f,
            );
        };
        let log = log.get();
        if log.starts_with('{') {
            // Already an object (some exports parse it).
            return self.embedded(log, at, Cut::None, "properties.log", f);
        }
        match serde_json::from_str::<Text<'_>>(log) {
            Ok(text) => self.embedded(&text, at, Cut::Aks, "properties.log", f),
            Err(_) => self.skip(
                at,
                ErrorKind::InvalidField,
                format!(
                    "properties.log: expected a JSON string or object, found {}",
                    json_type(log)
                ),
                f,
            ),
        }
    }
}
