//! Pause without harm against a real RabbitMQ broker (root only): a frozen
//! consumer's unacknowledged messages go to another consumer at once when
//! the pause resets its connections, and stay stuck without it; after the
//! unpause the consumer reconnects by itself and consumes again.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use testkit::rabbitmq::RabbitMq;

/// Debian's pika is for the system interpreter.
const PYTHON: &str = "/usr/bin/python3";

/// A consumer outside any test cgroup, killed on drop.
struct Consumer(Child);

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn lines(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn got(out: &Path) -> Vec<String> {
    lines(out)
        .into_iter()
        .filter(|l| l.starts_with("got "))
        .collect()
}

fn publish(broker: &RabbitMq, queue: &str, first: u32, count: u32) {
    run_bounded(Command::new(PYTHON).args([
        &workload("rabbit_publish.py"),
        &broker.url(),
        queue,
        &first.to_string(),
        &count.to_string(),
    ]))
    .ok();
}

fn consumer_args(broker: &RabbitMq, queue: &str, out: &Path, ack: &str) -> Vec<String> {
    vec![
        workload("rabbit_consumer.py"),
        broker.url(),
        queue.to_owned(),
        out.display().to_string(),
        ack.to_owned(),
        "5".to_owned(),
    ]
}

/// A holds five unacknowledged messages in a frozen cgroup; B, acking,
/// starts once A has them all.
struct Scene {
    a: TestCgroup,
    a_out: PathBuf,
    b_out: PathBuf,
    _b: Consumer,
}

fn scene(broker: &RabbitMq, scratch: &Path, queue: &str) -> Scene {
    let a_out = scratch.join(format!("{queue}-a"));
    let b_out = scratch.join(format!("{queue}-b"));
    let mut a = TestCgroup::new(V::V1);
    let args = consumer_args(broker, queue, &a_out, "hold");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    a.spawn(PYTHON, &args);
    wait_until(Duration::from_secs(30), "A to connect", || {
        lines(&a_out).iter().any(|l| l == "connected")
    });
    publish(broker, queue, 0, 5);
    wait_until(Duration::from_secs(30), "A to hold 5 messages", || {
        got(&a_out).len() == 5
    });
    let b = Consumer(
        Command::new(PYTHON)
            .args(consumer_args(broker, queue, &b_out, "ack"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start consumer B"),
    );
    wait_until(Duration::from_secs(30), "B to connect", || {
        lines(&b_out).iter().any(|l| l == "connected")
    });
    Scene {
        a,
        a_out,
        b_out,
        _b: b,
    }
}

#[test]
fn a_paused_consumers_messages_go_to_another_at_once_only_with_a_reset() {
    if !root_or_skip("a_paused_consumers_messages_go_to_another_at_once_only_with_a_reset") {
        return;
    }
    let name = unique_name();
    let broker = RabbitMq::start(&name);
    let scratch = Scratch::new();
    let s = Stasis::new();

    // Without the flag the broker keeps A's messages for A: B gets none.
    let kept = scene(&broker, &scratch.0, "kept");
    s.run(&["pause", "--cgroup", &kept.a.dir_str()]).ok();
    std::thread::sleep(Duration::from_secs(5));
    assert!(got(&kept.b_out).is_empty(), "{:?}", lines(&kept.b_out));
    s.run(&["unpause", "--cgroup", &kept.a.dir_str()]).ok();
    drop(kept);

    // With it, A's connection is reset once it is frozen, and the broker
    // redelivers its five messages to B.
    let reset = scene(&broker, &scratch.0, "reset");
    let run = s
        .run(&[
            "pause",
            "--reset-connections",
            "--cgroup",
            &reset.a.dir_str(),
        ])
        .ok();
    assert!(
        run.stderr.starts_with("stasis: reset ") && !run.stderr.contains("reset 0 "),
        "{run:?}"
    );
    wait_until(Duration::from_secs(10), "B to get A's messages", || {
        got(&reset.b_out).len() >= 5
    });
    let mut redelivered: Vec<String> = got(&reset.b_out);
    redelivered.sort();
    assert_eq!(
        redelivered,
        (0..5)
            .map(|i| format!("got m{i} redelivered=True"))
            .collect::<Vec<_>>()
    );
    assert!(reset.a.kernel_frozen(&reset.a.dir), "A stays paused");

    // After the unpause A finds its connection gone, reconnects by its own
    // retry and gets messages again.
    s.run(&["unpause", "--cgroup", &reset.a.dir_str()]).ok();
    wait_until(Duration::from_secs(30), "A to reconnect", || {
        lines(&reset.a_out)
            .iter()
            .filter(|l| *l == "connected")
            .count()
            == 2
    });
    publish(&broker, "reset", 5, 20);
    wait_until(Duration::from_secs(30), "A to consume again", || {
        got(&reset.a_out).len() > 5
    });
}
