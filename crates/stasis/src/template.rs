//! The subset of Go's text/template that docker users pass to `--format`
//! and `inspect -f`, evaluated on JSON: text with `{{ACTION}}`s, where an
//! action is a field path (`.`, `.State.Status`), `json PATH`, `.Label
//! "KEY"` (a label of a `ps` row), or `upper`/`lower`/`title PATH`; and the
//! `table` prefix of `ps --format`, which prints a header of the fields'
//! column names and aligns the columns. Escapes `\t` and `\n` in the text
//! are docker's. Anything else (pipelines, `range`, `if`) is refused with a
//! one-line error, never printed as it stands.

use std::collections::BTreeMap;

use serde_json::Value;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    /// `table ...`: a header row and aligned columns.
    pub table: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Action(Action),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    /// A field path; empty is `.` itself.
    Field(Vec<String>),
    /// `json PATH`.
    Json(Vec<String>),
    /// `.Label "KEY"`.
    Label(String),
    /// `upper`, `lower` or `title` of a path.
    Case(Case, Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Upper,
    Lower,
    Title,
}

impl Template {
    /// Parses a template; the error is one line for the user.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (table, body) = match text.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                (true, rest.trim_start())
            }
            _ => (false, text),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let mut parts = Vec::new();
        let mut rest = body.as_str();
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("template {text:?}: unclosed action"))?;
            let inner = after[..close]
                .trim()
                .trim_start_matches('-')
                .trim_end_matches('-');
            parts.push(Part::Action(
                parse_action(inner.trim()).map_err(|e| format!("template {text:?}: {e}"))?,
            ));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts, table })
    }

    /// Renders for one value; `labels` answers `.Label "KEY"`.
    pub fn render(
        &self,
        value: &Value,
        labels: Option<&BTreeMap<String, String>>,
    ) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Action(a) => out.push_str(&eval(a, value, labels)?),
            }
        }
        Ok(out)
    }

    /// The header of a `table` template: each action's column name (by
    /// `names`, for the last field of its path; else the field in capitals),
    /// with the text between kept.
    pub fn header(&self, names: &dyn Fn(&str) -> Option<&'static str>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Action(a) => {
                    let field = match a {
                        Action::Field(p) | Action::Json(p) | Action::Case(_, p) => {
                            p.last().cloned().unwrap_or_default()
                        }
                        Action::Label(k) => k.clone(),
                    };
                    match names(&field) {
                        Some(n) => out.push_str(n),
                        None => out.push_str(&field.to_uppercase()),
                    }
                }
            }
        }
        out
    }
}

fn parse_path(text: &str) -> Result<Vec<String>, String> {
    if text == "." {
        return Ok(Vec::new());
    }
    let Some(rest) = text.strip_prefix('.') else {
        return Err(format!("{text:?} is not a field (fields start with a dot)"));
    };
    let path: Vec<String> = rest.split('.').map(str::to_owned).collect();
    if path
        .iter()
        .any(|p| p.is_empty() || !p.chars().all(|c| c.is_alphanumeric() || c == '_'))
    {
        return Err(format!("{text:?} is not a field path"));
    }
    Ok(path)
}

fn parse_action(inner: &str) -> Result<Action, String> {
    let words: Vec<&str> = inner.split_whitespace().collect();
    match words.as_slice() {
        [path] => Ok(Action::Field(parse_path(path)?)),
        ["json", path] => Ok(Action::Json(parse_path(path)?)),
        ["upper", path] => Ok(Action::Case(Case::Upper, parse_path(path)?)),
        ["lower", path] => Ok(Action::Case(Case::Lower, parse_path(path)?)),
        ["title", path] => Ok(Action::Case(Case::Title, parse_path(path)?)),
        [".Label", key] => {
            let key = key
                .strip_prefix('"')
                .and_then(|k| k.strip_suffix('"'))
                .ok_or_else(|| format!("{inner:?}: give the label's key in double quotes"))?;
            Ok(Action::Label(key.to_owned()))
        }
        _ => Err(format!(
            "{{{{{inner}}}}} is not supported: use .Field, json .Field, .Label \"KEY\", upper, lower or title"
        )),
    }
}

fn lookup<'a>(value: &'a Value, path: &[String]) -> Result<&'a Value, String> {
    let mut v = value;
    for (i, p) in path.iter().enumerate() {
        v = v.get(p).ok_or_else(|| {
            let at = if i == 0 {
                ".".to_owned()
            } else {
                format!(".{}", path[..i].join("."))
            };
            format!("no field {p} in {at}")
        })?;
    }
    Ok(v)
}

/// A value as Go's template prints it: strings bare, `<no value>` for null.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<no value>".to_owned(),
        other => other.to_string(),
    }
}

fn eval(
    a: &Action,
    value: &Value,
    labels: Option<&BTreeMap<String, String>>,
) -> Result<String, String> {
    Ok(match a {
        Action::Field(p) => plain(lookup(value, p)?),
        Action::Json(p) => lookup(value, p)?.to_string(),
        Action::Label(k) => labels
            .ok_or_else(|| "only ps rows have .Label".to_owned())?
            .get(k)
            .cloned()
            .unwrap_or_default(),
        Action::Case(case, p) => {
            let s = plain(lookup(value, p)?);
            match case {
                Case::Upper => s.to_uppercase(),
                Case::Lower => s.to_lowercase(),
                Case::Title => {
                    let mut c = s.chars();
                    c.next()
                        .map(|f| f.to_uppercase().chain(c).collect())
                        .unwrap_or_default()
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v() -> Value {
        serde_json::json!({
            "ID": "abc",
            "Names": "web",
            "State": {"Status": "paused", "Paused": true, "Pid": 42},
            "Nothing": null,
        })
    }

    #[test]
    fn fields_json_and_text_render_as_go_does() {
        let t = Template::parse("{{.ID}} {{.State.Status}} {{.State.Paused}} {{ .State.Pid }}")
            .expect("parse");
        assert_eq!(t.render(&v(), None).expect("render"), "abc paused true 42");
        let j = Template::parse("{{json .State}}").expect("json");
        let out = j.render(&v(), None).expect("render");
        let back: Value = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(back["Status"], "paused");
        assert_eq!(
            Template::parse("{{json .}}")
                .expect("dot")
                .render(&v(), None)
                .expect("render"),
            v().to_string()
        );
        assert_eq!(
            Template::parse("{{.Nothing}}|{{upper .Names}}")
                .expect("p")
                .render(&v(), None)
                .expect("r"),
            "<no value>|WEB"
        );
        assert_eq!(
            Template::parse("a\\tb")
                .expect("p")
                .render(&v(), None)
                .expect("r"),
            "a\tb"
        );
    }

    #[test]
    fn labels_and_tables() {
        let labels = BTreeMap::from([("tier".to_owned(), "db".to_owned())]);
        let t = Template::parse("table {{.ID}}\\t{{.Label \"tier\"}}").expect("parse");
        assert!(t.table);
        assert_eq!(t.render(&v(), Some(&labels)).expect("r"), "abc\tdb");
        let names = |f: &str| (f == "ID").then_some("CONTAINER ID");
        assert_eq!(t.header(&names), "CONTAINER ID\tTIER");
    }

    #[test]
    fn what_it_does_not_know_is_refused_in_one_line() {
        for bad in [
            "{{.ID",
            "{{range .}}{{end}}",
            "{{.ID | printf}}",
            "{{ID}}",
            "{{.Label tier}}",
        ] {
            let e = Template::parse(bad).expect_err(bad);
            assert!(!e.contains('\n'), "{e}");
        }
        let t = Template::parse("{{.State.Nope}}").expect("parse");
        assert_eq!(
            t.render(&v(), None).expect_err("missing"),
            "no field Nope in .State"
        );
    }
}
