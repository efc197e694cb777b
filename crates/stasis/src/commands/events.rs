//! `stasis events`: what happened to pods and containers, from the event
//! journal (see [`sandbox::journal`]), with docker's semantics: without
//! `--since` and `--until` it shows new events as they happen; `--since`
//! starts from the past; without `--until` it follows until SIGINT or
//! SIGTERM, which end it with status 0.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use sandbox::journal::{Event, Filters, Journal};

use crate::commands::Global;
use crate::flags::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub range: flags::TimeRange,
    #[command(flatten)]
    pub filters: flags::EventFilters,
    /// table: docker's one line per event; json: one docker event object per line
    #[command(flatten)]
    pub output: flags::Output,
}

/// How long one wait lasts: how soon a signal is noticed (the wait itself
/// resumes after one).
const SLICE: Duration = Duration::from_millis(100);

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal, while the first is not yet noticed (a write to
        // a stuck pipe), ends it at once, as a shell would: 128 + N.
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
            .context("setting up the handling of SIGINT and SIGTERM")?;
    }
    // The root may not exist yet; make it as every verb does, so there is a
    // directory to watch.
    sandbox::Store::open(&global.root)
        .with_context(|| format!("opening the state root {}", global.root.display()))
        .map_err(crate::commands::permission_hint)?;
    let journal = Journal::at(&global.root);
    let filters = args.filters.to_filters();
    let (since, until) = (args.range.since, args.range.until);
    // Docker replays the past only when asked for a range.
    let mut offset = if since.is_some() || until.is_some() {
        0
    } else {
        journal.end()?
    };
    let mut out = std::io::stdout().lock();
    loop {
        let (events, next) = journal.read_from(offset)?;
        offset = next;
        for e in events
            .iter()
            .filter(|e| selected(e, since, until, &filters))
        {
            let printed = match args.output.format {
                Format::Json => writeln!(out, "{}", e.docker_json()),
                Format::Table => writeln!(out, "{}", table_line(e)),
            }
            .and_then(|()| out.flush());
            match printed {
                Ok(()) => {}
                // A reader that went away (`| head`) ends it, as it ends docker's.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) => return Err(e).context("writing the events"),
            }
        }
        let now = SystemTime::now();
        if until.is_some_and(|u| now >= u) || stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let slice = until
            .and_then(|u| u.duration_since(now).ok())
            .map_or(SLICE, |left| left.min(SLICE));
        journal.wait(offset, slice)?;
    }
}

fn selected(
    e: &Event,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    filters: &Filters,
) -> bool {
    since.is_none_or(|s| e.time() >= s) && until.is_none_or(|u| e.time() <= u) && filters.matches(e)
}

/// docker's line: `TIME TYPE ACTION ID (k=v, k=v)`, attributes sorted.
fn table_line(e: &Event) -> String {
    let mut line = format!(
        "{} {} {} {}",
        sandbox::time::rfc3339_nanos_fixed(e.time()),
        e.kind,
        e.action,
        e.id
    );
    if !e.attributes.is_empty() {
        let attrs: Vec<String> = e
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        line.push_str(&format!(" ({})", attrs.join(", ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandbox::journal::EventType;
    use std::collections::BTreeMap;
    use std::time::UNIX_EPOCH;

    fn event(secs: u64, attributes: &[(&str, &str)]) -> Event {
        Event {
            time_nano: secs * 1_000_000_000 + 123_456_789,
            kind: EventType::Container,
            action: "pause".into(),
            id: "ab".repeat(32),
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn the_table_line_is_docker_s() {
        let e = event(1_796_168_400, &[("tier", "front"), ("name", "web")]);
        assert_eq!(
            table_line(&e),
            format!(
                "2026-12-01T23:40:00.123456789Z container pause {} (name=web, tier=front)",
                "ab".repeat(32)
            )
        );
        let bare = event(1_796_168_400, &[]);
        assert!(table_line(&bare).ends_with(&"ab".repeat(32)));
    }

    #[test]
    fn since_and_until_bound_the_events_inclusively() {
        let at = |s| Some(UNIX_EPOCH + Duration::from_secs(s));
        let e = event(100, &[("name", "web")]);
        let all = Filters::default();
        assert!(selected(&e, None, None, &all));
        assert!(selected(&e, at(100), at(101), &all));
        assert!(!selected(&e, at(101), None, &all));
        assert!(
            !selected(&e, None, at(100), &all),
            "until 100.0 is before 100.12"
        );
        let mut other = Filters::default();
        other.add("container", "db").expect("filter");
        assert!(!selected(&e, None, None, &other));
    }
}
