//! The command line: nothing but `-v` / `--version`, like the Kubernetes pause.

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// No arguments: be the pod's PID 1.
    Pause,
    /// `-v` or `--version`.
    Version,
    /// Anything else; carries the first offending argument.
    Usage(&'a [u8]),
}

/// Parses the arguments after `argv[0]`.
pub fn parse<'a>(mut args: impl Iterator<Item = &'a [u8]>) -> Action<'a> {
    let action = match args.next() {
        None => return Action::Pause,
        Some(b"-v" | b"--version") => Action::Version,
        Some(other) => return Action::Usage(other),
    };
    match args.next() {
        None => action,
        Some(extra) => Action::Usage(extra),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all<'a>(args: &[&'a [u8]]) -> Action<'a> {
        parse(args.iter().copied())
    }

    #[test]
    fn no_arguments_pauses() {
        assert_eq!(parse_all(&[]), Action::Pause);
    }

    #[test]
    fn both_version_spellings() {
        assert_eq!(parse_all(&[b"-v"]), Action::Version);
        assert_eq!(parse_all(&[b"--version"]), Action::Version);
    }

    #[test]
    fn anything_else_is_a_usage_error_naming_it() {
        assert_eq!(parse_all(&[b"-h"]), Action::Usage(b"-h"));
        assert_eq!(parse_all(&[b"--versio"]), Action::Usage(b"--versio"));
        assert_eq!(parse_all(&[b""]), Action::Usage(b""));
        assert_eq!(parse_all(&[b"-v", b"x"]), Action::Usage(b"x"));
    }
}
