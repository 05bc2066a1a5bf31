//! The record of enabled add-ons: ConfigMap `skiff-addons` in kube-system.
//!
//! It lives in the cluster, not on the machine that ran `enable`, so
//! `skiff addons list --cluster` is right from any machine, after restarts,
//! and after the cluster was changed by someone else's skiff.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::Result;

use super::kubectl::Kubectl;
use super::render::MANAGED_BY;
use super::values::Values;

pub const NAME: &str = "skiff-addons";
pub const NAMESPACE: &str = "kube-system";
/// Selects the record. It deliberately lacks `skiff.dev/addon`, so pruning
/// an add-on never deletes the record of the others.
const RECORD_LABEL: (&str, &str) = ("skiff.dev/record", "addons");

/// One enabled add-on, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Every value in effect, defaults included.
    pub values: Values,
    /// Upstream version installed.
    pub version: String,
    /// The skiff that enabled it.
    pub skiff_version: String,
}

/// Enabled add-ons by name.
pub type Record = BTreeMap<String, Entry>;

/// Reads the record; none yet means nothing is enabled.
pub async fn read(kubectl: &Kubectl<'_>) -> Result<Record> {
    let selector = format!("{}={}", RECORD_LABEL.0, RECORD_LABEL.1);
    let items = kubectl
        .list("configmaps", Some(NAMESPACE), Some(&selector))
        .await?;
    Ok(items
        .iter()
        .find(|cm| cm["metadata"]["name"] == NAME)
        .map(parse)
        .unwrap_or_default())
}

/// The entries of a record ConfigMap; unreadable entries (a newer skiff's?)
/// are skipped rather than failing every add-on command.
pub fn parse(configmap: &Value) -> Record {
    configmap["data"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, text)| {
            let entry = serde_json::from_str(text.as_str()?).ok()?;
            Some((name.clone(), entry))
        })
        .collect()
}

/// The ConfigMap holding `record`.
pub fn configmap(record: &Record) -> Value {
    let data: serde_json::Map<String, Value> = record
        .iter()
        .map(|(name, entry)| {
            (
                name.clone(),
                Value::String(serde_json::to_string(entry).expect("serializable")),
            )
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "labels": { MANAGED_BY.0: MANAGED_BY.1, RECORD_LABEL.0: RECORD_LABEL.1 },
        },
        "data": data,
    })
}

/// Writes the whole record, so a disabled add-on's key disappears. A
/// client-side apply (three-way merge against the last written record)
/// removes it whatever the API server's server-side-apply bookkeeping says;
/// only skiff writes this object, so there is nothing to merge with.
pub async fn write(kubectl: &Kubectl<'_>, record: &Record) -> Result<()> {
    let yaml = serde_norway::to_string(&configmap(record)).expect("serializable");
    kubectl
        .apply_replacing("record the enabled add-ons", &yaml)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_through_the_configmap() {
        let mut record = Record::new();
        record.insert(
            "dns".into(),
            Entry {
                values: Values::from([("replicas".to_string(), json!(3))]),
                version: "v1.13.1".into(),
                skiff_version: "0.1.0".into(),
            },
        );
        let cm = configmap(&record);
        assert_eq!(cm["metadata"]["labels"]["skiff.dev/record"], "addons");
        assert!(cm["metadata"]["labels"].get("skiff.dev/addon").is_none());
        assert_eq!(parse(&cm), record);
        let mut broken = cm.clone();
        broken["data"]["other"] = json!("not json");
        assert_eq!(parse(&broken), record);
    }
}
