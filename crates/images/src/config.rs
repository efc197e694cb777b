//! An image's config, the JSON document whose digest is the image's ID (the
//! docker image config, which OCI's image config adopted field for field):
//! the platform, the process defaults a container starts with (`config`),
//! and the layers (`rootfs.diff_ids`, bottom first). And `--change`, the
//! Dockerfile-like instructions `import` applies to a fresh config.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The image config. Only the fields stasis uses are kept; the ID is the
/// digest of the original bytes, so nothing is lost by not keeping the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub config: ContainerConfig,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<serde_json::Value>,
}

/// What a container from the image runs by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

impl ContainerConfig {
    /// The command a container runs: the entrypoint, then `cmd` if given
    /// (it replaces the image's `Cmd`, as in docker), else the image's.
    pub fn command(&self, cmd: &[String]) -> Vec<String> {
        let mut argv = self.entrypoint.clone().unwrap_or_default();
        if cmd.is_empty() {
            argv.extend(self.cmd.clone().unwrap_or_default());
        } else {
            argv.extend_from_slice(cmd);
        }
        argv
    }
}

/// `rootfs`: the layers' digests, bottom first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

/// One `--change` instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Cmd(Vec<String>),
    Entrypoint(Vec<String>),
    Env(String, String),
    WorkingDir(String),
    User(String),
    Label(String, String),
}

impl Change {
    /// Parses `CMD ["a","b"]` (or the shell form `CMD a b`, run by
    /// `/bin/sh -c`), `ENTRYPOINT ...` alike, `ENV K=V` (or `ENV K V`),
    /// `WORKDIR /abs`, `USER u`, `LABEL k=v`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidChange {
            value: s.to_owned(),
            reason,
        };
        let s_trim = s.trim();
        let (word, rest) = s_trim
            .split_once(char::is_whitespace)
            .map_or((s_trim, ""), |(w, r)| (w, r.trim()));
        if rest.is_empty() {
            return Err(bad("give the instruction a value"));
        }
        let argv = |rest: &str| -> Result<Vec<String>> {
            if rest.starts_with('[') {
                serde_json::from_str::<Vec<String>>(rest)
                    .map_err(|_| bad("the exec form is a JSON array of strings"))
            } else {
                Ok(vec!["/bin/sh".into(), "-c".into(), rest.to_owned()])
            }
        };
        let pair = |rest: &str| -> Result<(String, String)> {
            let (k, v) = rest
                .split_once('=')
                .or_else(|| rest.split_once(char::is_whitespace))
                .ok_or_else(|| bad("use KEY=VALUE"))?;
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() || k.contains('\0') || v.contains('\0') {
                return Err(bad("use KEY=VALUE"));
            }
            Ok((k.to_owned(), v.trim_matches('"').to_owned()))
        };
        match word.to_ascii_uppercase().as_str() {
            "CMD" => Ok(Change::Cmd(argv(rest)?)),
            "ENTRYPOINT" => Ok(Change::Entrypoint(argv(rest)?)),
            "ENV" => pair(rest).map(|(k, v)| Change::Env(k, v)),
            "LABEL" => pair(rest).map(|(k, v)| Change::Label(k, v)),
            "WORKDIR" if rest.starts_with('/') => Ok(Change::WorkingDir(rest.to_owned())),
            "WORKDIR" => Err(bad("the working directory must be absolute")),
            "USER" => Ok(Change::User(rest.to_owned())),
            _ => Err(bad(
                "stasis applies CMD, ENTRYPOINT, ENV, LABEL, USER and WORKDIR",
            )),
        }
    }

    /// Applies it to a container config.
    pub fn apply(&self, c: &mut ContainerConfig) {
        match self {
            Change::Cmd(argv) => c.cmd = Some(argv.clone()),
            Change::Entrypoint(argv) => c.entrypoint = Some(argv.clone()),
            Change::Env(k, v) => {
                let env = c.env.get_or_insert_with(Vec::new);
                env.retain(|e| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) != k);
                env.push(format!("{k}={v}"));
            }
            Change::WorkingDir(d) => c.working_dir = Some(d.clone()),
            Change::User(u) => c.user = Some(u.clone()),
            Change::Label(k, v) => {
                c.labels
                    .get_or_insert_with(BTreeMap::new)
                    .insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_parse_in_both_forms_and_apply() {
        let mut c = ContainerConfig::default();
        for s in [
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /init",
            "ENV A=1",
            "env B 2",
            "ENV A=3",
            "WORKDIR /srv",
            "USER 1000",
            "LABEL tier=web",
        ] {
            Change::parse(s).expect(s).apply(&mut c);
        }
        assert_eq!(
            c.cmd.as_deref(),
            Some(&["sh".into(), "-c".into(), "echo hi".into()][..])
        );
        assert_eq!(
            c.entrypoint.as_deref(),
            Some(&["/bin/sh".into(), "-c".into(), "/init".into()][..])
        );
        assert_eq!(c.env.as_deref(), Some(&["B=2".into(), "A=3".into()][..]));
        assert_eq!(c.working_dir.as_deref(), Some("/srv"));
        assert_eq!(c.user.as_deref(), Some("1000"));
        assert_eq!(c.labels.expect("labels")["tier"], "web");
        for bad in [
            "CMD",
            "CMD [1]",
            "WORKDIR rel",
            "EXPOSE 80",
            "ENV =1",
            "ENV A",
        ] {
            assert!(Change::parse(bad).expect_err(bad).is_invalid(), "{bad}");
        }
    }

    #[test]
    fn a_given_command_replaces_cmd_but_not_the_entrypoint() {
        let c = ContainerConfig {
            entrypoint: Some(vec!["/init".into()]),
            cmd: Some(vec!["serve".into()]),
            ..ContainerConfig::default()
        };
        assert_eq!(c.command(&[]), ["/init", "serve"]);
        assert_eq!(c.command(&["sh".into()]), ["/init", "sh"]);
        let bare = ContainerConfig::default();
        assert!(bare.command(&[]).is_empty());
    }

    #[test]
    fn docker_configs_with_nulls_and_extra_fields_parse() {
        let json = r#"{"architecture":"amd64","os":"linux","config":{"Hostname":"",
            "Env":null,"Cmd":["sh"],"Entrypoint":null,"Labels":null},
            "rootfs":{"type":"layers","diff_ids":[]}}"#;
        let c: ImageConfig = serde_json::from_str(json).expect("parses");
        assert_eq!(c.config.cmd.as_deref(), Some(&["sh".to_owned()][..]));
        assert_eq!(c.config.env, None);
    }
}
