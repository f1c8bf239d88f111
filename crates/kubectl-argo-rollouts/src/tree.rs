//! The text of `get rollout` and `get experiment`: a header (name, status, strategy, step,
//! weights, images, replicas) and a table whose first column is a tree of the Rollout's
//! revisions, ReplicaSets, pods, Experiments, AnalysisRuns and Jobs, laid out as Argo's plugin
//! lays it out.
//!
//! Rendering is a pure function of an [`info`](crate::info) value, the time to compute ages
//! from, and a [`Style`]; colours are ANSI escapes that the column alignment ignores.

use std::io::Write;

use jiff::Timestamp;
use tabwriter::TabWriter;

use crate::humanize::{age, human_duration};
use crate::info::{
    AnalysisRunInfo, ExperimentInfo, ImageInfo, ReplicaSetInfo, RolloutInfo, icon, tag,
};

/// Glyphs of the tree.
pub mod glyph {
    /// A Rollout.
    pub const ROLLOUT: &str = "⟳";
    /// A revision.
    pub const REVISION: &str = "#";
    /// A ReplicaSet.
    pub const REPLICA_SET: &str = "⧉";
    /// A pod.
    pub const POD: &str = "□";
    /// A Job.
    pub const JOB: &str = "⊞";
    /// An Experiment.
    pub const EXPERIMENT: &str = "Σ";
    /// An AnalysisRun.
    pub const ANALYSIS: &str = "α";
}

const RED: u8 = 31;
const GREEN: u8 = 32;
const YELLOW: u8 = 33;
const HI_BLUE: u8 = 94;

/// How to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    /// Whether to emit ANSI colours.
    pub color: bool,
}

impl Style {
    /// Plain text.
    pub const PLAIN: Style = Style { color: false };
    /// Coloured text.
    pub const COLOR: Style = Style { color: true };

    /// Argo's colour for a well-known word (icons, tags, analysis phases); 0 (reset) otherwise.
    fn code_for(word: &str) -> u8 {
        match word {
            icon::WAITING | icon::UNKNOWN | tag::CANARY => YELLOW,
            icon::PROGRESSING | tag::PREVIEW | tag::PING | tag::PONG | "Pending" | "Running" => {
                HI_BLUE
            }
            icon::WARNING | icon::BAD => RED,
            icon::OK | tag::STABLE | tag::ACTIVE => GREEN,
            _ => 0,
        }
    }

    /// `s` in the colour of the word `key`. With colours on, words without a colour are still
    /// wrapped in a reset sequence, as Argo does, so that every coloured cell has the same
    /// invisible overhead.
    pub fn paint_as(self, s: &str, key: &str) -> String {
        if !self.color {
            return s.to_string();
        }
        format!("\x1b[{}m{s}\x1b[0m", Self::code_for(key))
    }

    /// `s` in its own colour.
    pub fn paint(self, s: &str) -> String {
        self.paint_as(s, s)
    }
}

/// One header line: the label padded to 17 columns.
fn header_line(out: &mut String, label: &str, value: &str) {
    out.push_str(&format!("{label:<17}{value}\n"));
}

fn format_image(style: Style, image: &ImageInfo) -> String {
    if image.tags.is_empty() {
        return image.image.clone();
    }
    let tags: Vec<String> = image.tags.iter().map(|t| style.paint(t)).collect();
    format!("{} ({})", image.image, tags.join(", "))
}

fn images_lines(out: &mut String, style: Style, images: &[ImageInfo]) {
    for (i, image) in images.iter().enumerate() {
        header_line(
            out,
            if i == 0 { "Images:" } else { "" },
            &format_image(style, image),
        );
    }
}

/// Tree prefixes of a child: its own and the one its children continue with.
fn prefixes(is_last: bool, sub: &str) -> (String, String) {
    if is_last {
        (format!("{sub}└──"), format!("{sub}   "))
    } else {
        (format!("{sub}├──"), format!("{sub}│  "))
    }
}

/// A table row: tree cell, kind, status (icon and word), age, info.
fn row(rows: &mut String, tree: &str, kind: &str, status: &str, age: &str, info: &str) {
    rows.push_str(&format!("{tree}\t{kind}\t{status}\t{age}\t{info}\n"));
}

struct Table<'a> {
    style: Style,
    now: Timestamp,
    rows: &'a mut String,
}

impl Table<'_> {
    fn replica_set(&mut self, rs: &ReplicaSetInfo, prefix: &str, sub: &str) {
        let style = self.style;
        let mut infos = Vec::new();
        let mut name = rs.name.clone();
        if rs.stable {
            infos.push(style.paint(tag::STABLE));
            name = style.paint_as(&name, tag::STABLE);
        }
        if rs.canary {
            infos.push(style.paint(tag::CANARY));
            name = style.paint_as(&name, tag::CANARY);
        } else if rs.active {
            infos.push(style.paint(tag::ACTIVE));
            name = style.paint_as(&name, tag::ACTIVE);
        } else if rs.preview {
            infos.push(style.paint(tag::PREVIEW));
            name = style.paint_as(&name, tag::PREVIEW);
        }
        if rs.ping {
            infos.push(style.paint(tag::PING));
            name = style.paint_as(&name, tag::PING);
        }
        if rs.pong {
            infos.push(style.paint(tag::PONG));
            name = style.paint_as(&name, tag::PONG);
        }
        if !rs.scale_down_deadline.is_empty() {
            infos.push(format!(
                "delay:{}",
                scale_down_delay(&rs.scale_down_deadline, self.now)
            ));
        }
        row(
            self.rows,
            &format!("{prefix}{} {name}", glyph::REPLICA_SET),
            "ReplicaSet",
            &format!("{} {}", style.paint(rs.icon), rs.status),
            &age(rs.created, self.now),
            &infos.join(","),
        );
        for (i, pod) in rs.pods.iter().enumerate() {
            let (pod_prefix, _) = prefixes(i + 1 == rs.pods.len(), sub);
            let mut cols = vec![format!("ready:{}", pod.ready)];
            if pod.restarts > 0 {
                cols.push(format!("restarts:{}", pod.restarts));
            }
            row(
                self.rows,
                &format!("{pod_prefix}{} {}", glyph::POD, pod.name),
                "Pod",
                &format!("{} {}", style.paint(pod.icon), pod.status),
                &age(pod.created, self.now),
                &cols.join(","),
            );
        }
    }

    fn analysis_run(&mut self, ar: &AnalysisRunInfo, prefix: &str, sub: &str) {
        let style = self.style;
        let mut infos = Vec::new();
        for (n, ic) in [
            (ar.successful, icon::OK),
            (ar.failed, icon::BAD),
            (ar.inconclusive, icon::UNKNOWN),
            (ar.error, icon::WARNING),
        ] {
            if n > 0 {
                infos.push(format!("{} {n}", style.paint(ic)));
            }
        }
        row(
            self.rows,
            &format!(
                "{prefix}{} {}",
                glyph::ANALYSIS,
                style.paint_as(&ar.name, &ar.status)
            ),
            "AnalysisRun",
            &format!("{} {}", style.paint(ar.icon), ar.status),
            &age(ar.created, self.now),
            &infos.join(","),
        );
        for (i, job) in ar.jobs.iter().enumerate() {
            let (job_prefix, _) = prefixes(i + 1 == ar.jobs.len(), sub);
            row(
                self.rows,
                &format!(
                    "{job_prefix}{} {}",
                    glyph::JOB,
                    style.paint_as(&job.name, &job.status)
                ),
                "Job",
                &format!("{} {}", style.paint(job.icon), job.status),
                &age(job.created, self.now),
                "",
            );
        }
    }

    fn experiment(&mut self, exp: &ExperimentInfo, prefix: &str, sub: &str) {
        let style = self.style;
        row(
            self.rows,
            &format!(
                "{prefix}{} {}",
                glyph::EXPERIMENT,
                style.paint_as(&exp.name, &exp.status)
            ),
            "Experiment",
            &format!("{} {}", style.paint(exp.icon), exp.status),
            &age(exp.created, self.now),
            "",
        );
        let total = exp.replica_sets.len() + exp.analysis_runs.len();
        let mut n = 0;
        for rs in &exp.replica_sets {
            n += 1;
            let (p, s) = prefixes(n == total, sub);
            self.replica_set(rs, &p, &s);
        }
        for ar in &exp.analysis_runs {
            n += 1;
            let (p, s) = prefixes(n == total, sub);
            self.analysis_run(ar, &p, &s);
        }
    }
}

/// `delay:<remaining>` of a ReplicaSet waiting to be scaled down (`passed` once due).
pub fn scale_down_delay(deadline: &str, now: Timestamp) -> String {
    match deadline.parse::<Timestamp>() {
        Ok(t) if t < now => "passed".to_string(),
        Ok(t) => human_duration(t.duration_since(now)),
        Err(_) => String::new(),
    }
}

/// Aligns tab-separated cells into columns two spaces apart (colours do not count).
pub fn align(rows: &str) -> String {
    let mut tw = TabWriter::new(Vec::new()).minwidth(0).padding(2).ansi(true);
    // Writing to a Vec cannot fail.
    let _ = tw.write_all(rows.as_bytes());
    let _ = tw.flush();
    let bytes = tw.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The text of `get rollout`.
pub fn render_rollout(info: &RolloutInfo, now: Timestamp, style: Style) -> String {
    let mut out = String::new();
    header_line(&mut out, "Name:", &info.name);
    header_line(&mut out, "Namespace:", &info.namespace);
    header_line(
        &mut out,
        "Status:",
        &format!("{} {}", style.paint(info.icon), info.status),
    );
    if !info.message.is_empty() {
        header_line(&mut out, "Message:", &info.message);
    }
    header_line(&mut out, "Strategy:", &info.strategy);
    if info.strategy == "Canary" {
        header_line(&mut out, "  Step:", &info.step);
        header_line(&mut out, "  SetWeight:", &info.set_weight);
        header_line(&mut out, "  ActualWeight:", &info.actual_weight);
    }
    images_lines(&mut out, style, &info.images());
    out.push_str("Replicas:\n");
    header_line(&mut out, "  Desired:", &info.desired.to_string());
    header_line(&mut out, "  Current:", &info.current.to_string());
    header_line(&mut out, "  Updated:", &info.updated.to_string());
    header_line(&mut out, "  Ready:", &info.ready.to_string());
    header_line(&mut out, "  Available:", &info.available.to_string());
    out.push('\n');

    let mut rows = String::new();
    rows.push_str("NAME\tKIND\tSTATUS\tAGE\tINFO\n");
    row(
        &mut rows,
        &format!("{} {}", glyph::ROLLOUT, info.name),
        "Rollout",
        &format!("{} {}", style.paint(info.icon), info.status),
        &age(info.created, now),
        "",
    );
    let revisions = info.revisions();
    let mut table = Table {
        style,
        now,
        rows: &mut rows,
    };
    for (i, rev) in revisions.iter().enumerate() {
        let (prefix, sub) = prefixes(i + 1 == revisions.len(), "");
        row(
            table.rows,
            &format!("{prefix}{} revision:{rev}", glyph::REVISION),
            "",
            " ",
            "",
            "",
        );
        let sets: Vec<&ReplicaSetInfo> = info
            .replica_sets
            .iter()
            .filter(|r| r.revision == *rev)
            .collect();
        let exps: Vec<&ExperimentInfo> = info
            .experiments
            .iter()
            .filter(|e| e.revision == *rev)
            .collect();
        let runs: Vec<&AnalysisRunInfo> = info
            .analysis_runs
            .iter()
            .filter(|a| a.revision == *rev)
            .collect();
        let total = sets.len() + exps.len() + runs.len();
        let mut n = 0;
        for rs in sets {
            n += 1;
            let (p, s) = prefixes(n == total, &sub);
            table.replica_set(rs, &p, &s);
        }
        for exp in exps {
            n += 1;
            let (p, s) = prefixes(n == total, &sub);
            table.experiment(exp, &p, &s);
        }
        for ar in runs {
            n += 1;
            let (p, s) = prefixes(n == total, &sub);
            table.analysis_run(ar, &p, &s);
        }
    }
    out.push_str(&align(&rows));
    out
}

/// The text of `get experiment`.
pub fn render_experiment(info: &ExperimentInfo, now: Timestamp, style: Style) -> String {
    let mut out = String::new();
    header_line(&mut out, "Name:", &info.name);
    header_line(&mut out, "Namespace:", &info.namespace);
    header_line(
        &mut out,
        "Status:",
        &format!("{} {}", style.paint(info.icon), info.status),
    );
    if !info.message.is_empty() {
        header_line(&mut out, "Message:", &info.message);
    }
    images_lines(&mut out, style, &info.images());
    out.push('\n');
    let mut rows = String::new();
    rows.push_str("NAME\tKIND\tSTATUS\tAGE\tINFO\n");
    Table {
        style,
        now,
        rows: &mut rows,
    }
    .experiment(info, "", "");
    out.push_str(&align(&rows));
    out
}

/// Clears the terminal and moves the cursor home (what `--watch` writes before each frame).
pub const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J\x1b[0;0H";
