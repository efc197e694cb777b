//! deploy/stasis-agent.yaml parses into the Kubernetes API's own types
//! (k8s-openapi), with nothing unknown, and grants what the agent uses.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::Deserialize;

const MANIFEST: &str = include_str!("../../../deploy/stasis-agent.yaml");

/// Every document, as JSON values and by kind.
fn documents() -> Vec<serde_json::Value> {
    serde_yaml_ng::Deserializer::from_str(MANIFEST)
        .map(|doc| serde_json::Value::deserialize(doc).expect("a YAML document"))
        .collect()
}

fn one<T: serde::de::DeserializeOwned + serde::Serialize>(kind: &str) -> T {
    let docs: Vec<_> = documents()
        .into_iter()
        .filter(|d| d["kind"] == kind)
        .collect();
    assert_eq!(docs.len(), 1, "one {kind}");
    let typed: T =
        serde_json::from_value(docs[0].clone()).unwrap_or_else(|e| panic!("{kind}: {e}"));
    // Nothing in the file that the type does not know (a misspelt field
    // would be dropped silently by the API server's decoder too).
    let back = serde_json::to_value(&typed).expect("serialize");
    assert_same(&docs[0], &back, kind);
    typed
}

fn assert_same(written: &serde_json::Value, typed: &serde_json::Value, at: &str) {
    match (written, typed) {
        (serde_json::Value::Object(w), serde_json::Value::Object(t)) => {
            for (k, v) in w {
                let other = t
                    .get(k)
                    .unwrap_or_else(|| panic!("{at}.{k} is not a field of the type"));
                assert_same(v, other, &format!("{at}.{k}"));
            }
        }
        (serde_json::Value::Array(w), serde_json::Value::Array(t)) => {
            assert_eq!(w.len(), t.len(), "{at}");
            for (i, (a, b)) in w.iter().zip(t).enumerate() {
                assert_same(a, b, &format!("{at}[{i}]"));
            }
        }
        (w, t) => assert_eq!(w, t, "{at}"),
    }
}

#[test]
fn the_manifest_is_kubernetes_objects_that_fit_together() {
    let kinds: Vec<String> = documents()
        .iter()
        .map(|d| d["kind"].as_str().expect("kind").to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "DaemonSet"
        ]
    );
    let ns: Namespace = one("Namespace");
    let sa: ServiceAccount = one("ServiceAccount");
    let role: ClusterRole = one("ClusterRole");
    let binding: ClusterRoleBinding = one("ClusterRoleBinding");
    let ds: DaemonSet = one("DaemonSet");
    let ns_name = ns.metadata.name.expect("a namespace name");
    assert_eq!(sa.metadata.namespace.as_ref(), Some(&ns_name));
    assert_eq!(ds.metadata.namespace.as_ref(), Some(&ns_name));

    // RBAC: pods get/list/watch/patch, events create (and patch, for a series).
    let grants = |group: &str, resource: &str, verb: &str| {
        role.rules.iter().flatten().any(|r| {
            r.api_groups.iter().flatten().any(|g| g == group)
                && r.resources.iter().flatten().any(|x| x == resource)
                && r.verbs.iter().any(|v| v == verb)
        })
    };
    for verb in ["get", "list", "watch", "patch"] {
        assert!(grants("", "pods", verb), "pods {verb}");
    }
    assert!(grants("events.k8s.io", "events", "create"));
    assert!(grants("events.k8s.io", "events", "patch"));
    assert!(!grants("", "pods", "delete"));
    assert_eq!(
        binding.role_ref.name,
        role.metadata.name.clone().expect("name")
    );
    let subject = &binding.subjects.as_ref().expect("subjects")[0];
    assert_eq!(
        (subject.kind.as_str(), Some(&subject.name)),
        ("ServiceAccount", sa.metadata.name.as_ref())
    );
    assert_eq!(subject.namespace.as_ref(), Some(&ns_name));

    // The DaemonSet: host PIDs, privileged, the node's name, the cgroup tree.
    let spec = ds.spec;
    let labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .expect("labels");
    for (k, v) in spec.selector.match_labels.expect("matchLabels") {
        assert_eq!(
            labels.get(&k),
            Some(&v),
            "the selector matches the template"
        );
    }
    let pod = spec.template.spec.expect("pod spec");
    assert_eq!(pod.host_pid, Some(true));
    assert_eq!(pod.service_account_name, sa.metadata.name);
    let c = &pod.containers[0];
    assert_eq!(
        c.security_context.as_ref().and_then(|s| s.privileged),
        Some(true)
    );
    let node = c
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "NODE_NAME")
        .expect("NODE_NAME");
    let field = node
        .value_from
        .as_ref()
        .and_then(|v| v.field_ref.as_ref())
        .expect("fieldRef");
    assert_eq!(field.field_path, "spec.nodeName");
    let mounts = c.volume_mounts.as_ref().expect("mounts");
    let volumes = pod.volumes.as_ref().expect("volumes");
    for mount in mounts {
        let volume = volumes
            .iter()
            .find(|v| v.name == mount.name)
            .expect("a volume for each mount");
        let host = volume.host_path.as_ref().expect("a hostPath");
        assert_eq!(host.path, mount.mount_path, "mounted where the host has it");
    }
    assert!(mounts
        .iter()
        .any(|m| m.mount_path == "/sys/fs/cgroup" && m.read_only != Some(true)));
}
