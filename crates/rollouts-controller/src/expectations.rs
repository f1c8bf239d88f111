//! Stale-cache protection: what we wrote must be in the cache before we plan again.
//!
//! The engine plans from the informer caches, and a cache can lag behind our own writes: right
//! after we create a ReplicaSet or patch a status, the next reconciliation may still see the old
//! object. Planning from that would repeat work (a second create, a status computed from the
//! old step). Argo guards the Rollout itself (it remembers the resourceVersion it wrote and
//! requeues after 100 ms while the informer is older); we do the same for every object we
//! write through a cache: the Rollout, its ReplicaSets, Services, AnalysisRuns and Experiments.
//!
//! After each successful write the executor records `(kind, name, resourceVersion)` for the
//! Rollout being reconciled. Before the next plan, each expectation is checked against the
//! cache: met when the cached object's resourceVersion is at least the one written (resource
//! versions are etcd revisions, compared as integers, as Argo does); stale otherwise, and the
//! reconciliation is requeued shortly. An expectation that is not met after [`EXPECTATION_TTL`]
//! (the object was deleted meanwhile, or the cache is broken) is dropped with a warning, so a
//! lost event never wedges a Rollout.

use std::{
    collections::HashMap,
    fmt,
    sync::Mutex,
    time::{Duration, Instant},
};

/// How long an unmet expectation holds reconciliation back.
pub const EXPECTATION_TTL: Duration = Duration::from_secs(30);

/// How soon a reconciliation that found a stale cache looks again (Argo: 100 ms).
pub const STALE_REQUEUE: Duration = Duration::from_millis(100);

/// The cached kinds we write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The Rollout itself (spec, metadata or status).
    Rollout,
    /// A ReplicaSet.
    ReplicaSet,
    /// A Service.
    Service,
    /// An AnalysisRun.
    AnalysisRun,
    /// An Experiment.
    Experiment,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Rollout => "Rollout",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Service => "Service",
            Kind::AnalysisRun => "AnalysisRun",
            Kind::Experiment => "Experiment",
        })
    }
}

#[derive(Clone, Debug)]
struct Expectation {
    kind: Kind,
    name: String,
    resource_version: u64,
    since: Instant,
}

/// An unmet expectation: which object, and the resourceVersion we wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stale {
    /// `Kind name`.
    pub object: String,
    /// The resourceVersion written.
    pub expected: String,
}

/// The expectations of every Rollout, keyed by `namespace/name`.
#[derive(Debug, Default)]
pub struct Expectations {
    by_rollout: Mutex<HashMap<String, Vec<Expectation>>>,
}

/// A resourceVersion as a number (`None` when it is not one: then it cannot be compared).
pub fn parse_rv(rv: &str) -> Option<u64> {
    rv.parse().ok()
}

impl Expectations {
    /// Records that we wrote `kind/name` and got `resource_version` back.
    pub fn expect(&self, rollout: &str, kind: Kind, name: &str, resource_version: Option<&str>) {
        let Some(rv) = resource_version.and_then(parse_rv) else {
            return;
        };
        let mut map = self.by_rollout.lock().unwrap_or_else(|p| p.into_inner());
        let list = map.entry(rollout.to_string()).or_default();
        match list.iter_mut().find(|e| e.kind == kind && e.name == name) {
            Some(e) => {
                e.resource_version = e.resource_version.max(rv);
                e.since = Instant::now();
            }
            None => list.push(Expectation {
                kind,
                name: name.to_string(),
                resource_version: rv,
                since: Instant::now(),
            }),
        }
    }

    /// Checks the expectations of `rollout` against the caches: `cached(kind, name)` returns
    /// the cached resourceVersion (`None` when the object is not cached). Met expectations are
    /// dropped; the first unmet one is returned.
    pub fn check(
        &self,
        rollout: &str,
        cached: impl Fn(Kind, &str) -> Option<String>,
    ) -> Option<Stale> {
        let mut map = self.by_rollout.lock().unwrap_or_else(|p| p.into_inner());
        let list = map.get_mut(rollout)?;
        let mut stale = None;
        list.retain(|e| {
            let seen = cached(e.kind, &e.name);
            let met = match seen.as_deref() {
                Some(rv) => parse_rv(rv).is_none_or(|rv| rv >= e.resource_version),
                None => false,
            };
            if met {
                return false;
            }
            if e.since.elapsed() > EXPECTATION_TTL {
                tracing::warn!(
                    rollout,
                    object = %format!("{} {}", e.kind, e.name),
                    expected = e.resource_version,
                    "The cache never caught up with a write; planning anyway."
                );
                return false;
            }
            if stale.is_none() {
                stale = Some(Stale {
                    object: format!("{} {}", e.kind, e.name),
                    expected: e.resource_version.to_string(),
                });
            }
            true
        });
        if list.is_empty() {
            map.remove(rollout);
        }
        stale
    }

    /// Forgets everything about `rollout` (it was deleted).
    pub fn forget(&self, rollout: &str) {
        self.by_rollout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(rollout);
    }

    /// Number of Rollouts with pending expectations.
    pub fn pending(&self) -> usize {
        self.by_rollout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_cache_is_stale_until_it_catches_up() {
        let ex = Expectations::default();
        ex.expect("team/web", Kind::ReplicaSet, "web-abc", Some("120"));
        ex.expect("team/web", Kind::Rollout, "web", Some("125"));
        // Not cached at all yet.
        let stale = ex.check("team/web", |_, _| None).unwrap();
        assert_eq!(stale.object, "ReplicaSet web-abc");
        assert_eq!(stale.expected, "120");
        // The ReplicaSet arrived, the Rollout is still older.
        let stale = ex
            .check("team/web", |k, _| {
                Some(if k == Kind::ReplicaSet { "120" } else { "119" }.to_string())
            })
            .unwrap();
        assert_eq!(stale.object, "Rollout web");
        assert_eq!(ex.pending(), 1);
        // Both caught up (or went beyond).
        assert_eq!(ex.check("team/web", |_, _| Some("130".into())), None);
        assert_eq!(ex.pending(), 0);
        // Other rollouts are unaffected.
        assert_eq!(ex.check("team/other", |_, _| None), None);
    }

    #[test]
    fn later_writes_raise_the_bar_and_odd_versions_are_not_compared() {
        let ex = Expectations::default();
        ex.expect("ns/r", Kind::Service, "svc", Some("10"));
        ex.expect("ns/r", Kind::Service, "svc", Some("12"));
        assert!(ex.check("ns/r", |_, _| Some("11".into())).is_some());
        assert_eq!(ex.check("ns/r", |_, _| Some("12".into())), None);
        // A resourceVersion that is not a number is taken as met (cannot compare).
        ex.expect("ns/r", Kind::Service, "svc", Some("13"));
        assert_eq!(ex.check("ns/r", |_, _| Some("opaque".into())), None);
        // Unparsable writes are not recorded at all.
        ex.expect("ns/r", Kind::Service, "svc", Some("x"));
        ex.expect("ns/r", Kind::Service, "svc", None);
        assert_eq!(ex.pending(), 0);
        ex.expect("ns/r", Kind::Experiment, "e", Some("5"));
        ex.forget("ns/r");
        assert_eq!(ex.pending(), 0);
    }
}
