//! `stasis image import FILE|- NAME[:TAG]`: a root filesystem tar as a
//! one-layer image, with `--change`s to its config (docker import).

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::commands::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The root filesystem tar (gzip or not), or - for stdin
    #[arg(value_name = "FILE|-")]
    pub file: PathBuf,
    /// The image's name
    #[arg(value_name = "NAME[:TAG]", value_parser = parse_reference)]
    pub name: images::Reference,
    /// Set the config: 'CMD ["sh"]', 'ENTRYPOINT [...]', 'ENV K=V', 'WORKDIR /x', 'USER u', 'LABEL k=v' (repeatable)
    #[arg(short, long = "change", value_name = "INSTRUCTION", value_parser = parse_change)]
    pub changes: Vec<images::Change>,
}

fn parse_reference(s: &str) -> Result<images::Reference, String> {
    images::Reference::parse(s).map_err(|e| e.to_string())
}

fn parse_change(s: &str) -> Result<images::Change, String> {
    images::Change::parse(s).map_err(|e| e.to_string())
}

pub fn run(global: &Global, args: &Args) -> Result<()> {
    let images = super::open(global)?;
    let input: Box<dyn std::io::Read> = if args.file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&args.file)
                .with_context(|| format!("opening {}", args.file.display()))?,
        )
    };
    let created = sandbox::time::rfc3339_nanos(std::time::SystemTime::now());
    let image = images
        .import(
            input,
            &images::Import {
                reference: Some(&args.name),
                changes: &args.changes,
                created: &created,
            },
        )
        .with_context(|| format!("importing {} as {}", args.file.display(), args.name))?;
    println!("{}", image.id);
    Ok(())
}
