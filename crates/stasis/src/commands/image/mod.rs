//! `stasis image`: the local image store (one module per verb), and what
//! `run` takes from an image: its layers as the container's overlay, its
//! command, environment, working directory and user.

pub mod import;
pub mod inspect;
pub mod load;
pub mod ls;
pub mod rm;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use images::Images;

use crate::commands::Global;
use crate::exit::Refusal;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Make an image of a root filesystem tar (gzip or not; - for stdin), as docker import
    #[command(after_help = crate::exit::HELP)]
    Import(import::Args),
    /// Load images from a docker save archive or an OCI image archive
    #[command(after_help = crate::exit::HELP)]
    Load(load::Args),
    /// List images
    #[command(after_help = crate::exit::HELP, visible_alias = "list")]
    Ls(ls::Args),
    /// Show images as JSON, in docker's shape
    #[command(after_help = crate::exit::HELP)]
    Inspect(inspect::Args),
    /// Remove images, or one of an image's names
    #[command(after_help = crate::exit::HELP, visible_alias = "remove")]
    Rm(rm::Args),
}

pub fn run(global: &Global, args: Args) -> Result<()> {
    match args.command {
        Command::Import(a) => import::run(global, &a),
        Command::Load(a) => load::run(global, &a),
        Command::Ls(a) => ls::run(global, &a),
        Command::Inspect(a) => inspect::run(global, &a),
        Command::Rm(a) => rm::run(global, &a),
    }
}

/// Opens the image store under the state root.
pub(crate) fn open(global: &Global) -> Result<Images> {
    Images::open(&global.root)
        .with_context(|| format!("opening the image store under {}", global.root.display()))
        .map_err(crate::commands::permission_hint)
}

/// What a container takes from an image.
#[derive(Debug)]
pub(crate) struct FromImage {
    pub root: sandbox::ImageRoot,
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<PathBuf>,
    pub user: Option<sandbox::User>,
}

/// The container `run IMAGE [CMD]...` makes: the image's entrypoint and
/// its command (`command` replacing the image's Cmd), the image's
/// environment under `env` (-e wins), `workdir` or the image's, and the
/// image's user (numeric, or a name from its /etc/passwd).
pub(crate) fn from_image(
    global: &Global,
    name: &str,
    command: &[String],
    env: Vec<String>,
    workdir: Option<PathBuf>,
) -> Result<FromImage> {
    from_image_with(
        global,
        name,
        Overrides {
            command,
            entrypoint: None,
            env,
            workdir,
            user: None,
        },
    )
}

/// What a caller may set over an image's config: `run`'s arguments and
/// flags, or the API's create body.
#[derive(Debug)]
pub(crate) struct Overrides<'a> {
    /// Replaces the image's Cmd.
    pub command: &'a [String],
    /// Replaces the image's Entrypoint, and then its Cmd too (docker's
    /// rule: a new entrypoint does not take the old one's arguments).
    pub entrypoint: Option<&'a [String]>,
    /// Over the image's environment, key by key.
    pub env: Vec<String>,
    pub workdir: Option<PathBuf>,
    /// Replaces the image's user.
    pub user: Option<&'a str>,
}

/// [`from_image`] with every override.
pub(crate) fn from_image_with(
    global: &Global,
    name: &str,
    over: Overrides<'_>,
) -> Result<FromImage> {
    let Overrides {
        command,
        entrypoint,
        env,
        workdir,
        user: user_override,
    } = over;
    let images = open(global)?;
    let image = images.resolve(name)?;
    let config = &image.config.config;
    let argv = match entrypoint {
        Some(ep) => ep.iter().chain(command).cloned().collect(),
        None => config.command(command),
    };
    if argv.is_empty() {
        return Err(Refusal::usage(format!(
            "image {name} has no command (Entrypoint or Cmd): give one after it"
        ))
        .into());
    }
    let lower_dirs = images.lower_dirs(&image);
    let user = match user_override
        .or(config.user.as_deref())
        .filter(|u| !u.is_empty())
    {
        Some(u) => Some(
            user_of(&lower_dirs, u).with_context(|| format!("the user {u:?} of image {name}"))?,
        ),
        None => None,
    };
    let workdir = workdir.or_else(|| {
        config
            .working_dir
            .as_deref()
            .filter(|w| !w.is_empty())
            .map(|w| Path::new("/").join(w))
    });
    Ok(FromImage {
        root: sandbox::ImageRoot {
            name: name.to_owned(),
            id: image.id.to_string(),
            lower_dirs,
        },
        command: argv,
        env: merge_env(config.env.as_deref().unwrap_or_default(), env),
        workdir,
        user,
    })
}

/// `base` overridden by `over`, key by key, in the order keys first appear.
fn merge_env(base: &[String], over: Vec<String>) -> Vec<String> {
    let key = |kv: &str| kv.split_once('=').map_or(kv, |(k, _)| k).to_owned();
    let mut out: Vec<String> = Vec::new();
    for kv in base.iter().cloned().chain(over) {
        match out.iter_mut().find(|e| key(e) == key(&kv)) {
            Some(slot) => *slot = kv,
            None => out.push(kv),
        }
    }
    out
}

/// `UID[:GID]` or `NAME[:GROUP]`, names looked up in the image's
/// /etc/passwd and /etc/group (a numeric UID takes its passwd entry's
/// group, or 0, as docker does).
pub(crate) fn user_of(lower_dirs: &[PathBuf], spec: &str) -> Result<sandbox::User> {
    let (u, g) = spec
        .split_once(':')
        .map_or((spec, None), |(u, g)| (u, Some(g)));
    let passwd = image_file(lower_dirs, "passwd")?;
    let entry = |field: usize, value: &str| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[field] == value).then(|| (f[2].parse::<u32>(), f[3].parse::<u32>()))
        })
    };
    let (uid, passwd_gid) = match u.parse::<u32>() {
        Ok(uid) => match entry(2, u) {
            Some((_, Ok(gid))) => (uid, gid),
            _ => (uid, 0),
        },
        Err(_) => match entry(0, u) {
            Some((Ok(uid), Ok(gid))) => (uid, gid),
            _ => {
                return Err(
                    Refusal::usage(format!("no user {u:?} in the image's /etc/passwd")).into(),
                )
            }
        },
    };
    let gid = match g {
        None => passwd_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => image_file(lower_dirs, "group")?
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() > 2 && f[0] == g)
                        .then(|| f[2].parse::<u32>().ok())
                        .flatten()
                })
                .ok_or_else(|| {
                    Refusal::usage(format!("no group {g:?} in the image's /etc/group"))
                })?,
        },
    };
    Ok(sandbox::User { uid, gid })
}

/// `/etc/NAME` of the image: the topmost layer's, read without following
/// a symlink on its way (it would be the host's); empty if none has it.
fn image_file(lower_dirs: &[PathBuf], name: &str) -> Result<String> {
    for dir in lower_dirs {
        let etc = dir.join("etc");
        let file = etc.join(name);
        let plain_dir = std::fs::symlink_metadata(&etc).is_ok_and(|m| m.is_dir());
        if plain_dir && std::fs::symlink_metadata(&file).is_ok_and(|m| m.is_file()) {
            let mut text = String::new();
            use std::io::Read;
            std::fs::File::open(&file)
                .and_then(|f| f.take(1 << 20).read_to_string(&mut text))
                .with_context(|| format!("reading {}", file.display()))?;
            return Ok(text);
        }
    }
    Ok(String::new())
}

/// Containers' use of images: which use `id`, and every layer directory
/// some container mounts.
pub(crate) fn usage(
    sandbox: &sandbox::Sandbox,
    id: &images::Digest,
) -> Result<(Vec<String>, Vec<PathBuf>)> {
    let mut users = Vec::new();
    let mut busy = Vec::new();
    for c in sandbox.containers()? {
        if let Some(img) = &c.image {
            if img.id == id.to_string() {
                users.push(c.name.clone());
            }
            busy.extend(img.lower_dirs.iter().cloned());
        }
    }
    Ok((users, busy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_environment_is_merged_under_the_flags() {
        let base = ["PATH=/bin".to_owned(), "A=1".to_owned()];
        assert_eq!(
            merge_env(&base, vec!["A=2".into(), "B=3".into()]),
            ["PATH=/bin", "A=2", "B=3"]
        );
    }

    #[test]
    fn users_are_numeric_or_looked_up_in_the_image() {
        let dir = std::env::temp_dir().join(format!("stasis-test-user-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).expect("mkdir");
        std::fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\n",
        )
        .expect("passwd");
        std::fs::write(dir.join("etc/group"), "root:x:0:\nstaff:x:50:\n").expect("group");
        let lower = [dir.clone()];
        let user = |s: &str| user_of(&lower, s).map(|u| (u.uid, u.gid));
        assert_eq!(user("app").expect("name"), (1000, 1001));
        assert_eq!(user("1000").expect("uid"), (1000, 1001));
        assert_eq!(user("4242").expect("unknown uid"), (4242, 0));
        assert_eq!(user("app:staff").expect("group"), (1000, 50));
        assert_eq!(user("7:8").expect("both"), (7, 8));
        assert!(user("nobody").is_err());
        assert!(user("app:wheel").is_err());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
