//! `kubectl stasis`'s resolution of targets to pods, and its requests,
//! against the fake API server (kube's mock client) holding real objects.

mod common;

use agent::plugin;
use agent::resolve::{self, Kind, Selection};
use common::{pod, Fake};
use kube::ResourceExt;
use serde_json::json;

fn workload(kind: &str, name: &str, uid: &str, owner: Option<(&str, &str)>) -> serde_json::Value {
    let mut meta = json!({"name": name, "namespace": "shop", "uid": uid});
    if let Some((okind, ouid)) = owner {
        meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": okind, "name": "x", "uid": ouid, "controller": true}]);
    }
    let api = if kind == "Job" { "batch/v1" } else { "apps/v1" };
    let spec = match kind {
        "Job" => json!({"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}),
        _ => json!({"selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}),
    };
    let mut spec = spec;
    if kind == "StatefulSet" {
        spec["serviceName"] = json!(name);
    }
    json!({"apiVersion": api, "kind": kind, "metadata": meta, "spec": spec})
}

/// A namespace with a deployment (two ReplicaSets, the old one still with
/// a pod), a StatefulSet, a DaemonSet, a Job, a bare pod, and a pod whose
/// non-controller reference names the deployment's ReplicaSet.
fn shop() -> Fake {
    let fake = Fake::new();
    fake.add(workload("Deployment", "web", "d-web", None));
    fake.add(workload(
        "ReplicaSet",
        "web-new",
        "rs-new",
        Some(("Deployment", "d-web")),
    ));
    fake.add(workload(
        "ReplicaSet",
        "web-old",
        "rs-old",
        Some(("Deployment", "d-web")),
    ));
    fake.add(workload(
        "ReplicaSet",
        "other",
        "rs-other",
        Some(("Deployment", "d-other")),
    ));
    fake.add(workload("StatefulSet", "db", "s-db", None));
    fake.add(workload("DaemonSet", "logs", "ds-logs", None));
    fake.add(workload("Job", "batch", "j-batch", None));
    let app = |a: &str| json!({"app": a});
    fake.add(pod(
        "shop",
        "web-new-1",
        "u1",
        app("web"),
        Some(("ReplicaSet", "web-new", "rs-new")),
    ));
    fake.add(pod(
        "shop",
        "web-new-2",
        "u2",
        app("web"),
        Some(("ReplicaSet", "web-new", "rs-new")),
    ));
    fake.add(pod(
        "shop",
        "web-old-1",
        "u3",
        app("web"),
        Some(("ReplicaSet", "web-old", "rs-old")),
    ));
    fake.add(pod(
        "shop",
        "other-1",
        "u4",
        app("other"),
        Some(("ReplicaSet", "other", "rs-other")),
    ));
    fake.add(pod(
        "shop",
        "db-0",
        "u5",
        app("db"),
        Some(("StatefulSet", "db", "s-db")),
    ));
    fake.add(pod(
        "shop",
        "logs-a",
        "u6",
        app("logs"),
        Some(("DaemonSet", "logs", "ds-logs")),
    ));
    fake.add(pod(
        "shop",
        "batch-x",
        "u7",
        app("batch"),
        Some(("Job", "batch", "j-batch")),
    ));
    fake.add(pod("shop", "bare", "u8", app("web"), None));
    let mut adopted = pod("shop", "adopted", "u9", app("web"), None);
    adopted["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-new", "uid": "rs-new", "controller": false}]);
    fake.add(adopted);
    fake.add(pod(
        "elsewhere",
        "web-new-9",
        "u10",
        app("web"),
        Some(("ReplicaSet", "web-new", "rs-new")),
    ));
    fake
}

async fn names(fake: &Fake, target: &str) -> Vec<String> {
    let selection = Selection::parse(target).expect("a target");
    resolve::pods(&fake.client(), "shop", &selection)
        .await
        .unwrap_or_else(|e| panic!("{target}: {e:#}"))
        .iter()
        .map(|p| p.name_any())
        .collect()
}

#[tokio::test]
async fn workloads_resolve_to_their_pods_through_owner_references() {
    let fake = shop();
    assert_eq!(
        names(&fake, "deployment/web").await,
        ["web-new-1", "web-new-2", "web-old-1"]
    );
    assert_eq!(names(&fake, "rs/web-new").await, ["web-new-1", "web-new-2"]);
    assert_eq!(names(&fake, "statefulset/db").await, ["db-0"]);
    assert_eq!(names(&fake, "ds/logs").await, ["logs-a"]);
    assert_eq!(names(&fake, "job/batch").await, ["batch-x"]);
    assert_eq!(names(&fake, "pod/bare").await, ["bare"]);
    let by_label = resolve::pods(&fake.client(), "shop", &Selection::Labels("app=web".into()))
        .await
        .expect("a label selection");
    let by_label: Vec<String> = by_label.iter().map(|p| p.name_any()).collect();
    assert_eq!(
        by_label,
        ["adopted", "bare", "web-new-1", "web-new-2", "web-old-1"]
    );
    let requests = fake.lock().requests.clone();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /api/v1/namespaces/shop/pods?")
                && r.contains("labelSelector=app%3Dweb")),
        "{requests:?}"
    );
}

#[tokio::test]
async fn a_missing_workload_is_a_not_found_error_naming_it() {
    let fake = shop();
    let client = fake.client();
    for target in [
        "deployment/nope",
        "pod/nope",
        "statefulset/nope",
        "job/nope",
    ] {
        let err = resolve::pods(&client, "shop", &Selection::parse(target).expect("parse"))
            .await
            .expect_err(target);
        assert!(err.is_not_found(), "{target}: {err:#}");
        assert!(err.to_string().contains("shop/nope"), "{err}");
    }
    assert_eq!(Kind::Deployment.as_str(), "Deployment");
}

#[tokio::test]
async fn a_pause_request_patches_the_annotations_the_agent_reads() {
    let fake = shop();
    let client = fake.client();
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client, "shop");
    fake.edit("pods", "shop", "db-0", |p| {
        p["metadata"]["annotations"] =
            json!({"stasis.dev/state": "failed", "stasis.dev/message": "old"});
    });
    let patch = plugin::pause_patch(Some(std::time::Duration::from_secs(90)), true);
    let patched = api
        .patch(
            "db-0",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(patch.to_json()),
        )
        .await
        .expect("patch");
    // The old answer is gone, so the plugin waits for a new one.
    assert_eq!(plugin::answer(&patched, true), None);
    assert_eq!(
        fake.annotation("shop", "db-0", "stasis.dev/pause")
            .as_deref(),
        Some("true")
    );
    assert_eq!(
        fake.annotation("shop", "db-0", "stasis.dev/lease")
            .as_deref(),
        Some("90s")
    );
    assert_eq!(
        fake.annotation("shop", "db-0", "stasis.dev/reset-connections")
            .as_deref(),
        Some("true")
    );
    assert_eq!(fake.annotation("shop", "db-0", "stasis.dev/state"), None);
    let view = agent::annotations::View::of(patched.metadata.annotations.as_ref());
    assert!(matches!(
        view.request,
        agent::annotations::Request::Pause {
            lease: Some(_),
            reset_connections: true
        }
    ));
    let unpatched = api
        .patch(
            "db-0",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(plugin::unpause_patch().to_json()),
        )
        .await
        .expect("patch");
    assert_eq!(
        plugin::answer(&unpatched, false),
        Some(plugin::Answer::Done)
    );
    assert!(
        unpatched.annotations().is_empty(),
        "{:?}",
        unpatched.annotations()
    );
}
