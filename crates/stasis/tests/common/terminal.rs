//! A command under a real pseudo-terminal (util-linux's `script`), for the
//! interactive tests of the CLI and of the docker CLI against the service.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{pause_binary, wait_bounded, Stasis, STASIS};

/// A command under a pseudo-terminal of `script`'s, of `rows` × `cols`,
/// with what it prints collected and keys sent to it; killed (by its PID)
/// on drop.
pub struct Terminal {
    child: Child,
    keys: Option<ChildStdin>,
    seen: Arc<Mutex<Vec<u8>>>,
}

/// `arg` quoted for `sh`.
pub fn quoted(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', "'\\''"))
}

impl Terminal {
    /// `stasis --root ROOT ARGS...`.
    pub fn stasis(s: &Stasis, args: &[&str], rows: u16, cols: u16) -> Terminal {
        let mut argv = vec![STASIS.to_owned(), "--root".into()];
        argv.push(s.root.0.to_string_lossy().into_owned());
        argv.extend(args.iter().map(|a| a.to_string()));
        Terminal::start(&argv, rows, cols)
    }

    /// `argv` (each argument quoted for the shell `script` runs).
    pub fn start(argv: &[String], rows: u16, cols: u16) -> Terminal {
        let mut line = format!("stty rows {rows} cols {cols}; exec");
        for a in argv {
            line.push(' ');
            line.push_str(&quoted(a));
        }
        let mut child = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env("STASIS_PAUSE", pause_binary())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("script (util-linux)");
        let mut out = child.stdout.take().expect("piped");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
        });
        let keys = child.stdin.take();
        Terminal { child, keys, seen }
    }

    pub fn seen(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().expect("lock")).into_owned()
    }

    /// Waits (bounded) until the terminal has shown `text` `times` times.
    pub fn wait_for(&self, text: &str, times: usize) {
        let end = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let last = self.seen();
            if last.matches(text).count() >= times {
                return;
            }
            assert!(
                std::time::Instant::now() < end,
                "timed out waiting for {text:?} on the terminal; it shows {last:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn type_keys(&mut self, keys: &[u8]) {
        let k = self.keys.as_mut().expect("keys");
        k.write_all(keys).expect("type");
        k.flush().expect("flush");
    }

    pub fn exit_code(&mut self) -> Option<i32> {
        wait_bounded(&mut self.child, Duration::from_secs(30)).code()
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
