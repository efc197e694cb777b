//! The crate against the real kernel (root): each test makes a network
//! namespace of its own (`ip netns add stasis-test-<random>`, loopback up),
//! runs listeners and connections inside it, and removes it in a Drop guard.
//! Processes that must hold sockets are `sleep` children that inherited
//! them, killed by PID in their own guard.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use connections::{Endpoint, NetNs, Netfilter, Scope, Tag};

/// Every wait on a socket is bounded by this.
const WAIT: Duration = Duration::from_secs(5);

fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!(
        "{prefix}{}-{}-{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

fn run(command: &mut Command) {
    let status = command.status().expect("run ip");
    assert!(status.success(), "{command:?}: {status}");
}

/// A network namespace of the test's own, pinned at /run/netns/NAME.
struct TestNs {
    name: String,
    netns: NetNs,
}

impl TestNs {
    fn new() -> TestNs {
        let name = unique("stasis-test-");
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = TestNs {
            netns: NetNs::new(format!("/run/netns/{name}")),
            name,
        };
        run(Command::new("ip").args(["-n", &ns.name, "link", "set", "lo", "up"]));
        ns
    }

    /// Runs `work` on a thread inside the namespace (sockets made there
    /// belong to it and can be used from any thread afterwards).
    fn inside<T: Send>(&self, work: impl FnOnce() -> T + Send) -> T {
        self.netns.run(work).expect("run in the test namespace")
    }

    fn listen(&self, addr: &str) -> TcpListener {
        self.inside(|| TcpListener::bind(addr).expect("bind a listener"))
    }

    fn connect(&self, to: SocketAddr) -> io::Result<TcpStream> {
        self.inside(|| TcpStream::connect_timeout(&to, WAIT))
    }

    /// A connection to `listener`: the client end and the accepted end.
    fn pair(&self, listener: &TcpListener) -> (TcpStream, TcpStream) {
        let client = self
            .connect(listener.local_addr().expect("listener address"))
            .expect("connect to the listener");
        let (server, _) = listener.accept().expect("accept");
        for s in [&client, &server] {
            s.set_read_timeout(Some(WAIT)).expect("set read timeout");
        }
        (client, server)
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A process that holds sockets: `sleep` with the given descriptors
/// inherited. The test keeps its own descriptors of the same sockets to use
/// them; the scope under test is this process's descriptor table.
struct Holder {
    child: Child,
}

impl Holder {
    fn new(fds: &[BorrowedFd<'_>]) -> Holder {
        let mut sleep = Command::new("sleep");
        sleep.arg("600");
        Holder::spawn(&mut sleep, fds)
    }

    /// Spawns `command` with `fds` inherited (at their own numbers).
    fn spawn(command: &mut Command, fds: &[BorrowedFd<'_>]) -> Holder {
        // Descriptors are inherited only while not close-on-exec; one spawn
        // at a time, so no other test's child inherits them too.
        static SPAWN: Mutex<()> = Mutex::new(());
        let _one = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        let flags = rustix::io::FdFlags::CLOEXEC;
        for fd in fds {
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty()).expect("clear FD_CLOEXEC");
        }
        let child = command.stdin(Stdio::null()).spawn();
        for fd in fds {
            rustix::io::fcntl_setfd(fd, flags).expect("set FD_CLOEXEC");
        }
        Holder {
            child: child.expect("spawn a socket holder"),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a read on a reset socket gives: the error kind, or `None` for EOF.
fn read_after_reset(stream: &mut TcpStream) -> Option<io::ErrorKind> {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => None,
        Ok(n) => panic!("read {n} bytes from a reset connection"),
        Err(e) => {
            assert!(
                !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ),
                "the read waited out its timeout: the connection was not reset"
            );
            Some(e.kind())
        }
    }
}

fn assert_talks(a: &mut TcpStream, b: &mut TcpStream) {
    a.write_all(b"ping").expect("write");
    let mut buf = [0u8; 4];
    b.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"ping");
    b.write_all(b"pong").expect("write back");
    a.read_exact(&mut buf).expect("read back");
    assert_eq!(&buf, b"pong");
}

/// Polls `check` every 10 ms until it gives a value, for at most [`WAIT`].
fn wait_for<T>(mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn proc_root() -> &'static Path {
    Path::new("/proc")
}

#[test]
fn namespace_scope_resets_every_connection_and_keeps_the_listener() {
    if !testkit::root_or_skip("namespace_scope_resets_every_connection_and_keeps_the_listener") {
        return;
    }
    let ns = TestNs::new();
    let listener = ns.listen("127.0.0.1:0");
    let (mut client1, mut server1) = ns.pair(&listener);
    let (mut client2, _server2) = ns.pair(&listener);

    let before = connections::list(&ns.netns, &Scope::Namespace, proc_root()).expect("list");
    assert_eq!(before.len(), 5, "{before:#?}");
    assert_eq!(before.iter().filter(|s| s.is_listening()).count(), 1);

    let reset = connections::reset(&ns.netns, &Scope::Namespace, proc_root()).expect("reset");
    eprintln!(
        "namespace scope: destroyed {}, already gone {}",
        reset.destroyed, reset.already_gone
    );
    assert_eq!(reset.listeners.len(), 1);
    assert_eq!(
        reset.listeners[0].local,
        listener.local_addr().expect("address")
    );
    // Both ends of each connection are in the namespace: destroying one end
    // resets the other over loopback before its own turn comes.
    assert_eq!(reset.destroyed + reset.already_gone, 4, "{reset:?}");
    assert!(reset.destroyed >= 2, "{reset:?}");

    let seen: Vec<_> = [&mut client1, &mut client2, &mut server1]
        .into_iter()
        .map(read_after_reset)
        .collect();
    eprintln!("namespace scope, reads after the reset: {seen:?}");
    for kind in &seen {
        assert!(
            matches!(
                kind,
                Some(io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset)
            ),
            "{seen:?}"
        );
    }

    let after = connections::list(&ns.netns, &Scope::Namespace, proc_root()).expect("list");
    assert!(after.iter().all(|s| s.is_listening()), "{after:#?}");
    let (mut client, mut server) = ns.pair(&listener);
    assert_talks(&mut client, &mut server);
}

#[test]
fn process_scope_resets_only_that_process_and_its_queued_connections() {
    if !testkit::root_or_skip("process_scope_resets_only_that_process_and_its_queued_connections") {
        return;
    }
    let ns = TestNs::new();
    let listener_a = ns.listen("127.0.0.1:0");
    let listener_b = ns.listen("127.0.0.1:0");
    let (mut client_a, mut server_a) = ns.pair(&listener_a);
    let (mut client_b, mut server_b) = ns.pair(&listener_b);
    // Completed by the kernel, never accepted: in A's accept queue.
    let mut queued = ns
        .connect(listener_a.local_addr().expect("address"))
        .expect("connect into the backlog");
    queued.set_read_timeout(Some(WAIT)).expect("timeout");

    let holder_a = Holder::new(&[listener_a.as_fd(), server_a.as_fd()]);
    let holder_b = Holder::new(&[listener_b.as_fd(), server_b.as_fd()]);
    let scope = Scope::Processes(vec![holder_a.pid()]);

    // The server end of the queued connection appears once loopback has
    // delivered the client's ACK, which may come after connect() returned.
    let mine = wait_for(|| {
        let mine = connections::list(&ns.netns, &scope, proc_root()).expect("list");
        (mine.len() == 3).then_some(mine)
    })
    .expect("the listener, the accepted and the queued connection");
    assert_eq!(mine.iter().filter(|s| s.inode == 0).count(), 1, "{mine:#?}");

    let reset = connections::reset(&ns.netns, &scope, proc_root()).expect("reset");
    assert_eq!((reset.destroyed, reset.already_gone), (2, 0), "{reset:?}");
    assert_eq!(reset.listeners.len(), 1);
    assert_eq!(
        reset.listeners[0].local,
        listener_a.local_addr().expect("address")
    );

    let peer = read_after_reset(&mut client_a);
    let own = read_after_reset(&mut server_a);
    let backlog = read_after_reset(&mut queued);
    eprintln!("process scope: peer read {peer:?}, own read {own:?}, queued peer read {backlog:?}");
    assert_eq!(peer, Some(io::ErrorKind::ConnectionReset));
    assert_eq!(own, Some(io::ErrorKind::ConnectionAborted));
    assert_eq!(backlog, Some(io::ErrorKind::ConnectionReset));

    // The other process's connection survives and keeps working.
    assert_talks(&mut client_b, &mut server_b);
    let theirs = connections::list(
        &ns.netns,
        &Scope::Processes(vec![holder_b.pid()]),
        proc_root(),
    )
    .expect("list");
    assert_eq!(theirs.len(), 2, "{theirs:#?}");

    // A's listener accepts again (the aborted queued connection comes out
    // of the backlog first, dead).
    let mut client = ns
        .connect(listener_a.local_addr().expect("address"))
        .expect("connect after the reset");
    client.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut server = loop {
        let (mut s, from) = listener_a.accept().expect("accept after the reset");
        if from == client.local_addr().expect("address") {
            break s;
        }
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        let dead = read_after_reset(&mut s);
        eprintln!("process scope: the aborted queued connection, accepted, reads {dead:?}");
        assert!(dead.is_some(), "a dead queued connection");
    };
    server.set_read_timeout(Some(WAIT)).expect("timeout");
    assert_talks(&mut client, &mut server);
}

#[test]
fn ipv6_connections_are_reset_too() {
    if !testkit::root_or_skip("ipv6_connections_are_reset_too") {
        return;
    }
    let ns = TestNs::new();
    let listener = ns.listen("[::1]:0");
    let (mut client, server) = ns.pair(&listener);
    let holder = Holder::new(&[listener.as_fd(), server.as_fd()]);

    let sockets = connections::list(&ns.netns, &Scope::Namespace, proc_root()).expect("list");
    assert_eq!(sockets.len(), 3, "{sockets:#?}");
    assert!(sockets.iter().all(|s| s.local.is_ipv6()));

    let reset = connections::reset(
        &ns.netns,
        &Scope::Processes(vec![holder.pid()]),
        proc_root(),
    )
    .expect("reset");
    assert_eq!(
        (reset.destroyed, reset.listeners.len()),
        (1, 1),
        "{reset:?}"
    );
    assert_eq!(
        read_after_reset(&mut client),
        Some(io::ErrorKind::ConnectionReset)
    );

    let (mut client, mut server) = ns.pair(&listener);
    assert_talks(&mut client, &mut server);
}

#[test]
fn the_reject_rule_refuses_new_connections_until_removed() {
    if !testkit::root_or_skip("the_reject_rule_refuses_new_connections_until_removed") {
        return;
    }
    let ns = TestNs::new();
    let listener = ns.listen("0.0.0.0:0");
    let other = ns.listen("127.0.0.1:0");
    let port = listener.local_addr().expect("address").port();
    let target: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let (mut kept_client, mut kept_server) = ns.pair(&listener);
    let holder = Holder::new(&[listener.as_fd()]);

    let scope = Scope::Processes(vec![holder.pid()]);
    let sockets = connections::list(&ns.netns, &scope, proc_root()).expect("list");
    let endpoints = Endpoint::of_listeners(&sockets);
    assert_eq!(endpoints, vec![Endpoint::V4 { addr: None, port }]);

    let tag = Tag::new(unique("t")).expect("tag");
    let netfilter = Netfilter::new();
    netfilter
        .add(&ns.netns, &tag, &endpoints)
        .expect("add the rule");
    netfilter
        .add(&ns.netns, &tag, &endpoints)
        .expect("add it again");
    assert_eq!(
        netfilter.list(&ns.netns).expect("list tables"),
        vec![tag.clone()]
    );

    let refused = ns.connect(target).expect_err("a connect while paused");
    eprintln!("connect while the rule is in place: {refused}");
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    // Only that listener's port, and only new connections.
    let (mut c, mut s) = ns.pair(&other);
    assert_talks(&mut c, &mut s);
    assert_talks(&mut kept_client, &mut kept_server);

    netfilter.remove(&ns.netns, &tag).expect("remove the rule");
    netfilter
        .remove(&ns.netns, &tag)
        .expect("remove an absent rule");
    assert!(netfilter.list(&ns.netns).expect("list tables").is_empty());
    let mut client = ns.connect(target).expect("connect after the removal");
    let (mut server, _) = listener.accept().expect("accept");
    client.set_read_timeout(Some(WAIT)).expect("timeout");
    server.set_read_timeout(Some(WAIT)).expect("timeout");
    assert_talks(&mut client, &mut server);
}

#[test]
fn the_reject_rule_covers_ipv6_and_dual_stack_listeners() {
    if !testkit::root_or_skip("the_reject_rule_covers_ipv6_and_dual_stack_listeners") {
        return;
    }
    let ns = TestNs::new();
    let loopback6 = ns.listen("[::1]:0");
    let dual = ns.listen("[::]:0");
    let sockets = connections::list(&ns.netns, &Scope::Namespace, proc_root()).expect("list");
    let endpoints = Endpoint::of_listeners(&sockets);
    let p6 = loopback6.local_addr().expect("address").port();
    let pd = dual.local_addr().expect("address").port();
    assert_eq!(endpoints.len(), 2, "{endpoints:?}");
    assert!(endpoints.contains(&Endpoint::V6 {
        addr: Some(std::net::Ipv6Addr::LOCALHOST),
        port: p6
    }));
    assert!(endpoints.contains(&Endpoint::Any { port: pd }));

    let tag = Tag::new(unique("v6-")).expect("tag");
    let netfilter = Netfilter::new();
    netfilter
        .add(&ns.netns, &tag, &endpoints)
        .expect("add the rule");
    for to in [
        format!("[::1]:{p6}"),
        format!("[::1]:{pd}"),
        format!("127.0.0.1:{pd}"),
    ] {
        let err = ns
            .connect(to.parse().expect("address"))
            .expect_err("refused");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{to}");
    }
    netfilter.remove(&ns.netns, &tag).expect("remove the rule");
    for (to, listener) in [
        (format!("[::1]:{p6}"), &loopback6),
        (format!("127.0.0.1:{pd}"), &dual),
    ] {
        let _client = ns
            .connect(to.parse().expect("address"))
            .expect("connect after the removal");
        listener.accept().expect("accept");
    }
}

#[test]
fn a_rule_left_by_a_killed_pause_is_found_and_removed_by_its_tag() {
    if !testkit::root_or_skip("a_rule_left_by_a_killed_pause_is_found_and_removed_by_its_tag") {
        return;
    }
    let ns = TestNs::new();
    let listener = ns.listen("127.0.0.1:0");
    let addr = listener.local_addr().expect("address");
    let endpoints = [Endpoint::V4 {
        addr: Some(std::net::Ipv4Addr::LOCALHOST),
        port: addr.port(),
    }];
    let tag = Tag::new(unique("killed-")).expect("tag");
    let unrelated = Tag::new(unique("other-")).expect("tag");
    {
        // The pause that added it, gone without removing anything.
        let pause = Netfilter::new();
        pause
            .add(&ns.netns, &tag, &endpoints)
            .expect("add the rule");
        pause
            .add(&ns.netns, &unrelated, &[])
            .expect("add another table");
    }
    assert_eq!(
        ns.connect(addr).expect_err("refused").kind(),
        io::ErrorKind::ConnectionRefused
    );

    let unpause = Netfilter::new();
    let mut found = unpause.list(&ns.netns).expect("list tables");
    found.sort();
    let mut expected = vec![tag.clone(), unrelated.clone()];
    expected.sort();
    assert_eq!(found, expected);
    unpause.remove(&ns.netns, &tag).expect("remove by tag");
    assert_eq!(
        unpause.list(&ns.netns).expect("list tables"),
        vec![unrelated]
    );
    let _client = ns.connect(addr).expect("connect after the removal");
    listener.accept().expect("accept");
}

#[test]
fn errors_name_the_namespace_and_say_not_found() {
    if !testkit::root_or_skip("errors_name_the_namespace_and_say_not_found") {
        return;
    }
    let missing = NetNs::new(format!("/run/netns/{}", unique("stasis-test-missing-")));
    let err =
        connections::reset(&missing, &Scope::Namespace, proc_root()).expect_err("no namespace");
    assert!(err.is_not_found(), "{err:?}");
    assert!(err
        .to_string()
        .contains(&missing.path().display().to_string()));
    let err = Netfilter::with_program("/nonexistent/nft")
        .list(&TestNs::new().netns)
        .expect_err("no nft");
    assert!(err.is_not_found(), "{err:?}");
}

/// The pause of a pod: fence its listeners and reset its connections in
/// one call; the unpause removes the fence.
#[test]
fn fence_and_reset_refuses_new_connections_and_resets_the_old() {
    if !testkit::root_or_skip("fence_and_reset_refuses_new_connections_and_resets_the_old") {
        return;
    }
    let ns = TestNs::new();
    let listener = ns.listen("127.0.0.1:0");
    let addr = listener.local_addr().expect("address");
    let (mut client, server) = ns.pair(&listener);
    let holder = Holder::new(&[listener.as_fd(), server.as_fd()]);
    let scope = Scope::Processes(vec![holder.pid()]);

    let found = connections::listeners(&ns.netns, &scope, proc_root()).expect("listeners");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].local, addr);

    let tag = Tag::new(unique("pod-")).expect("tag");
    let netfilter = Netfilter::new();
    let reset = connections::fence_and_reset(&ns.netns, &scope, proc_root(), &netfilter, &tag)
        .expect("fence and reset");
    assert_eq!(
        (reset.destroyed, reset.listeners.len()),
        (1, 1),
        "{reset:?}"
    );
    assert_eq!(
        read_after_reset(&mut client),
        Some(io::ErrorKind::ConnectionReset)
    );
    assert_eq!(
        ns.connect(addr).expect_err("refused while fenced").kind(),
        io::ErrorKind::ConnectionRefused
    );

    netfilter.remove(&ns.netns, &tag).expect("remove the fence");
    let (mut client, mut server) = ns.pair(&listener);
    assert_talks(&mut client, &mut server);
}

/// A v1 freezer cgroup of the test's own, with the processes it froze.
/// Drop thaws it first (a frozen process cannot die), then kills its
/// members, then removes it.
struct TestFreezer {
    path: PathBuf,
    members: Vec<Holder>,
}

impl TestFreezer {
    /// A cgroup in the host's v1 freezer hierarchy, wherever it is mounted;
    /// `None` on a host without one.
    fn new() -> Option<TestFreezer> {
        let hierarchies =
            freezer::Hierarchies::detect(Path::new("/proc")).expect("read /proc/self/mountinfo");
        let mount = &hierarchies.get(freezer::Version::V1)?.mount_point;
        let path = mount.join(unique("stasis-test-"));
        std::fs::create_dir(&path).expect("create a v1 freezer cgroup");
        Some(TestFreezer {
            path,
            members: Vec::new(),
        })
    }

    /// Moves `holder` into the cgroup; it is killed with the cgroup.
    fn adopt(&mut self, holder: Holder) -> u32 {
        let pid = holder.pid();
        self.members.push(holder);
        std::fs::write(self.path.join("cgroup.procs"), pid.to_string())
            .expect("move into the cgroup");
        pid
    }

    fn set(&self, state: &str) {
        std::fs::write(self.path.join("freezer.state"), state).expect("write freezer.state");
    }

    fn freeze(&self) {
        self.set("FROZEN");
        let frozen = wait_for(|| {
            let state = std::fs::read_to_string(self.path.join("freezer.state"))
                .expect("read freezer.state");
            (state.trim() == "FROZEN").then_some(())
        });
        assert!(
            frozen.is_some(),
            "the cgroup did not freeze within {WAIT:?}"
        );
    }
}

impl Drop for TestFreezer {
    fn drop(&mut self) {
        let _ = std::fs::write(self.path.join("freezer.state"), "THAWED");
        self.members.clear();
        let _ = wait_for(|| std::fs::remove_dir(&self.path).ok());
    }
}

/// The scenario of `pause --reset-connections`: the process that holds a
/// connection is frozen while its connection is destroyed; its peer gets
/// the reset at once, and after the thaw its own read fails with
/// ECONNABORTED.
#[test]
fn a_frozen_process_is_reset_and_sees_econnaborted_after_the_thaw() {
    if !testkit::root_or_skip("a_frozen_process_is_reset_and_sees_econnaborted_after_the_thaw") {
        return;
    }
    let ns = TestNs::new();
    let listener = ns.listen("127.0.0.1:0");
    let (mut client, server) = ns.pair(&listener);
    let Some(mut freezer) = TestFreezer::new() else {
        eprintln!("skipping: this host has no v1 freezer hierarchy");
        return;
    };
    // Reads one byte from the inherited socket and prints what it got.
    let script = "import errno, socket, sys\n\
                  s = socket.socket(fileno=int(sys.argv[1]))\n\
                  try:\n    print('data' if s.recv(1) else 'eof')\n\
                  except OSError as e:\n    print(errno.errorcode.get(e.errno, e.errno))\n";
    let mut reader = Command::new("/usr/bin/python3");
    reader
        .args(["-c", script, &server.as_raw_fd().to_string()])
        .stdout(Stdio::piped());
    let pid = freezer.adopt(Holder::spawn(&mut reader, &[server.as_fd()]));
    drop(server);
    freezer.freeze();

    let reset =
        connections::reset(&ns.netns, &Scope::Processes(vec![pid]), proc_root()).expect("reset");
    assert_eq!((reset.destroyed, reset.already_gone), (1, 0), "{reset:?}");
    assert_eq!(
        read_after_reset(&mut client),
        Some(io::ErrorKind::ConnectionReset)
    );

    freezer.set("THAWED");
    let reader = &mut freezer.members[0].child;
    let exited = wait_for(|| reader.try_wait().expect("wait for the reader"));
    assert!(
        exited.is_some_and(|s| s.success()),
        "the reader: {exited:?}"
    );
    let mut printed = String::new();
    reader
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut printed)
        .expect("read the reader's output");
    eprintln!("frozen process, after the thaw, read: {}", printed.trim());
    assert_eq!(printed.trim(), "ECONNABORTED");
}
