//! Query strings as docker's clients send them: booleans as `1`/`true`/
//! `0`/`false`, numbers, and `filters`, a JSON object whose values are a
//! map `{"label":{"k=v":true}}` (the docker CLI) or a list
//! `{"label":["k=v"]}` (docker-py): both are accepted.

use std::collections::BTreeMap;

use crate::error::ApiError;

/// A request's query parameters, in order ([`Query::get`]: the last value
/// of a repeated one wins).
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(query: Option<&str>) -> Self {
        Query(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated parameter (docker import's `changes`).
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean: absent is `default`; `1`, `true`, `True` are true, `0`,
    /// `false`, `False` and empty are false; anything else is a 400.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(default),
            Some("1" | "true" | "True" | "TRUE") => Ok(true),
            Some("0" | "false" | "False" | "FALSE" | "") => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!(
                "invalid value for {key}: {v:?} is not a boolean"
            ))),
        }
    }

    /// A number: absent or empty is `None`; not a number is a 400.
    pub fn number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value for {key}: {v:?} is not a number"))
            }),
        }
    }

    /// `filters`, with each key's values.
    pub fn filters(&self) -> Result<Filters, ApiError> {
        match self.get("filters") {
            None | Some("") => Ok(Filters::default()),
            Some(text) => Filters::parse(text),
        }
    }
}

/// Parsed `filters`: each key's set of values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("invalid filters: {e}")))?;
        let serde_json::Value::Object(map) = value else {
            return Err(ApiError::bad_request("invalid filters: not a JSON object"));
        };
        let mut out = BTreeMap::new();
        for (key, values) in map {
            let list = match values {
                // The docker CLI: {"label": {"k=v": true}}.
                serde_json::Value::Object(m) => m
                    .into_iter()
                    .filter(|(_, on)| on.as_bool() != Some(false))
                    .map(|(k, _)| k)
                    .collect(),
                // docker-py: {"label": ["k=v"]}.
                serde_json::Value::Array(a) => a
                    .into_iter()
                    .map(|v| match v {
                        serde_json::Value::String(s) => Ok(s),
                        other => Err(ApiError::bad_request(format!(
                            "invalid filters: {key} has a value that is not a string: {other}"
                        ))),
                    })
                    .collect::<Result<_, _>>()?,
                serde_json::Value::String(s) => vec![s],
                other => {
                    return Err(ApiError::bad_request(format!(
                        "invalid filters: {key} is {other}, neither a map nor a list"
                    )))
                }
            };
            out.insert(key, list);
        }
        Ok(Filters(out))
    }

    /// Refuses keys outside `known`, as moby does.
    pub fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
            None => Ok(()),
        }
    }

    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_label_forms_and_bad_values() {
        let map = Filters::parse(r#"{"label":{"tier=db":true,"x":true}}"#).expect("map");
        let list = Filters::parse(r#"{"label":["tier=db","x"]}"#).expect("list");
        assert_eq!(map, list);
        assert_eq!(map.get("label"), ["tier=db", "x"]);
        assert!(map.get("status").is_empty());
        assert!(Filters::parse("{not json").is_err());
        assert!(Filters::parse(r#"["label"]"#).is_err());
        assert!(Filters::parse(r#"{"label":[1]}"#).is_err());
        let e = map.only(&["status"]).expect_err("unknown");
        assert_eq!(e.message, "invalid filter 'label'");
        let q = Query::parse(Some(
            "all=1&limit=3&size=false&t=x&filters=%7B%22status%22%3A%5B%22paused%22%5D%7D",
        ));
        assert!(q.flag("all", false).expect("all"));
        assert!(!q.flag("size", true).expect("size"));
        assert_eq!(q.number::<usize>("limit").expect("limit"), Some(3));
        assert!(q.number::<u64>("t").is_err());
        assert_eq!(q.filters().expect("filters").get("status"), ["paused"]);
        assert!(Query::parse(Some("all=maybe")).flag("all", false).is_err());
        let q = Query::parse(Some("changes=CMD%20x&changes=ENV%20A%3D1&t=1&t=2"));
        assert_eq!(q.all("changes"), ["CMD x", "ENV A=1"]);
        assert_eq!(q.get("t"), Some("2"), "the last wins");
    }
}
