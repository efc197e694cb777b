//! `stasis image ls`: the images in the store.

use std::io::Write;

use anyhow::Result;

use crate::commands::Global;
use crate::flags::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub quiet: flags::Quiet,
    #[command(flatten)]
    pub output: flags::Output,
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let list = super::open(global)?.list()?;
    let mut out = std::io::stdout().lock();
    if args.quiet.quiet {
        for image in &list {
            writeln!(out, "{}", image.id.short())?;
        }
        return Ok(());
    }
    match args.output.format {
        Format::Json => {
            let values: Vec<_> = list.iter().map(images::ImageRecord::inspect).collect();
            serde_json::to_writer_pretty(&mut out, &values)?;
            writeln!(out)?;
        }
        Format::Table => {
            let mut rows = vec![["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
                .map(String::from)
                .to_vec()];
            for image in &list {
                let row = |name: &str, tag: &str| {
                    vec![
                        name.to_owned(),
                        tag.to_owned(),
                        image.id.short().to_owned(),
                        image.created().to_owned(),
                        size(image.size),
                    ]
                };
                if image.repo_tags.is_empty() {
                    rows.push(row("<none>", "<none>"));
                }
                for t in &image.repo_tags {
                    let (name, tag) = t.rsplit_once(':').unwrap_or((t, ""));
                    rows.push(row(name, tag));
                }
            }
            crate::table::print(&mut out, &rows)?;
        }
    }
    Ok(())
}

/// Bytes as docker shows them: decimal units, three significant digits.
fn size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
            + units[unit]
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_are_shown_in_decimal_units() {
        assert_eq!(super::size(0), "0B");
        assert_eq!(super::size(999), "999B");
        assert_eq!(super::size(1_000), "1kB");
        assert_eq!(super::size(2_157_000), "2.157MB");
    }
}
