//! Kubernetes Events that plugins ask the controller to emit on the object they act for.
//!
//! Plugins do not talk to the Events API themselves: they hand a [`PluginEvent`] to an
//! [`EventSink`], and the controller records it on the Rollout or AnalysisRun (with Argo's reasons,
//! such as `CreatingCanaryIngress` or `TrafficSplitCreated`, so notifications keep working).

use std::sync::Mutex;

/// Kubernetes Event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Something happened as expected.
    Normal,
    /// Something a person may need to look at.
    Warning,
}

/// One Event: a reason (`UpperCamelCase`, stable) and a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginEvent {
    /// Normal or Warning.
    pub kind: EventKind,
    /// Machine-readable reason, e.g. `TrafficSplitCreated`.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

impl PluginEvent {
    /// A Normal event.
    pub fn normal(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: EventKind::Normal,
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// A Warning event.
    pub fn warning(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: EventKind::Warning,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Where plugins send their events. Emitting never blocks and never fails: the controller
/// buffers events and publishes them after the plugin call returns.
pub trait EventSink: Send + Sync {
    /// Queue `event` for publication.
    fn emit(&self, event: PluginEvent);
}

/// An [`EventSink`] that drops everything (for callers that have nowhere to publish).
#[derive(Clone, Copy, Debug, Default)]
pub struct DiscardEvents;

impl EventSink for DiscardEvents {
    fn emit(&self, _event: PluginEvent) {}
}

/// An [`EventSink`] that keeps every event in memory, in order; the controller drains it after each
/// plugin call, and tests read it.
#[derive(Debug, Default)]
pub struct RecordedEvents(Mutex<Vec<PluginEvent>>);

impl RecordedEvents {
    /// Takes the events recorded so far, leaving the sink empty.
    pub fn drain(&self) -> Vec<PluginEvent> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}

impl EventSink for RecordedEvents {
    fn emit(&self, event: PluginEvent) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(event);
    }
}
