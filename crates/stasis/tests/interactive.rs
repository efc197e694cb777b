//! An attached `run` (root only, real kernel): the signals it gets go to
//! the container's main process, and it exits with the container's status.

mod common;

use std::process::Child;
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
