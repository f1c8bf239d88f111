//! Leader election with a `coordination.k8s.io/v1` Lease, compatible with client-go's
//! `LeaseLock` (which Argo's controller uses), so that during a migration an Argo pod and ours
//! never both lead.
//!
//! The Lease is Argo's: `argo-rollouts-controller-lock` (with `-<instance-id>` when set) in the
//! controller namespace. Its spec carries the same record client-go writes: `holderIdentity`,
//! `leaseDurationSeconds`, `acquireTime`, `renewTime` (RFC 3339 with microseconds) and
//! `leaseTransitions`. The rules are client-go's:
//!
//! - a candidate takes the lease only when it is free (no holder) or when the record has not
//!   changed for `leaseDurationSeconds` *as measured on the candidate's own clock* since it
//!   last saw it change (so clock skew between nodes does not matter);
//! - a takeover increments `leaseTransitions` and sets `acquireTime`; a renewal keeps both;
//! - every write carries the `resourceVersion` that was read, so two candidates racing for the
//!   same expired lease cannot both win (the loser gets a 409 Conflict);
//! - the leader renews every retry period and gives up leading if it could not renew within the
//!   renew deadline;
//! - on shutdown the leader releases the lease (empty holder, duration 1 s) so that a standby
//!   takes over at once.
//!
//! [`Elector`] is the pure state machine; [`LeaseLock`] does the API calls.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::MicroTime,
};
use kube::{
    Api, Client,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
};
use serde_json::json;
use tokio::{sync::watch, time::Instant};

use crate::{
    error::{Error, Result, code_of},
    flags::LeaseTiming,
};

/// What a Lease says about its holder (client-go's `LeaderElectionRecord`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Identity of the holder; empty when released.
    pub holder: String,
    /// How long the lease is valid after a renewal.
    pub lease_duration_seconds: i32,
    /// When the current holder acquired it.
    pub acquire_time: Option<Timestamp>,
    /// When the holder last renewed it.
    pub renew_time: Option<Timestamp>,
    /// How many times the holder changed.
    pub transitions: i32,
}

impl Record {
    /// Reads the record from a Lease spec.
    pub fn from_spec(spec: Option<&LeaseSpec>) -> Self {
        let spec = spec.cloned().unwrap_or_default();
        Self {
            holder: spec.holder_identity.unwrap_or_default(),
            lease_duration_seconds: spec.lease_duration_seconds.unwrap_or(0),
            acquire_time: spec.acquire_time.map(|t| t.0),
            renew_time: spec.renew_time.map(|t| t.0),
            transitions: spec.lease_transitions.unwrap_or(0),
        }
    }

    /// The spec fields this record sets (what client-go writes).
    pub fn to_spec_json(&self) -> serde_json::Value {
        let time = |t: Option<Timestamp>| t.map(MicroTime);
        json!({
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "acquireTime": time(self.acquire_time),
            "renewTime": time(self.renew_time),
            "leaseTransitions": self.transitions,
        })
    }
}

/// The next step of a candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// There is no Lease: create it with this record.
    Create(Record),
    /// Write this record (a takeover or a renewal), guarded by the resourceVersion read.
    Write(Record),
    /// Someone else holds a valid lease.
    Wait {
        /// The holder.
        holder: String,
    },
}

/// client-go's leader elector state: who we are, and when we last saw the record change.
#[derive(Clone, Debug)]
pub struct Elector {
    identity: String,
    lease_duration: Duration,
    observed: Option<Record>,
    observed_at: Option<Instant>,
}

impl Elector {
    /// A candidate named `identity` asking for leases of `lease_duration`.
    pub fn new(identity: impl Into<String>, lease_duration: Duration) -> Self {
        Self {
            identity: identity.into(),
            lease_duration,
            observed: None,
            observed_at: None,
        }
    }

    /// Our identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Remembers `record` as read at `now` (the clock restarts only when the record changed).
    pub fn observe(&mut self, record: &Record, now: Instant) {
        if self.observed.as_ref() != Some(record) {
            self.observed = Some(record.clone());
            self.observed_at = Some(now);
        }
    }

    /// Whether the last record we saw (or wrote) names us.
    pub fn is_leader(&self) -> bool {
        self.observed
            .as_ref()
            .is_some_and(|r| r.holder == self.identity)
    }

    /// Whether the observed holder's lease still runs at `now` (on our clock).
    fn lease_valid(&self, now: Instant) -> bool {
        let (Some(record), Some(at)) = (&self.observed, self.observed_at) else {
            return false;
        };
        let secs = if record.lease_duration_seconds > 0 {
            Duration::from_secs(record.lease_duration_seconds as u64)
        } else {
            self.lease_duration
        };
        at + secs > now
    }

    /// client-go's `tryAcquireOrRenew` decision, given the current record (after
    /// [`Elector::observe`]), the wall clock and our monotonic clock.
    pub fn decide(&self, current: Option<&Record>, wall: Timestamp, now: Instant) -> Decision {
        let secs = self.lease_duration.as_secs().max(1) as i32;
        let Some(current) = current else {
            return Decision::Create(Record {
                holder: self.identity.clone(),
                lease_duration_seconds: secs,
                acquire_time: Some(wall),
                renew_time: Some(wall),
                transitions: 0,
            });
        };
        let ours = current.holder == self.identity;
        if !current.holder.is_empty() && !ours && self.lease_valid(now) {
            return Decision::Wait {
                holder: current.holder.clone(),
            };
        }
        Decision::Write(Record {
            holder: self.identity.clone(),
            lease_duration_seconds: secs,
            acquire_time: if ours {
                current.acquire_time.or(Some(wall))
            } else {
                Some(wall)
            },
            renew_time: Some(wall),
            transitions: if ours {
                current.transitions
            } else {
                current.transitions + 1
            },
        })
    }

    /// The record that releases our lease (client-go's `release`), if we hold it.
    pub fn release(&self, wall: Timestamp) -> Option<Record> {
        if !self.is_leader() {
            return None;
        }
        let transitions = self.observed.as_ref().map_or(0, |r| r.transitions);
        Some(Record {
            holder: String::new(),
            lease_duration_seconds: 1,
            acquire_time: Some(wall),
            renew_time: Some(wall),
            transitions,
        })
    }
}

/// An identity like client-go's (`<hostname>_<uuid>`), unique per process.
pub fn identity() -> String {
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into());
    let unique = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|u| u.trim().to_string())
        .unwrap_or_else(|_| {
            format!(
                "{:x}-{:x}",
                std::process::id(),
                Timestamp::now().as_nanosecond()
            )
        });
    format!("{host}_{unique}")
}

/// The Lease and the calls on it.
#[derive(Clone, Debug)]
pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    timing: LeaseTiming,
    elector: Elector,
}

impl LeaseLock {
    /// A lock on the Lease `namespace/name` for `identity`.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: String,
        timing: LeaseTiming,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            timing,
            elector: Elector::new(identity, timing.lease_duration),
        }
    }

    /// Our identity.
    pub fn identity(&self) -> &str {
        self.elector.identity()
    }

    /// One attempt; `Ok(true)` when we hold the lease afterwards.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool> {
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| Error::kube(format!("reading Lease {:?}", self.name), e))?;
        let now = Instant::now();
        let wall = Timestamp::now();
        let record = current
            .as_ref()
            .map(|lease| Record::from_spec(lease.spec.as_ref()));
        if let Some(r) = &record {
            self.elector.observe(r, now);
        }
        match self.elector.decide(record.as_ref(), wall, now) {
            Decision::Wait { holder } => {
                tracing::debug!(%holder, lease = %self.name, "The lease is held by another candidate.");
                Ok(false)
            }
            Decision::Create(new) => {
                let lease =
                    Lease {
                        metadata: ObjectMeta {
                            name: Some(self.name.clone()),
                            ..ObjectMeta::default()
                        },
                        spec: Some(serde_json::from_value(new.to_spec_json()).map_err(
                            |source| Error::Json {
                                what: "building the Lease".into(),
                                source,
                            },
                        )?),
                    };
                match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => {
                        self.elector.observe(&new, now);
                        Ok(true)
                    }
                    Err(e) if code_of(&e) == Some(409) => Ok(false),
                    Err(e) => Err(Error::kube(format!("creating Lease {:?}", self.name), e)),
                }
            }
            Decision::Write(new) => {
                let rv = current
                    .as_ref()
                    .and_then(|l| l.metadata.resource_version.clone());
                self.write(&new, rv, now).await
            }
        }
    }

    async fn write(&mut self, new: &Record, rv: Option<String>, now: Instant) -> Result<bool> {
        let patch = json!({
            "metadata": {"resourceVersion": rv},
            "spec": new.to_spec_json(),
        });
        match self
            .api
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                self.elector.observe(new, now);
                Ok(true)
            }
            // Someone else wrote in between: read again next time.
            Err(e) if code_of(&e) == Some(409) => Ok(false),
            Err(e) => Err(Error::kube(format!("updating Lease {:?}", self.name), e)),
        }
    }

    /// Tries every retry period until the lease is ours; `false` if `shutdown` came first.
    pub async fn acquire(&mut self, shutdown: &mut watch::Receiver<bool>) -> bool {
        let mut last_holder = None;
        loop {
            if *shutdown.borrow() {
                return false;
            }
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    tracing::info!(identity = %self.identity(), lease = %self.name, "Acquired the lease: I am the new leader.");
                    return true;
                }
                Ok(false) => {
                    let holder = self.elector.observed.as_ref().map(|r| r.holder.clone());
                    if holder != last_holder {
                        tracing::info!(leader = holder.as_deref().unwrap_or(""), lease = %self.name, "New leader elected.");
                        last_holder = holder;
                    }
                }
                Err(err) => {
                    tracing::warn!(
                        error = &err as &dyn std::error::Error,
                        "Acquiring the lease failed."
                    )
                }
            }
            let pause = jitter(self.timing.retry_period);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Renews the lease every retry period until `shutdown` (`Ok`) or until a renewal could not
    /// be made within the renew deadline (`Err`: leadership is lost).
    pub async fn hold(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<()> {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.timing.retry_period) => {}
                _ = shutdown.changed() => return Ok(()),
            }
            if *shutdown.borrow() {
                return Ok(());
            }
            let deadline = Instant::now() + self.timing.renew_deadline;
            let mut renewed = false;
            while Instant::now() < deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, self.try_acquire_or_renew()).await {
                    Ok(Ok(true)) => {
                        renewed = true;
                        break;
                    }
                    Ok(Ok(false)) => {}
                    Ok(Err(err)) => {
                        tracing::warn!(
                            error = &err as &dyn std::error::Error,
                            "Renewing the lease failed."
                        )
                    }
                    Err(_) => break,
                }
                tokio::time::sleep(self.timing.retry_period.min(left)).await;
            }
            if !renewed {
                return Err(Error::Leader(format!(
                    "could not renew Lease {:?} within {:?}: stopped leading",
                    self.name, self.timing.renew_deadline
                )));
            }
        }
    }

    /// Gives the lease up so that a standby takes over at once.
    pub async fn release(&mut self) -> Result<()> {
        let Some(record) = self.elector.release(Timestamp::now()) else {
            return Ok(());
        };
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| Error::kube(format!("reading Lease {:?}", self.name), e))?;
        let Some(current) = current else {
            return Ok(());
        };
        if Record::from_spec(current.spec.as_ref()).holder != self.identity() {
            return Ok(());
        }
        let rv = current.metadata.resource_version.clone();
        if self.write(&record, rv, Instant::now()).await? {
            tracing::info!(lease = %self.name, "Released the lease.");
        }
        Ok(())
    }
}

/// client-go's `wait.Jitter(d, 1.2)`, without a random source: spread by the clock's
/// nanoseconds, which differ between candidates.
fn jitter(d: Duration) -> Duration {
    let spread = f64::from(Timestamp::now().subsec_nanosecond().unsigned_abs() % 1000) / 1000.0;
    d + d.mul_f64(1.2 * spread)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(15);

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn held_by(holder: &str, transitions: i32) -> Record {
        Record {
            holder: holder.into(),
            lease_duration_seconds: 15,
            acquire_time: Some(t(0)),
            renew_time: Some(t(0)),
            transitions,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_lease_is_created() {
        let e = Elector::new("me", LEASE);
        let d = e.decide(None, t(5), Instant::now());
        assert_eq!(
            d,
            Decision::Create(Record {
                holder: "me".into(),
                lease_duration_seconds: 15,
                acquire_time: Some(t(5)),
                renew_time: Some(t(5)),
                transitions: 0,
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_valid_lease_of_another_is_respected_until_it_expires_on_our_clock() {
        let mut e = Elector::new("me", LEASE);
        let other = held_by("argo-pod_1234", 3);
        let start = Instant::now();
        e.observe(&other, start);
        assert_eq!(
            e.decide(Some(&other), t(1), start),
            Decision::Wait {
                holder: "argo-pod_1234".into()
            }
        );
        // 14 s later, the same record: still valid.
        let later = start + Duration::from_secs(14);
        e.observe(&other, later);
        assert!(matches!(
            e.decide(Some(&other), t(14), later),
            Decision::Wait { .. }
        ));
        // The holder renews: the record changes, our clock restarts.
        let renewed = Record {
            renew_time: Some(t(14)),
            ..other.clone()
        };
        e.observe(&renewed, later);
        let much_later = start + Duration::from_secs(28);
        e.observe(&renewed, much_later);
        assert!(matches!(
            e.decide(Some(&renewed), t(28), much_later),
            Decision::Wait { .. }
        ));
        // 15 s after the last change: expired; the takeover counts a transition.
        let expired = later + Duration::from_secs(15);
        e.observe(&renewed, expired);
        match e.decide(Some(&renewed), t(30), expired) {
            Decision::Write(r) => {
                assert_eq!(r.holder, "me");
                assert_eq!(r.transitions, 4);
                assert_eq!(r.acquire_time, Some(t(30)));
                assert_eq!(r.renew_time, Some(t(30)));
            }
            other => panic!("expected a takeover, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn clock_skew_does_not_matter() {
        // The holder's renewTime is an hour in the past by our wall clock, but we have just
        // seen the record change: it is valid for a whole lease duration from now.
        let mut e = Elector::new("me", LEASE);
        let other = Record {
            renew_time: Some(t(-3600)),
            ..held_by("other", 0)
        };
        e.observe(&other, Instant::now());
        assert!(matches!(
            e.decide(Some(&other), t(0), Instant::now()),
            Decision::Wait { .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn renewals_keep_the_acquire_time_and_transitions() {
        let mut e = Elector::new("me", LEASE);
        let mine = held_by("me", 7);
        e.observe(&mine, Instant::now());
        assert!(e.is_leader());
        match e.decide(Some(&mine), t(10), Instant::now()) {
            Decision::Write(r) => {
                assert_eq!(r.acquire_time, Some(t(0)));
                assert_eq!(r.renew_time, Some(t(10)));
                assert_eq!(r.transitions, 7);
            }
            other => panic!("expected a renewal, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_lease_is_taken_at_once() {
        let mut e = Elector::new("me", LEASE);
        let released = Record {
            holder: String::new(),
            lease_duration_seconds: 1,
            ..held_by("", 2)
        };
        e.observe(&released, Instant::now());
        match e.decide(Some(&released), t(1), Instant::now()) {
            Decision::Write(r) => {
                assert_eq!(r.holder, "me");
                assert_eq!(r.transitions, 3);
            }
            other => panic!("expected a takeover, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_leader_releases() {
        let mut e = Elector::new("me", LEASE);
        assert_eq!(e.release(t(0)), None);
        e.observe(&held_by("other", 1), Instant::now());
        assert_eq!(e.release(t(0)), None);
        e.observe(&held_by("me", 1), Instant::now());
        let r = e.release(t(9)).unwrap();
        assert_eq!(r.holder, "");
        assert_eq!(r.lease_duration_seconds, 1);
        assert_eq!(r.transitions, 1);
        assert_eq!(r.renew_time, Some(t(9)));
    }

    #[test]
    fn records_round_trip_through_the_lease_spec_in_client_go_format() {
        let r = Record {
            holder: "host_abc".into(),
            lease_duration_seconds: 15,
            acquire_time: Some(Timestamp::from_microsecond(1_700_000_000_123_456).unwrap()),
            renew_time: Some(Timestamp::from_second(1_700_000_001).unwrap()),
            transitions: 2,
        };
        let json = r.to_spec_json();
        assert_eq!(json["acquireTime"], "2023-11-14T22:13:20.123456Z");
        assert_eq!(json["renewTime"], "2023-11-14T22:13:21.000000Z");
        let spec: LeaseSpec = serde_json::from_value(json).unwrap();
        assert_eq!(Record::from_spec(Some(&spec)), r);
        assert_eq!(Record::from_spec(None).holder, "");
    }

    #[test]
    fn identities_are_unique_per_process_start() {
        let a = identity();
        assert!(a.contains('_'), "{a}");
        assert!(!a.ends_with('_'), "{a}");
    }

    #[tokio::test]
    async fn the_lock_creates_a_missing_lease_then_renews_with_its_resource_version() {
        use http::{Request, Response};
        use kube::client::Body;
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(svc, "default");
        let timing = LeaseTiming {
            lease_duration: LEASE,
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        };
        let server = tokio::spawn(async move {
            // 1. GET: not found.
            let (req, send) = handle.next_request().await.unwrap();
            assert_eq!(req.method(), http::Method::GET);
            assert_eq!(
                req.uri().path(),
                "/apis/coordination.k8s.io/v1/namespaces/argo-rollouts/leases/argo-rollouts-controller-lock"
            );
            let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"});
            send.send_response(
                Response::builder()
                    .status(404)
                    .body(Body::from(serde_json::to_vec(&status).unwrap()))
                    .unwrap(),
            );
            // 2. POST with our record.
            let (req, send) = handle.next_request().await.unwrap();
            assert_eq!(req.method(), http::Method::POST);
            let body = req.into_body().collect_bytes().await.unwrap();
            let mut lease: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(lease["spec"]["holderIdentity"], "me_1");
            assert_eq!(lease["spec"]["leaseDurationSeconds"], 15);
            assert_eq!(lease["spec"]["leaseTransitions"], 0);
            lease["metadata"]["resourceVersion"] = json!("41");
            send.send_response(Response::new(Body::from(
                serde_json::to_vec(&lease).unwrap(),
            )));
            // 3. GET returns what we wrote; 4. PATCH renews with resourceVersion 41.
            let (_, send) = handle.next_request().await.unwrap();
            send.send_response(Response::new(Body::from(
                serde_json::to_vec(&lease).unwrap(),
            )));
            let (req, send) = handle.next_request().await.unwrap();
            assert_eq!(req.method(), http::Method::PATCH);
            let body = req.into_body().collect_bytes().await.unwrap();
            let patch: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(patch["metadata"]["resourceVersion"], "41");
            assert_eq!(patch["spec"]["holderIdentity"], "me_1");
            assert_eq!(patch["spec"]["acquireTime"], lease["spec"]["acquireTime"]);
            assert_eq!(patch["spec"]["leaseTransitions"], 0);
            send.send_response(Response::new(Body::from(
                serde_json::to_vec(&lease).unwrap(),
            )));
        });
        let mut lock = LeaseLock::new(
            client,
            "argo-rollouts",
            "argo-rollouts-controller-lock",
            "me_1".into(),
            timing,
        );
        assert!(lock.try_acquire_or_renew().await.unwrap());
        assert!(lock.try_acquire_or_renew().await.unwrap());
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the conversation finished")
            .unwrap();
    }
}
