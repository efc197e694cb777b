//! The pods a `kubectl stasis` target names, found through ownerReferences:
//! a Deployment owns ReplicaSets that own Pods; a StatefulSet, DaemonSet,
//! ReplicaSet or Job owns its Pods directly. Only controller references
//! count (`controller: true`), as the workload controllers set them, so a
//! pod adopted by another owner is not taken.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use crate::error::{Error, Result};

/// The workloads a target can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    Job,
}

impl Kind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "pod" | "pods" | "po" => Kind::Pod,
            "deployment" | "deployments" | "deploy" => Kind::Deployment,
            "statefulset" | "statefulsets" | "sts" => Kind::StatefulSet,
            "daemonset" | "daemonsets" | "ds" => Kind::DaemonSet,
            "replicaset" | "replicasets" | "rs" => Kind::ReplicaSet,
            "job" | "jobs" => Kind::Job,
            _ => return None,
        })
    }

    /// The kind as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Job => "Job",
        }
    }
}

/// What a command names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// `KIND/NAME`.
    Named { kind: Kind, name: String },
    /// `-l SELECTOR`: the pods whose labels match.
    Labels(String),
}

impl Selection {
    /// Parses `KIND/NAME` (`deployment/web`, `pod/web-0`, `sts/db`).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || Error::BadTarget { what: s.to_owned() };
        let (kind, name) = s.split_once('/').ok_or_else(bad)?;
        let kind = Kind::parse(kind).ok_or_else(bad)?;
        if name.is_empty() || name.contains('/') {
            return Err(bad());
        }
        Ok(Selection::Named {
            kind,
            name: name.to_owned(),
        })
    }
}

/// The pods `selection` names in `namespace`, sorted by name.
pub async fn pods(client: &Client, namespace: &str, selection: &Selection) -> Result<Vec<Pod>> {
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut found = match selection {
        Selection::Labels(selector) => {
            list(
                &pods_api,
                namespace,
                "pods",
                &ListParams::default().labels(selector),
            )
            .await?
        }
        Selection::Named {
            kind: Kind::Pod,
            name,
        } => vec![get(&pods_api, Kind::Pod, namespace, name).await?],
        Selection::Named {
            kind: Kind::Deployment,
            name,
        } => {
            let deployment: Deployment = get(
                &Api::namespaced(client.clone(), namespace),
                Kind::Deployment,
                namespace,
                name,
            )
            .await?;
            let uid = uid_of(&deployment, Kind::Deployment, namespace, name)?;
            let sets: Vec<ReplicaSet> = list(
                &Api::namespaced(client.clone(), namespace),
                namespace,
                "replicasets",
                &ListParams::default(),
            )
            .await?;
            let owners: Vec<String> = sets
                .iter()
                .filter(|rs| is_controlled_by(*rs, &uid))
                .filter_map(|rs| rs.uid())
                .collect();
            let all = list(&pods_api, namespace, "pods", &ListParams::default()).await?;
            all.into_iter()
                .filter(|p| owners.iter().any(|o| is_controlled_by(p, o)))
                .collect()
        }
        Selection::Named { kind, name } => {
            let uid = match kind {
                Kind::StatefulSet => {
                    owner_uid::<StatefulSet>(client, *kind, namespace, name).await?
                }
                Kind::DaemonSet => owner_uid::<DaemonSet>(client, *kind, namespace, name).await?,
                Kind::ReplicaSet => owner_uid::<ReplicaSet>(client, *kind, namespace, name).await?,
                Kind::Job => owner_uid::<Job>(client, *kind, namespace, name).await?,
                Kind::Pod | Kind::Deployment => unreachable!("matched above"),
            };
            let all = list(&pods_api, namespace, "pods", &ListParams::default()).await?;
            all.into_iter()
                .filter(|p| is_controlled_by(p, &uid))
                .collect()
        }
    };
    found.sort_by_key(|p| p.name_any());
    Ok(found)
}

/// Whether `uid` is the controller among the object's ownerReferences.
fn is_controlled_by(obj: &impl ResourceExt, uid: &str) -> bool {
    obj.owner_references()
        .iter()
        .any(|r| r.controller == Some(true) && r.uid == uid)
}

async fn owner_uid<K>(client: &Client, kind: Kind, namespace: &str, name: &str) -> Result<String>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let obj: K = get(
        &Api::namespaced(client.clone(), namespace),
        kind,
        namespace,
        name,
    )
    .await?;
    uid_of(&obj, kind, namespace, name)
}

fn uid_of(obj: &impl ResourceExt, kind: Kind, namespace: &str, name: &str) -> Result<String> {
    obj.uid().ok_or_else(|| Error::NoOwnerUid {
        kind: kind.as_str(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    })
}

async fn get<K>(api: &Api<K>, kind: Kind, namespace: &str, name: &str) -> Result<K>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get(name).await.map_err(|source| Error::Get {
        kind: kind.as_str(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source: Box::new(source),
    })
}

async fn list<K>(
    api: &Api<K>,
    namespace: &str,
    kind: &'static str,
    params: &ListParams,
) -> Result<Vec<K>>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(params)
        .await
        .map(|l| l.items)
        .map_err(|source| Error::List {
            kind,
            namespace: namespace.to_owned(),
            source: Box::new(source),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            Selection::parse("deploy/web").expect("parse"),
            Selection::Named {
                kind: Kind::Deployment,
                name: "web".into()
            }
        );
        assert_eq!(
            Selection::parse("StatefulSet/db").expect("parse"),
            Selection::Named {
                kind: Kind::StatefulSet,
                name: "db".into()
            }
        );
        for bad in ["web", "service/web", "pod/", "pod/a/b", "/web"] {
            assert!(Selection::parse(bad).is_err(), "{bad}");
        }
    }
}
