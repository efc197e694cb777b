//! `--filter` of `ps`, `pause` and `unpause`: which stasis containers a verb
//! selects (`label=K[=V]`, `status=S`, `pod=P`, `name=N`, `id=PREFIX`; every
//! filter must match, as in docker).

use sandbox::{ContainerRecord, PodRecord, Sandbox};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Label(String, Option<String>),
    Status(String),
    Pod(String),
    Name(String),
    Id(String),
}

impl std::str::FromStr for Filter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))?;
        match key {
            "label" => Ok(match value.split_once('=') {
                Some((k, v)) => Filter::Label(k.to_owned(), Some(v.to_owned())),
                None => Filter::Label(value.to_owned(), None),
            }),
            "status" if matches!(value, "created" | "running" | "paused" | "exited") => {
                Ok(Filter::Status(value.to_owned()))
            }
            "status" => Err(format!(
                "status {value:?}: use created, running, paused or exited"
            )),
            "pod" => Ok(Filter::Pod(value.to_owned())),
            "name" => Ok(Filter::Name(value.to_owned())),
            "id" => Ok(Filter::Id(value.to_owned())),
            _ => Err(format!(
                "unknown filter {key:?}: use label, status, pod, name or id"
            )),
        }
    }
}

impl Filter {
    /// Whether the filter selects by status (then `ps` lists stopped ones too).
    pub fn is_status(&self) -> bool {
        matches!(self, Filter::Status(_))
    }
}

/// Whether a container passes every filter.
pub fn matches(
    sandbox: &Sandbox,
    c: &ContainerRecord,
    pod: Option<&PodRecord>,
    filters: &[Filter],
) -> bool {
    filters.iter().all(|f| match f {
        Filter::Label(k, v) => c
            .labels
            .get(k)
            .is_some_and(|have| v.as_ref().is_none_or(|v| v == have)),
        Filter::Status(s) => sandbox.container_status(c).word() == s,
        Filter::Pod(p) => {
            pod.is_some_and(|pod| pod.name == *p || pod.id.as_str().starts_with(p.as_str()))
        }
        Filter::Name(n) => c.name == *n,
        Filter::Id(i) => c.id.as_str().starts_with(i.as_str()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind_and_refuses_the_rest() {
        assert_eq!(
            "label=a=b".parse(),
            Ok(Filter::Label("a".into(), Some("b".into())))
        );
        assert_eq!("label=a".parse(), Ok(Filter::Label("a".into(), None)));
        assert_eq!("status=paused".parse(), Ok(Filter::Status("paused".into())));
        assert_eq!("pod=web".parse(), Ok(Filter::Pod("web".into())));
        assert_eq!("name=n".parse(), Ok(Filter::Name("n".into())));
        assert_eq!("id=ab".parse(), Ok(Filter::Id("ab".into())));
        for bad in ["status=asleep", "bogus=1", "label"] {
            assert!(bad.parse::<Filter>().is_err(), "{bad}");
        }
    }
}
