//! Pause, unpause and state of one cgroup: the strategies, docker's
//! semantics, and the rule that a failed freeze leaves the target thawed.

use std::time::Duration;

use serde::Serialize;

use crate::cgroup::{Cgroup, Choice, Placement, Target};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::hierarchies::Hierarchies;
use crate::state::{FrozenBy, Phase, State};
use crate::{direct, safety, subgroup};

/// How to freeze a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Direct; the subgroup strategy when the kernel refuses the cgroup's own
    /// freeze file with EPERM, or when a subgroup is already there.
    #[default]
    Auto,
    /// Write the cgroup's own freeze file.
    Direct,
    /// Move the processes into a frozen child ([`crate::subgroup`]).
    Subgroup,
}

impl Strategy {
    /// `"auto"`, `"direct"` or `"subgroup"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Auto => "auto",
            Strategy::Direct => "direct",
            Strategy::Subgroup => "subgroup",
        }
    }
}

/// The default time a freeze or thaw may take before it is given up.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Freezes and thaws cgroups. Cheap to build; holds only options.
#[derive(Debug, Clone)]
pub struct Freezer {
    timeout: Duration,
    strategy: Strategy,
}

impl Default for Freezer {
    fn default() -> Self {
        Freezer {
            timeout: DEFAULT_TIMEOUT,
            strategy: Strategy::Auto,
        }
    }
}

/// What a pause or unpause did, and the state it left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The strategy used: `direct` or `subgroup`.
    pub strategy: Strategy,
    /// The state afterwards: as confirmed by the freeze, or read back from
    /// the kernel after a thaw.
    pub state: State,
}

impl Freezer {
    /// A freezer with the default timeout and the `auto` strategy.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long one pause or unpause may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How to pause.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Reads the freeze state of `cg` from the kernel, taking a subgroup left
    /// by the subgroup strategy into account.
    pub fn state(&self, cg: &Cgroup) -> Result<State> {
        let own = direct::state(cg)?;
        let sub = subgroup::existing(cg);
        let mut state = State {
            phase: own.phase,
            frozen_by: own.frozen_by,
            ancestor: own.ancestor,
            subgroup: sub.as_ref().map(|s| s.path.clone()),
        };
        if own.phase == Phase::Thawed {
            if let Some(sub) = sub {
                let inner = direct::state(&sub)?;
                if inner.frozen_by == Some(FrozenBy::Itself) {
                    // Frozen only once every process has moved in.
                    let all_in = subgroup::source_is_empty(cg)?;
                    state.phase = if inner.phase == Phase::Frozen && all_in {
                        Phase::Frozen
                    } else {
                        Phase::Freezing
                    };
                    state.frozen_by = Some(FrozenBy::Subgroup);
                }
            }
        }
        Ok(state)
    }

    /// Whether `cg` is frozen: [`State::is_frozen`] of [`Freezer::state`],
    /// from fewer reads. The effective phase alone answers (it counts an
    /// ancestor's freeze, so the ancestors need not be read); only a
    /// cgroup that is not frozen itself but has a subgroup needs the whole
    /// state.
    pub fn is_frozen(&self, cg: &Cgroup) -> Result<bool> {
        if direct::frozen(cg)? {
            return Ok(true);
        }
        match subgroup::existing(cg) {
            None => Ok(false),
            Some(_) => Ok(self.state(cg)?.is_frozen()),
        }
    }

    /// Whether a thaw of `cg` may have anything of its own to undo (what
    /// [`holds_its_own`] needs the whole state to say): its own
    /// freeze file asks for a freeze, or a subgroup exists. `false` is
    /// what [`Freezer::unpause`] needs to leave a hierarchy alone without
    /// reading its whole state (the effective phase and the ancestors).
    fn may_be_ours(cg: &Cgroup) -> Result<bool> {
        Ok(direct::asks_itself(cg)? || subgroup::existing(cg).is_some())
    }

    /// Freezes `cg` (docker's `pause`): refuses what [`safety::check`]
    /// refuses, errs with [`Error::AlreadyPaused`] if it is frozen already,
    /// and on any failure thaws it again before reporting.
    pub fn freeze(&self, hierarchies: &Hierarchies, cg: &Cgroup) -> Result<Outcome> {
        safety::check(hierarchies, cg)?;
        let before = self.state(cg)?;
        if before.is_frozen() {
            return Err(Error::AlreadyPaused {
                path: cg.dir.clone(),
            });
        }
        let deadline = Deadline::after(self.timeout);
        let use_subgroup = match self.strategy {
            Strategy::Subgroup => true,
            Strategy::Direct => false,
            Strategy::Auto => before.subgroup.is_some(),
        };
        let (strategy, result) = if use_subgroup {
            (Strategy::Subgroup, subgroup::freeze(cg, &deadline))
        } else {
            match direct::freeze(cg, &deadline) {
                Err(e) if self.strategy == Strategy::Auto && e.is_refused_by_kernel() => {
                    tracing::info!(path = %cg.dir.display(), "own freeze file refused (EPERM); using the subgroup strategy");
                    (Strategy::Subgroup, subgroup::freeze(cg, &deadline))
                }
                other => (Strategy::Direct, other),
            }
        };
        if let Err(error) = result {
            tracing::debug!(path = %cg.dir.display(), error = %error, "freeze failed; thawing");
            return Err(self.undo(cg, strategy, error));
        }
        tracing::info!(path = %cg.dir.display(), ?strategy, "frozen");
        // Confirmed frozen just now; reading it back would walk every task
        // again (v1 computes freezer.state on read).
        Ok(Outcome {
            strategy,
            state: State {
                phase: Phase::Frozen,
                frozen_by: Some(match strategy {
                    Strategy::Subgroup => FrozenBy::Subgroup,
                    _ => FrozenBy::Itself,
                }),
                ancestor: None,
                subgroup: (strategy == Strategy::Subgroup)
                    .then(|| format!("{}/{}", cg.path.trim_end_matches('/'), subgroup::NAME)),
            },
        })
    }

    /// Thaws `cg` (docker's `unpause`), undoing whichever strategy froze it,
    /// and finishing a subgroup pause or unpause that a crashed call left
    /// half done. Errs with [`Error::NotPaused`] if it is not frozen, and with
    /// [`Error::PausedByAncestor`] if only an ancestor's freeze holds it.
    ///
    /// A strategy other than `auto` thaws only what that strategy paused:
    /// a cgroup the other one paused is [`Error::PausedOtherwise`].
    pub fn thaw(&self, cg: &Cgroup) -> Result<Outcome> {
        self.thaw_from(cg, self.state(cg)?)
    }

    /// [`Freezer::thaw`] of a cgroup whose state was read just now.
    fn thaw_from(&self, cg: &Cgroup, before: State) -> Result<Outcome> {
        let paused_by = match before.frozen_by {
            Some(FrozenBy::Itself) => Some(Strategy::Direct),
            Some(FrozenBy::Subgroup) => Some(Strategy::Subgroup),
            _ => None,
        };
        if let Some(by) = paused_by {
            if self.strategy != Strategy::Auto && self.strategy != by {
                return Err(Error::PausedOtherwise {
                    path: cg.dir.clone(),
                    strategy: by.as_str(),
                });
            }
        }
        let deadline = Deadline::after(self.timeout);
        let mut read_back = None;
        let strategy = match (before.frozen_by, &before.subgroup) {
            (_, Some(_)) if before.frozen_by != Some(FrozenBy::Itself) => {
                subgroup::thaw(cg, &deadline)?;
                Strategy::Subgroup
            }
            (Some(FrozenBy::Itself), _) => {
                read_back = direct::thaw(cg, &deadline)?;
                Strategy::Direct
            }
            (Some(FrozenBy::Ancestor), None) => {
                return Err(match before.ancestor {
                    Some(ancestor) => Error::PausedByAncestor {
                        path: cg.dir.clone(),
                        ancestor: ancestor.into(),
                    },
                    None => Error::PausedByAncestor {
                        path: cg.dir.clone(),
                        ancestor: "(an ancestor outside the visible hierarchy)".into(),
                    },
                })
            }
            _ => {
                return Err(Error::NotPaused {
                    path: cg.dir.clone(),
                })
            }
        };
        tracing::info!(path = %cg.dir.display(), ?strategy, "thawed");
        let state = match read_back {
            // Thawed, as the descriptor that thawed it read back, with no
            // subgroup (it was read just before) to say otherwise.
            Some(Phase::Thawed) if before.subgroup.is_none() => State {
                phase: Phase::Thawed,
                frozen_by: None,
                ancestor: None,
                subgroup: None,
            },
            // Still held (an ancestor), v2, or a subgroup: read it whole.
            _ => self.state(cg)?,
        };
        Ok(Outcome { strategy, state })
    }

    /// The freeze state of a target in each hierarchy it belongs to, the
    /// chosen one first.
    pub fn states<'p>(&self, placement: &'p Placement) -> Result<Vec<(&'p Cgroup, State)>> {
        placement
            .all()
            .map(|cg| Ok((cg, self.state(cg)?)))
            .collect()
    }

    /// Pauses a target: [`Error::AlreadyPaused`] if it is frozen in any
    /// hierarchy it belongs to (a freeze in the other tree stops it as
    /// well), else [`Freezer::freeze`] of the chosen cgroup.
    pub fn pause(&self, hierarchies: &Hierarchies, placement: &Placement) -> Result<Outcome> {
        for cg in &placement.others {
            if self.is_frozen(cg)? {
                return Err(Error::AlreadyPaused {
                    path: cg.dir.clone(),
                });
            }
        }
        self.freeze(hierarchies, &placement.chosen)
    }

    /// Unpauses a target: thaws it in every hierarchy where its own freeze
    /// (or a subgroup) holds it, and returns what each thaw did. When none
    /// does, the chosen cgroup's answer: [`Error::NotPaused`] or
    /// [`Error::PausedByAncestor`]. A hierarchy that fails to thaw does not
    /// stop the others from being thawed; the first error is returned.
    pub fn unpause<'p>(&self, placement: &'p Placement) -> Result<Vec<(&'p Cgroup, Outcome)>> {
        let mut thawed = Vec::new();
        let mut first_err = None;
        // Each state is read once: what decides the thaw is what it starts
        // from, and the chosen cgroup's answers when nothing is ours.
        let mut chosen_state = None;
        for (i, cg) in placement.all().enumerate() {
            let result = (|| {
                // Another hierarchy with nothing of its own to undo is left
                // at that; the chosen one is read whole, since its state is
                // the answer when nothing is ours.
                if i > 0 && !Self::may_be_ours(cg)? {
                    return Ok(None);
                }
                let state = self.state(cg)?;
                if holds_its_own(&state) {
                    return self.thaw_from(cg, state).map(Some);
                }
                if i == 0 {
                    chosen_state = Some(state);
                }
                Ok(None)
            })();
            match result {
                Ok(Some(outcome)) => thawed.push((cg, outcome)),
                Ok(None) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        if thawed.is_empty() {
            let before = match chosen_state {
                Some(state) => state,
                None => self.state(&placement.chosen)?,
            };
            thawed.push((
                &placement.chosen,
                self.thaw_from(&placement.chosen, before)?,
            ));
        }
        Ok(thawed)
    }

    /// Thaws the Kubernetes pod `uid` (its cgroup node, found as
    /// [`Target::K8sPod`] finds it) in every mounted hierarchy where its own
    /// freeze holds it: what a node agent does before it lets a paused pod
    /// be deleted, since with the v1 freezer a frozen pod cannot be killed
    /// (StopPodSandbox hangs). Idempotent: a pod that is not paused, or
    /// whose cgroup is gone already, gives an empty list. A pod frozen only
    /// through an ancestor (a QoS or `kubepods` node someone froze) is not
    /// this call's to thaw: [`Error::PausedByAncestor`].
    pub fn thaw_k8s_pod(
        &self,
        hierarchies: &Hierarchies,
        uid: &str,
    ) -> Result<Vec<(Cgroup, Outcome)>> {
        let target = Target::K8sPod(uid.to_owned());
        let placement = match hierarchies.place(&target, Choice::Auto) {
            Ok(placement) => placement,
            Err(e) if e.is_not_found() => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        match self.unpause(&placement) {
            Ok(thawed) => Ok(thawed
                .into_iter()
                .map(|(cg, outcome)| (cg.clone(), outcome))
                .collect()),
            Err(Error::NotPaused { .. }) => Ok(Vec::new()),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Thaws after a failed freeze; a thaw that fails too is reported as
    /// [`Error::LeftFrozen`], the original error going to the log.
    fn undo(&self, cg: &Cgroup, strategy: Strategy, error: Error) -> Error {
        // A freeze the kernel refused outright started nothing to undo.
        let started = match strategy {
            Strategy::Subgroup => subgroup::existing(cg).is_some(),
            _ => direct::state(cg).map_or(true, |d| d.frozen_by == Some(FrozenBy::Itself)),
        };
        if !started {
            return error;
        }
        let deadline = Deadline::after(self.timeout);
        let thawed = match strategy {
            Strategy::Subgroup => subgroup::thaw(cg, &deadline),
            _ => direct::thaw(cg, &deadline).map(drop),
        };
        match thawed {
            Ok(()) => error,
            Err(thaw_error) => {
                tracing::error!(path = %cg.dir.display(), error = %error, "freeze failed");
                Error::LeftFrozen {
                    path: cg.dir.clone(),
                    source: Box::new(thaw_error),
                }
            }
        }
    }
}

/// Whether `state` is a freeze this cgroup's unpause undoes: its own
/// freeze file's, or the subgroup strategy's (a subgroup left behind
/// counts, unless an ancestor holds the cgroup).
fn holds_its_own(state: &State) -> bool {
    matches!(state.frozen_by, Some(FrozenBy::Itself | FrozenBy::Subgroup))
        || (state.subgroup.is_some() && state.frozen_by != Some(FrozenBy::Ancestor))
}

#[cfg(test)]
mod tests {
    //! The decisions, against fake cgroup trees whose files say what a
    //! kernel would (the real kernel's timing is in the root-only tests).

    use super::*;
    use crate::cgroup::{Choice, Target};
    use crate::mountinfo::CgroupMount;
    use crate::Placement;
    use std::fs;
    use std::path::{Path, PathBuf};

    struct Fake {
        base: PathBuf,
        hierarchies: Hierarchies,
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.base);
        }
    }

    impl Fake {
        fn new(tag: &str, unified: bool) -> Self {
            let base =
                std::env::temp_dir().join(format!("stasis-unit-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&base);
            fs::create_dir_all(base.join("cg")).expect("mkdir");
            fs::create_dir_all(base.join("proc/self")).expect("mkdir");
            // The caller and PID 1 are elsewhere; /proc shows no kthreadd.
            fs::write(
                base.join("proc/self/cgroup"),
                "6:freezer:/elsewhere\n0::/elsewhere\n",
            )
            .expect("write");
            let mounts = [CgroupMount {
                mount_point: base.join("cg"),
                root: "/".into(),
                unified,
                controllers: if unified {
                    vec![]
                } else {
                    vec!["freezer".into()]
                },
            }];
            let hierarchies = Hierarchies::from_mounts(&base.join("proc"), &mounts);
            Fake { base, hierarchies }
        }

        /// A v1 cgroup with its state files.
        fn v1(&self, rel: &str, state: &str, self_freezing: bool, parent_freezing: bool) -> Cgroup {
            let dir = self.base.join("cg").join(rel);
            fs::create_dir_all(&dir).expect("mkdir");
            fs::write(dir.join("freezer.state"), state).expect("write");
            fs::write(
                dir.join("freezer.self_freezing"),
                if self_freezing { "1" } else { "0" },
            )
            .expect("write");
            fs::write(
                dir.join("freezer.parent_freezing"),
                if parent_freezing { "1" } else { "0" },
            )
            .expect("write");
            fs::write(dir.join("cgroup.procs"), "").expect("write");
            self.cgroup(rel)
        }

        /// A v2 cgroup with its freeze request and effective state.
        fn v2(&self, rel: &str, own: bool, frozen: bool, procs: &str) -> Cgroup {
            let dir = self.base.join("cg").join(rel);
            fs::create_dir_all(&dir).expect("mkdir");
            fs::write(dir.join("cgroup.freeze"), if own { "1\n" } else { "0\n" }).expect("write");
            let events = format!("populated 1\nfrozen {}\n", u8::from(frozen));
            fs::write(dir.join("cgroup.events"), events).expect("write");
            fs::write(dir.join("cgroup.procs"), procs).expect("write");
            self.cgroup(rel)
        }

        fn cgroup(&self, rel: &str) -> Cgroup {
            self.hierarchies
                .resolve(&Target::Cgroup(rel.into()), Choice::Auto)
                .expect("resolve")
        }
    }

    fn state_of(cg: &Cgroup) -> (Phase, Option<FrozenBy>, Option<String>) {
        let s = Freezer::new().state(cg).expect("state");
        (s.phase, s.frozen_by, s.ancestor)
    }

    #[test]
    fn v1_self_and_ancestor_freezes() {
        let fake = Fake::new("f-v1", false);
        fake.v1("a", "FROZEN", true, false);
        let child = fake.v1("a/b", "FROZEN", false, true);
        assert_eq!(
            state_of(&fake.cgroup("a")),
            (Phase::Frozen, Some(FrozenBy::Itself), None)
        );
        assert_eq!(
            state_of(&child),
            (Phase::Frozen, Some(FrozenBy::Ancestor), Some("/a".into()))
        );
        let f = Freezer::new();
        let err = f
            .freeze(&fake.hierarchies, &child)
            .expect_err("frozen by /a");
        assert!(err.is_already_paused(), "{err}");
        let err = f.thaw(&child).expect_err("only /a can thaw it");
        assert!(
            matches!(&err, Error::PausedByAncestor { ancestor, .. } if ancestor == Path::new("/a")),
            "{err}"
        );
        let freezing = fake.v1("c", "FREEZING", true, false);
        assert_eq!(state_of(&freezing).0, Phase::Freezing);
        let thawed = fake.v1("d", "THAWED", false, false);
        assert_eq!(state_of(&thawed), (Phase::Thawed, None, None));
        assert!(f.thaw(&thawed).expect_err("not paused").is_not_paused());
    }

    #[test]
    fn a_k8s_pods_thaw_is_idempotent_and_leaves_an_ancestors_freeze() {
        let uid = "0d6f4c2a-9b1e-4a7f-a3c5-7e8d9f0a1b2c";
        let fake = Fake::new("f-k8s-thaw", false);
        fake.v1("kubepods", "THAWED", false, false);
        fake.v1("kubepods/besteffort", "THAWED", false, false);
        let node = format!("kubepods/besteffort/pod{uid}");
        fake.v1(&node, "FROZEN", true, false);
        fake.v1(&format!("{node}/{}", "a".repeat(64)), "FROZEN", false, true);
        let f = Freezer::new();
        let thawed = f.thaw_k8s_pod(&fake.hierarchies, uid).expect("thaw");
        let paths: Vec<&str> = thawed.iter().map(|(cg, _)| cg.path.as_str()).collect();
        assert_eq!(paths, [format!("/{node}")]);
        let state = fs::read_to_string(fake.base.join("cg").join(&node).join("freezer.state"));
        assert_eq!(state.expect("read").trim(), "THAWED");
        fake.v1(&node, "THAWED", false, false);
        let again = f.thaw_k8s_pod(&fake.hierarchies, uid).expect("not paused");
        assert!(again.is_empty(), "{again:?}");
        let other = "1d6f4c2a-9b1e-4a7f-a3c5-7e8d9f0a1b2c";
        let absent = f
            .thaw_k8s_pod(&fake.hierarchies, other)
            .expect("no such pod");
        assert!(absent.is_empty(), "{absent:?}");
        // Frozen through its QoS node: not this call's to thaw.
        fake.v1("kubepods/besteffort", "FROZEN", true, false);
        fake.v1(&node, "FROZEN", false, true);
        let err = f
            .thaw_k8s_pod(&fake.hierarchies, uid)
            .expect_err("an ancestor's");
        assert!(matches!(err, Error::PausedByAncestor { .. }), "{err}");
        let err = f
            .thaw_k8s_pod(&fake.hierarchies, "../x")
            .expect_err("invalid");
        assert!(err.is_invalid(), "{err}");
    }

    #[test]
    fn v2_requests_and_effective_state() {
        let fake = Fake::new("f-v2", true);
        fake.v2("a", true, true, "");
        let child = fake.v2("a/b", false, true, "");
        assert_eq!(
            state_of(&child),
            (Phase::Frozen, Some(FrozenBy::Ancestor), Some("/a".into()))
        );
        let asked = fake.v2("c", true, false, "");
        assert_eq!(
            state_of(&asked),
            (Phase::Freezing, Some(FrozenBy::Itself), None)
        );
        // Frozen with no visible request: an ancestor above the mount.
        let outside = fake.v2("d", false, true, "");
        assert_eq!(
            state_of(&outside),
            (Phase::Frozen, Some(FrozenBy::Ancestor), None)
        );
        let err = Freezer::new().thaw(&outside).expect_err("not ours to thaw");
        assert!(err.is_not_paused(), "{err}");
    }

    #[test]
    fn a_subgroup_counts_as_frozen_only_once_the_source_is_empty() {
        let fake = Fake::new("f-sub", true);
        let source = fake.v2("t", false, false, "41\n42\n");
        fake.v2("t/stasis-frozen", true, true, "43\n");
        let s = Freezer::new().state(&source).expect("state");
        assert_eq!(
            (s.phase, s.frozen_by),
            (Phase::Freezing, Some(FrozenBy::Subgroup))
        );
        assert_eq!(s.subgroup.as_deref(), Some("/t/stasis-frozen"));
        fs::write(source.dir.join("cgroup.procs"), "").expect("write");
        let s = Freezer::new().state(&source).expect("state");
        assert_eq!(
            (s.phase, s.frozen_by),
            (Phase::Frozen, Some(FrozenBy::Subgroup))
        );
        let err = Freezer::new()
            .freeze(&fake.hierarchies, &source)
            .expect_err("paused");
        assert!(err.is_already_paused(), "{err}");
        // A thawed leftover (an unpause that died) is thawed, not paused.
        fake.v2("t/stasis-frozen", false, false, "43\n");
        let s = Freezer::new().state(&source).expect("state");
        assert_eq!((s.phase, s.frozen_by), (Phase::Thawed, None));
        assert!(s.subgroup.is_some());
    }

    /// Plays the kernel for a v2 cgroup: once `cgroup.freeze` asks for a
    /// freeze, runs `act` (within ten seconds, or panics).
    fn when_freeze_requested(
        cg: &Cgroup,
        act: impl FnOnce(&Path) + Send + 'static,
    ) -> std::thread::JoinHandle<()> {
        let dir = cg.dir.clone();
        std::thread::spawn(move || {
            let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while fs::read_to_string(dir.join("cgroup.freeze"))
                .expect("read")
                .trim()
                != "1"
            {
                assert!(std::time::Instant::now() < until, "no freeze was requested");
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            act(&dir);
        })
    }

    #[test]
    fn a_v2_freeze_is_confirmed_through_cgroup_events() {
        let fake = Fake::new("f-v2-wait", true);
        let cg = fake.v2("t", false, false, "");
        let kernel = when_freeze_requested(&cg, |dir| {
            // In place, as the kernel changes it: a truncating write could
            // be read half done.
            use std::io::Write;
            fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.events"))
                .and_then(|mut f| f.write_all(b"populated 1\nfrozen 1\n"))
                .expect("write");
        });
        let outcome = Freezer::new()
            .timeout(std::time::Duration::from_secs(10))
            .freeze(&fake.hierarchies, &cg);
        kernel.join().expect("kernel thread");
        let outcome = outcome.expect("frozen");
        assert_eq!(outcome.strategy, Strategy::Direct);
        assert_eq!(outcome.state.phase, Phase::Frozen);
        assert_eq!(state_of(&cg), (Phase::Frozen, Some(FrozenBy::Itself), None));
    }

    #[test]
    fn a_freeze_that_times_out_is_thawed_again() {
        let fake = Fake::new("f-timeout", true);
        // The kernel never reports `frozen 1` (a task that cannot stop).
        let cg = fake.v2("t", false, false, "");
        let err = Freezer::new()
            .timeout(std::time::Duration::from_millis(20))
            .freeze(&fake.hierarchies, &cg)
            .expect_err("never frozen");
        assert!(matches!(err, Error::FreezeTimeout { .. }), "{err}");
        assert_eq!(
            fs::read_to_string(cg.dir.join("cgroup.freeze"))
                .expect("read")
                .trim(),
            "0",
            "the undo withdrew the request"
        );
        assert_eq!(state_of(&cg), (Phase::Thawed, None, None));
    }

    #[test]
    fn a_failed_undo_is_reported_as_left_frozen() {
        let fake = Fake::new("f-left", true);
        let cg = fake.v2("t", false, false, "");
        // The freeze is requested, then the cgroup's freeze file becomes
        // unwritable, so the undo after the timeout fails.
        let kernel = when_freeze_requested(&cg, |dir| {
            fs::remove_file(dir.join("cgroup.freeze")).expect("rm");
            fs::create_dir(dir.join("cgroup.freeze")).expect("mkdir");
        });
        let err = Freezer::new()
            .timeout(std::time::Duration::from_millis(300))
            .freeze(&fake.hierarchies, &cg)
            .expect_err("left frozen");
        kernel.join().expect("kernel thread");
        match &err {
            Error::LeftFrozen { path, source } => {
                assert_eq!(*path, cg.dir);
                assert!(matches!(**source, Error::Write { .. }), "{source}");
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_freeze_in_the_other_hierarchy_counts() {
        let v1 = Fake::new("f-both-v1", false);
        let v2 = Fake::new("f-both-v2", true);
        let a1 = v1.v1("a", "THAWED", false, false);
        let a2 = v2.v2("a", true, true, "");
        let placement = Placement {
            chosen: a1.clone(),
            others: vec![a2.clone()],
        };
        let f = Freezer::new();
        let states = f.states(&placement).expect("states");
        assert_eq!(states.len(), 2);
        assert!(!states[0].1.is_frozen() && states[1].1.is_frozen());
        let err = f
            .pause(&v1.hierarchies, &placement)
            .expect_err("paused in v2");
        assert!(err.is_already_paused(), "{err}");
        assert!(matches!(&err, Error::AlreadyPaused { path } if *path == a2.dir));
        // Unpause thaws the hierarchy that holds it, not the chosen one.
        fs::write(a2.dir.join("cgroup.events"), "populated 1\nfrozen 0\n").expect("write");
        let thawed = f.unpause(&placement).expect("unpause");
        assert_eq!(thawed.len(), 1);
        assert_eq!(thawed[0].0.dir, a2.dir);
        assert_eq!(
            fs::read_to_string(a2.dir.join("cgroup.freeze"))
                .expect("read")
                .trim(),
            "0"
        );
        let err = f.unpause(&placement).expect_err("nothing left");
        assert!(err.is_not_paused(), "{err}");
        // A strategy other than auto thaws only what it paused.
        let sub = v2.v2("s", false, false, "");
        v2.v2("s/stasis-frozen", true, true, "");
        let err = Freezer::new()
            .strategy(Strategy::Direct)
            .thaw(&sub)
            .expect_err("paused by the subgroup strategy");
        assert!(
            matches!(
                err,
                Error::PausedOtherwise {
                    strategy: "subgroup",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn the_quick_reads_agree_with_the_whole_state() {
        let v1 = Fake::new("f-quick-v1", false);
        let v2 = Fake::new("f-quick-v2", true);
        v1.v1("a", "FROZEN", true, false);
        v2.v2("a", true, true, "");
        let cgroups = [
            v1.cgroup("a"),
            v1.v1("a/b", "FROZEN", false, true),
            v1.v1("c", "FREEZING", true, false),
            v1.v1("d", "THAWED", false, false),
            v2.cgroup("a"),
            v2.v2("a/b", false, true, ""),
            v2.v2("c", true, false, ""),
            v2.v2("d", false, true, ""),
            v2.v2("e", false, false, ""),
            v2.v2("s", false, false, "41\n"),
            v2.v2("t", false, false, ""),
            v2.v2("u", false, false, ""),
        ];
        v2.v2("s/stasis-frozen", true, true, "42\n");
        v2.v2("t/stasis-frozen", true, true, "42\n");
        v2.v2("u/stasis-frozen", false, false, "");
        let f = Freezer::new();
        for cg in &cgroups {
            let state = f.state(cg).expect("state");
            assert_eq!(
                f.is_frozen(cg).expect("is_frozen"),
                state.is_frozen(),
                "{}",
                cg.path
            );
            if holds_its_own(&state) {
                assert!(
                    Freezer::may_be_ours(cg).expect("may_be_ours"),
                    "{}",
                    cg.path
                );
            }
        }
        // What the pause and unpause of a target in both trees read: the
        // other tree's freeze by an ancestor is neither a reason to refuse
        // a pause nor this unpause's to undo.
        let chosen = v1.v1("x", "THAWED", false, false);
        let placement = Placement {
            chosen: chosen.clone(),
            others: vec![v2.cgroup("a/b")],
        };
        let err = f
            .pause(&v1.hierarchies, &placement)
            .expect_err("frozen in v2");
        assert!(err.is_already_paused(), "{err}");
        v2.v2("a/b", false, false, "");
        v1.v1("x", "FROZEN", true, false);
        let thawed = f.unpause(&placement).expect("unpause");
        let dirs: Vec<&Path> = thawed.iter().map(|(cg, _)| cg.dir.as_path()).collect();
        assert_eq!(dirs, [chosen.dir.as_path()]);
        assert_eq!(
            thawed[0].1.state,
            f.state(&chosen).expect("state"),
            "read back"
        );
        assert_eq!(thawed[0].1.state.phase, Phase::Thawed);
        assert_eq!(
            fs::read_to_string(v2.cgroup("a").dir.join("cgroup.freeze"))
                .expect("read")
                .trim(),
            "1",
            "the ancestor's freeze is left alone"
        );
    }

    #[test]
    fn the_real_root_is_refused_but_a_namespace_root_is_not() {
        let fake = Fake::new("f-root", true);
        // The mount's top has no cgroup.freeze: the real root.
        let root = fake.cgroup("/");
        let err = Freezer::new()
            .freeze(&fake.hierarchies, &root)
            .expect_err("root");
        assert!(
            matches!(
                err,
                Error::Refused {
                    reason: crate::Refusal::Root,
                    ..
                }
            ),
            "{err}"
        );
        // Give it one, as a cgroup namespace's root has, and it is no root.
        fs::write(root.dir.join("cgroup.freeze"), "0\n").expect("write");
        assert!(!root.is_root().expect("is_root"));
    }
}
