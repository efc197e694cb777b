//! A fake API server behind kube's mock client (`tower-test`), holding real
//! objects as JSON: enough of the API for the agent and the plugin (get,
//! list with equality label selectors, JSON merge patches, event creation),
//! and a log of every request, to check what was asked.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::reconcile::{self, Context};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::events::{Recorder, Reporter};

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::Client;
use serde_json::{json, Value};

/// The objects and the requests the fake has seen.
#[derive(Debug, Default)]
pub struct Store {
    /// (resource, namespace, object)
    pub objects: Vec<(String, String, Value)>,
    pub events: Vec<Value>,
    /// "METHOD path?query"
    pub requests: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Fake(pub Arc<Mutex<Store>>);

impl Fake {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an object, filed under its kind's resource name (`pods`...).
    pub fn add(&self, object: Value) {
        let kind = object["kind"].as_str().expect("kind").to_ascii_lowercase();
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_owned();
        self.lock().objects.push((format!("{kind}s"), ns, object));
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.0.lock().expect("the fake's lock")
    }

    /// The object `resource` `name` in `ns`, as it is now.
    pub fn get(&self, resource: &str, ns: &str, name: &str) -> Option<Value> {
        self.lock()
            .objects
            .iter()
            .find(|(r, n, o)| r == resource && n == ns && o["metadata"]["name"] == name)
            .map(|(_, _, o)| o.clone())
    }

    /// Changes an object in place (a user's edit, the API server's own).
    pub fn edit(&self, resource: &str, ns: &str, name: &str, f: impl FnOnce(&mut Value)) {
        let mut store = self.lock();
        let (_, _, o) = store
            .objects
            .iter_mut()
            .find(|(r, n, o)| r == resource && n == ns && o["metadata"]["name"] == name)
            .expect("the object exists");
        f(o);
    }

    /// A pod's annotation.
    pub fn annotation(&self, ns: &str, pod: &str, key: &str) -> Option<String> {
        self.get("pods", ns, pod)?["metadata"]["annotations"][key]
            .as_str()
            .map(str::to_owned)
    }

    /// The reasons of the events recorded so far.
    pub fn event_reasons(&self) -> Vec<String> {
        self.lock()
            .events
            .iter()
            .filter_map(|e| e["reason"].as_str().map(str::to_owned))
            .collect()
    }

    /// A client whose every request this fake answers, on a task of the
    /// current runtime.
    pub fn client(&self) -> Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let fake = self.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let body = body.collect_bytes().await.expect("a request body");
                let (status, answer) = fake.serve(&parts.method, &parts.uri, &body);
                let response = Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&answer).expect("json")))
                    .expect("a response");
                send.send_response(response);
            }
        });
        Client::new(service, "default")
    }

    fn serve(&self, method: &Method, uri: &http::Uri, body: &[u8]) -> (StatusCode, Value) {
        let path = uri.path();
        let query = uri.query().unwrap_or("");
        self.lock()
            .requests
            .push(format!("{method} {path}?{query}"));
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        // /api/v1/namespaces/NS/RES[/NAME] or /apis/G/V/namespaces/NS/RES[/NAME]
        let rest = match parts.as_slice() {
            ["api", _, rest @ ..] => rest,
            ["apis", _, _, rest @ ..] => rest,
            _ => return not_found(path),
        };
        let (ns, resource, name) = match rest {
            ["namespaces", ns, res] => (*ns, *res, None),
            ["namespaces", ns, res, name] => (*ns, *res, Some(*name)),
            _ => return not_found(path),
        };
        match (method.clone(), name) {
            (Method::GET, Some(name)) => match self.get(resource, ns, name) {
                Some(o) => (StatusCode::OK, o),
                None => not_found(path),
            },
            (Method::GET, None) => {
                let selector = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("labelSelector="))
                    .map(urldecode);
                let items: Vec<Value> = self
                    .lock()
                    .objects
                    .iter()
                    .filter(|(r, n, o)| {
                        r == resource
                            && n == ns
                            && selector.as_deref().is_none_or(|s| matches_labels(o, s))
                    })
                    .map(|(_, _, o)| o.clone())
                    .collect();
                (
                    StatusCode::OK,
                    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}),
                )
            }
            (Method::PATCH, Some(name)) => {
                let patch: Value = serde_json::from_slice(body).expect("a JSON patch");
                if self.get(resource, ns, name).is_none() {
                    return not_found(path);
                }
                self.edit(resource, ns, name, |o| merge(o, &patch));
                (
                    StatusCode::OK,
                    self.get(resource, ns, name).expect("patched"),
                )
            }
            (Method::POST, None) if resource == "events" => {
                let event: Value = serde_json::from_slice(body).expect("an event");
                self.lock().events.push(event.clone());
                (StatusCode::CREATED, event)
            }
            _ => not_found(path),
        }
    }
}

fn not_found(what: &str) -> (StatusCode, Value) {
    (
        StatusCode::NOT_FOUND,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": format!("{what} not found"), "reason": "NotFound", "code": 404}),
    )
}

/// RFC 7386.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let map = target.as_object_mut().expect("an object");
    for (k, v) in patch {
        if v.is_null() {
            map.remove(k);
        } else {
            merge(map.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// `k=v,k2=v2` (equality only).
fn matches_labels(object: &Value, selector: &str) -> bool {
    selector.split(',').all(|term| match term.split_once('=') {
        Some((k, v)) => object["metadata"]["labels"][k.trim_end_matches('=')] == v,
        None => !object["metadata"]["labels"][term].is_null(),
    })
}

fn urldecode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ascii");
                out.push(u8::from_str_radix(hex, 16).expect("hex"));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("utf-8")
}

/// A pod object as the API server would hold it.
pub fn pod(
    ns: &str,
    name: &str,
    uid: &str,
    labels: Value,
    owner: Option<(&str, &str, &str)>,
) -> Value {
    let mut meta = json!({"name": name, "namespace": ns, "uid": uid, "labels": labels, "resourceVersion": "1"});
    if let Some((kind, owner_name, owner_uid)) = owner {
        meta["ownerReferences"] = json!([{
            "apiVersion": if kind == "Job" { "batch/v1" } else { "apps/v1" },
            "kind": kind, "name": owner_name, "uid": owner_uid, "controller": true, "blockOwnerDeletion": true
        }]);
    }
    json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "busybox"}]},
        "status": {"phase": "Running"}
    })
}

/// A directory of the test's own (a state root for fence records, a
/// containerd's), removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(testkit::unique_name());
        std::fs::create_dir(&dir).expect("mkdir scratch");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn context(fake: &Fake, state_root: &Path) -> Arc<Context> {
    let client = fake.client();
    let hierarchies = freezer::Hierarchies::detect(Path::new("/proc")).expect("hierarchies");
    Arc::new(Context {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "stasis-agent".into(),
                instance: Some("node-1".into()),
            },
        ),
        client,
        hierarchies,
        freezer: freezer::Freezer::new(),
        resync: Duration::from_secs(300),
        state_root: state_root.to_owned(),
    })
}

pub fn annotate(fake: &Fake, name: &str, annotations: serde_json::Value) {
    fake.edit("pods", "default", name, |p| {
        let map = p["metadata"]["annotations"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut map = serde_json::Value::Object(map);
        for (k, v) in annotations.as_object().expect("an object") {
            if v.is_null() {
                map.as_object_mut().expect("object").remove(k);
            } else {
                map[k] = v.clone();
            }
        }
        p["metadata"]["annotations"] = map;
    });
}

pub async fn pass(
    fake: &Fake,
    ctx: &Arc<Context>,
    name: &str,
) -> kube::runtime::controller::Action {
    let object: Pod =
        serde_json::from_value(fake.get("pods", "default", name).expect("the pod")).expect("a Pod");
    reconcile::reconcile(Arc::new(object), ctx.clone())
        .await
        .unwrap_or_else(|e| panic!("reconcile {name}: {e:#}"))
}
