//! The tables of `list rollouts` and `list experiments`, as pure functions of the objects.
//!
//! Columns are padded like Argo's (so that a line printed alone during `--watch` lines up with
//! the header) and then aligned with elastic tabs.

use std::io::Write;

use jiff::{SignedDuration, Timestamp};
use rollouts_api::{Experiment, Rollout};
use rollouts_engine::{duration::parse_go_duration, phase, steps};
use tabwriter::TabWriter;

use crate::humanize::{age, human_duration};
use crate::info::max_traffic_weight;

/// One line of `list rollouts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolloutLine {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `Canary`, `BlueGreen` or `unknown`.
    pub strategy: String,
    /// Phase.
    pub status: String,
    /// `i/n` or `-`.
    pub step: String,
    /// Weight of the current step or `-`.
    pub set_weight: String,
    /// `ready/current`.
    pub ready: String,
    /// `spec.replicas`.
    pub desired: i32,
    /// `status.updatedReplicas`.
    pub up_to_date: i32,
    /// `status.availableReplicas`.
    pub available: i32,
}

/// Which optional columns to print.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Columns {
    /// A NAMESPACE column (with `--all-namespaces`).
    pub namespace: bool,
    /// A TIMESTAMP column (with `--timestamps`).
    pub timestamp: bool,
}

const ROLLOUT_HEADER: &str =
    "NAME\tSTRATEGY\tSTATUS\tSTEP\tSET-WEIGHT\tREADY\tDESIRED\tUP-TO-DATE\tAVAILABLE\n";
const EXPERIMENT_HEADER: &str = "NAME\tSTATUS\tDURATION\tREMAINING\tAGE\n";

impl RolloutLine {
    /// The line of a Rollout.
    pub fn new(ro: &Rollout) -> Self {
        let st = ro.status.clone().unwrap_or_default();
        let mut line = RolloutLine {
            namespace: ro.metadata.namespace.clone().unwrap_or_default(),
            name: ro.metadata.name.clone().unwrap_or_default(),
            strategy: "unknown".to_string(),
            status: phase::for_client(ro).0,
            step: "-".to_string(),
            set_weight: "-".to_string(),
            ready: format!(
                "{}/{}",
                st.ready_replicas.unwrap_or(0),
                st.replicas.unwrap_or(0)
            ),
            desired: ro.spec.replicas.unwrap_or(1),
            up_to_date: st.updated_replicas.unwrap_or(0),
            available: st.available_replicas.unwrap_or(0),
        };
        if let Some(canary) = ro.spec.canary() {
            line.strategy = "Canary".to_string();
            let n = canary.steps().len();
            if let Some(i) = st.current_step_index
                && n > 0
            {
                line.step = format!("{i}/{n}");
            }
            line.set_weight =
                steps::current_set_weight(ro, st.abort == Some(true), max_traffic_weight(ro))
                    .to_string();
        } else if ro.spec.blue_green().is_some() {
            line.strategy = "BlueGreen".to_string();
        }
        line
    }

    /// The line as printed (tab-separated padded cells), `now` for the TIMESTAMP column.
    pub fn render(&self, columns: Columns, now: Timestamp) -> String {
        let mut out = String::new();
        if columns.timestamp {
            let ts = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
            out.push_str(&format!("{ts:<20}\t"));
        }
        if columns.namespace {
            out.push_str(&format!("{:<9}\t", self.namespace));
        }
        out.push_str(&format!(
            "{:<10}\t{:<9}\t{:<12}\t{:<4}\t{:<10}\t{:<5}\t{:<7}\t{:<10}\t{:<9}",
            self.name,
            self.strategy,
            self.status,
            self.step,
            self.set_weight,
            self.ready,
            self.desired,
            self.up_to_date,
            self.available
        ));
        out
    }
}

/// The header line of `list rollouts`.
pub fn rollout_header(columns: Columns) -> String {
    let mut h = String::new();
    if columns.timestamp {
        h.push_str("TIMESTAMP\t");
    }
    if columns.namespace {
        h.push_str("NAMESPACE\t");
    }
    h.push_str(ROLLOUT_HEADER);
    h
}

/// Aligns tab-separated lines (two spaces between columns).
pub fn align(text: &str) -> String {
    let mut tw = TabWriter::new(Vec::new()).minwidth(0).padding(2);
    // Writing to a Vec cannot fail.
    let _ = tw.write_all(text.as_bytes());
    let _ = tw.flush();
    String::from_utf8_lossy(&tw.into_inner().unwrap_or_default()).into_owned()
}

/// The table of `list rollouts` (header and one line per Rollout, in the given order).
pub fn rollout_table(rollouts: &[Rollout], columns: Columns, now: Timestamp) -> String {
    let mut text = rollout_header(columns);
    for ro in rollouts {
        text.push_str(&RolloutLine::new(ro).render(columns, now));
        text.push('\n');
    }
    align(&text)
}

/// The table of `list experiments`.
pub fn experiment_table(
    experiments: &[Experiment],
    all_namespaces: bool,
    now: Timestamp,
) -> String {
    let mut text = String::new();
    if all_namespaces {
        text.push_str("NAMESPACE\t");
    }
    text.push_str(EXPERIMENT_HEADER);
    for exp in experiments {
        let st = exp.status.clone().unwrap_or_default();
        let phase = st.phase.clone().unwrap_or_default();
        let mut dur = "-".to_string();
        let mut remaining = "-".to_string();
        if let Some(d) = exp.spec.duration.as_deref().filter(|d| !d.is_empty())
            && let Ok(d) = parse_go_duration(d)
        {
            let d = SignedDuration::from_nanos(d.as_nanos());
            dur = human_duration(d);
            let completed = rollouts_api::analysis_phase::is_completed(&phase);
            if !completed && let Some(at) = &st.available_at {
                let left = d - now.duration_since(at.0);
                if left > SignedDuration::ZERO {
                    remaining = human_duration(left);
                }
            }
        }
        if all_namespaces {
            text.push_str(&format!(
                "{:<9}\t",
                exp.metadata.namespace.clone().unwrap_or_default()
            ));
        }
        text.push_str(&format!(
            "{:<10}\t{:<6}\t{:<8}\t{:<9}\t{:<3}\n",
            exp.metadata.name.clone().unwrap_or_default(),
            phase,
            dur,
            remaining,
            age(exp.metadata.creation_timestamp.as_ref().map(|t| t.0), now)
        ));
    }
    align(&text)
}
