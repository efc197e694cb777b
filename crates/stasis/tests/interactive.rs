//! Interactive containers through the `stasis` binary (root only, real
//! kernel): an attached `run` passes the signals it gets to the container;
//! `run -i` feeds it stdin; `run -it` and `attach` under a real
//! pseudo-terminal (util-linux's `script`): a shell, the outer terminal's
//! size, the exit status, and ctrl-p ctrl-q detaching.

mod common;

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

/// Kills (by its PID) and reaps a foreground `stasis run` left by a failed
/// test; the container itself goes with the test's `Stasis`.
struct Foreground(Child);

impl Drop for Foreground {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `run` attached and waits until the container's command is up
/// (it prints `ready`).
fn foreground(s: &Stasis, name: &str, args: &[&str]) -> Foreground {
    let mut full = vec!["run", "--name", name];
    full.extend_from_slice(args);
    let child = s.spawn(&full);
    let fg = Foreground(child);
    s.wait_log(name, "ready");
    fg
}

fn send(fg: &Foreground, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(fg.0.id() as i32).expect("pid");
    rustix::process::kill_process(pid, signal).expect("signal the foreground run");
}

#[test]
fn a_sigint_to_a_foreground_run_ends_the_container_with_the_signals_status() {
    if !root_or_skip("a_sigint_to_a_foreground_run_ends_the_container_with_the_signals_status") {
        return;
    }
    let s = Stasis::new();
    let name = unique_name();
    // --init: the command is not PID 1 of its namespace, so the kernel
    // applies SIGINT's default action (a PID 1 would ignore it).
    let mut fg = foreground(
        &s,
        &name,
        &["--init", "--", "sh", "-c", "echo ready; exec sleep 60"],
    );
    send(&fg, rustix::process::Signal::INT);
    let status = wait_bounded(&mut fg.0, Duration::from_secs(30));
    assert_eq!(status.code(), Some(130), "128 + SIGINT");
    let c = s.inspect(&name);
    assert_eq!(c["State"]["Status"], "exited", "{c}");
    assert_eq!(c["State"]["ExitCode"], 130, "{c}");
}

#[test]
fn a_sigterm_to_a_foreground_run_reaches_the_commands_handler() {
    if !root_or_skip("a_sigterm_to_a_foreground_run_reaches_the_commands_handler") {
        return;
    }
    let s = Stasis::new();
    let name = unique_name();
    // PID 1 of its own namespace: a handler it sets up is what runs.
    let mut fg = foreground(
        &s,
        &name,
        &[
            "--",
            "sh",
            "-c",
            "trap 'echo got-term; exit 7' TERM; echo ready; sleep 60 & wait",
        ],
    );
    send(&fg, rustix::process::Signal::TERM);
    let status = wait_bounded(&mut fg.0, Duration::from_secs(30));
    assert_eq!(status.code(), Some(7), "the handler's exit status");
    let logs = s.run(&["logs", &name]).ok();
    assert!(logs.stdout.contains("got-term"), "{logs:?}");
}

/// A `stasis` command under a pseudo-terminal of `script`'s, of `rows` ×
/// `cols`, with what it prints collected and keys sent to it; killed (by
/// its PID) on drop.
struct Terminal {
    child: Child,
    keys: Option<ChildStdin>,
    seen: Arc<Mutex<Vec<u8>>>,
}

/// `arg` quoted for `sh`.
fn quoted(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', "'\\''"))
}

impl Terminal {
    fn start(s: &Stasis, args: &[&str], rows: u16, cols: u16) -> Terminal {
        let mut line = format!("stty rows {rows} cols {cols}; exec {}", quoted(STASIS));
        line.push_str(&format!(" --root {}", quoted(&s.root.0.to_string_lossy())));
        for a in args {
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

    fn seen(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().expect("lock")).into_owned()
    }

    /// Waits (bounded) until the terminal has shown `text` `times` times.
    fn wait_for(&self, text: &str, times: usize) {
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

    fn type_keys(&mut self, keys: &[u8]) {
        let k = self.keys.as_mut().expect("keys");
        k.write_all(keys).expect("type");
        k.flush().expect("flush");
    }

    fn exit_code(&mut self) -> Option<i32> {
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

#[test]
fn run_it_gives_a_shell_on_a_terminal_of_the_outer_ones_size() {
    if !root_or_skip("run_it_gives_a_shell_on_a_terminal_of_the_outer_ones_size") {
        return;
    }
    let s = Stasis::new();
    let name = unique_name();
    let mut t = Terminal::start(&s, &["run", "-it", "--name", &name, "--", "sh"], 33, 101);
    t.wait_for("# ", 1);
    t.type_keys(b"stty size; tty\n");
    t.wait_for("33 101", 1);
    t.wait_for("/dev/pts/", 1);
    // The arithmetic is done inside: its echo of the command line does
    // not contain the answer.
    t.type_keys(b"echo $((6*7))\n");
    t.wait_for("42", 1);
    t.type_keys(b"exit 3\n");
    assert_eq!(t.exit_code(), Some(3), "the shell's status; {:?}", t.seen());
    // A TTY's output is in its log too, as one stream.
    let logs = s.run(&["logs", &name]).ok();
    assert!(logs.stdout.contains("42"), "{logs:?}");
}

#[test]
fn run_i_feeds_piped_stdin_and_closes_it_at_its_end() {
    if !root_or_skip("run_i_feeds_piped_stdin_and_closes_it_at_its_end") {
        return;
    }
    let s = Stasis::new();
    let mut run = s.spawn(&["run", "-i", "--rm", "--", "cat"]);
    let mut stdin = run.stdin.take().expect("piped");
    stdin.write_all(b"hi\n").expect("write");
    // cat ends only once its stdin does.
    drop(stdin);
    let status = wait_bounded(&mut run, Duration::from_secs(30));
    let mut out = String::new();
    run.stdout
        .take()
        .expect("piped")
        .read_to_string(&mut out)
        .expect("stdout");
    assert_eq!(out, "hi\n");
    assert_eq!(status.code(), Some(0));

    // Without -i, the container's stdin is /dev/null: nothing reaches it.
    let mut run = s.spawn(&["run", "--rm", "--", "sh", "-c", "cat; echo end"]);
    let mut stdin = run.stdin.take().expect("piped");
    let _ = stdin.write_all(b"ignored\n");
    drop(stdin);
    let status = wait_bounded(&mut run, Duration::from_secs(30));
    let mut out = String::new();
    run.stdout
        .take()
        .expect("piped")
        .read_to_string(&mut out)
        .expect("stdout");
    assert_eq!(out, "end\n");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn ctrl_p_ctrl_q_detaches_and_attach_gets_the_shell_back() {
    if !root_or_skip("ctrl_p_ctrl_q_detaches_and_attach_gets_the_shell_back") {
        return;
    }
    let s = Stasis::new();
    let name = unique_name();
    let mut t = Terminal::start(&s, &["run", "-it", "--name", &name, "--", "sh"], 24, 80);
    t.wait_for("# ", 1);
    t.type_keys(b"echo $((100+1))\n");
    t.wait_for("101", 1);
    t.type_keys(b"\x10\x11");
    assert_eq!(t.exit_code(), Some(0), "detached; {:?}", t.seen());
    assert_eq!(s.inspect(&name)["State"]["Status"], "running");

    // Another sequence, docker's format: the default no longer detaches.
    let mut t = Terminal::start(&s, &["attach", "--detach-keys", "ctrl-x,x", &name], 24, 80);
    t.type_keys(b"echo $((200+2))\n");
    t.wait_for("202", 1);
    // Passed on to the shell; ^U then clears them from its line.
    t.type_keys(b"\x10\x11\x15echo $((300+3))\n");
    t.wait_for("303", 1);
    t.type_keys(b"\x18x");
    assert_eq!(t.exit_code(), Some(0), "detached; {:?}", t.seen());
    assert_eq!(s.inspect(&name)["State"]["Status"], "running");

    let mut t = Terminal::start(&s, &["attach", &name], 24, 80);
    t.type_keys(b"exit 5\n");
    assert_eq!(t.exit_code(), Some(5), "the shell's status; {:?}", t.seen());
    assert_eq!(s.inspect(&name)["State"]["ExitCode"], 5);

    s.run(&["attach", &name]).fails_with(4, "is not running");
}

#[test]
fn exec_it_gives_a_shell_on_a_terminal_of_its_own() {
    if !root_or_skip("exec_it_gives_a_shell_on_a_terminal_of_its_own") {
        return;
    }
    let s = Stasis::new();
    let name = unique_name();
    s.run(&["run", "-d", "--name", &name, "--", "sleep", "60"])
        .ok();
    let mut t = Terminal::start(&s, &["exec", "-it", &name, "--", "sh"], 30, 90);
    t.wait_for("# ", 1);
    // Its own terminal, of the outer one's size, in the container's PID
    // namespace (sleep is its PID 1).
    t.type_keys(b"stty size; tty; cat /proc/1/comm\n");
    t.wait_for("30 90", 1);
    t.wait_for("/dev/pts/", 1);
    t.wait_for("\r\nsleep\r\n", 1);
    t.type_keys(b"exit 6\n");
    assert_eq!(t.exit_code(), Some(6), "the shell's status; {:?}", t.seen());
    assert_eq!(s.inspect(&name)["State"]["Status"], "running");
}

/// Starts `exec NAME -- sh -c SCRIPT` (its own process group, so no
/// terminal's keys reach it) and waits until the command prints `ready`.
fn exec_ready(s: &Stasis, name: &str, script: &str) -> Foreground {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let mut child = s
        .command(&["exec", name, "--", "sh", "-c", script])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn stasis exec");
    let stdout = child.stdout.take().expect("stdout");
    let fg = Foreground(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the exec'd command to say ready");
    assert_eq!(line, "ready");
    // The rest of its output, for the caller.
    std::thread::spawn(move || while rx.recv().is_ok() {});
    fg
}

#[test]
fn signals_to_exec_reach_the_command_and_exec_exits_with_its_status() {
    if !root_or_skip("signals_to_exec_reach_the_command_and_exec_exits_with_its_status") {
        return;
    }
    let s = Stasis::new();
    let name = unique_name();
    s.run(&["run", "-d", "--name", &name, "--", "sleep", "1000"])
        .ok();
    let script = "trap 'exit 7' TERM; trap 'exit 8' INT; trap 'exit 9' USR1; \
                  echo ready; while :; do sleep 0.1; done";
    for (signal, code) in [
        (rustix::process::Signal::TERM, 7),
        (rustix::process::Signal::INT, 8),
        (rustix::process::Signal::USR1, 9),
    ] {
        let mut fg = exec_ready(&s, &name, script);
        send(&fg, signal);
        let status = wait_bounded(&mut fg.0, Duration::from_secs(30));
        assert_eq!(
            status.code(),
            Some(code),
            "{signal:?}: the handler's status"
        );
    }
}
