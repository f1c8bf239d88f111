//! Ephemeral pod metadata (`canaryMetadata`/`stableMetadata`, `previewMetadata`/
//! `activeMetadata`): labels and annotations injected into a ReplicaSet's pod template and
//! pods while it plays a role, and removed when it stops (`argo-core.md` §2.14).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rollouts_api::{PodTemplateMetadata, labels};

use crate::context::{Ctx, parse_ephemeral};
use crate::plan::{Effect, ReplicaSetUpdate};

/// Argo's `SyncEphemeralPodMetadata`: inject `desired`, remove what `existing` injected that
/// `desired` no longer has. Returns the new metadata and whether it changed.
pub fn sync_metadata(
    meta: &ObjectMeta,
    existing: Option<&PodTemplateMetadata>,
    desired: Option<&PodTemplateMetadata>,
) -> (ObjectMeta, bool) {
    let mut meta = meta.clone();
    let mut modified = false;
    if let Some(d) = desired {
        for (k, v) in d.annotations.iter().flatten() {
            let map = meta.annotations.get_or_insert_with(Default::default);
            if map.get(k) != Some(v) {
                map.insert(k.clone(), v.clone());
                modified = true;
            }
        }
        for (k, v) in d.labels.iter().flatten() {
            let map = meta.labels.get_or_insert_with(Default::default);
            if map.get(k) != Some(v) {
                map.insert(k.clone(), v.clone());
                modified = true;
            }
        }
    }
    if let Some(e) = existing {
        for k in e.annotations.iter().flatten().map(|(k, _)| k) {
            let still =
                desired.is_some_and(|d| d.annotations.as_ref().is_some_and(|a| a.contains_key(k)));
            if !still
                && let Some(map) = meta.annotations.as_mut()
                && map.remove(k).is_some()
            {
                modified = true;
            }
        }
        for k in e.labels.iter().flatten().map(|(k, _)| k) {
            let still =
                desired.is_some_and(|d| d.labels.as_ref().is_some_and(|a| a.contains_key(k)));
            if !still
                && let Some(map) = meta.labels.as_mut()
                && map.remove(k).is_some()
            {
                modified = true;
            }
        }
    }
    (meta, modified)
}

impl Ctx<'_> {
    /// Argo's `syncEphemeralMetadata` for one ReplicaSet.
    pub(crate) fn sync_ephemeral(&mut self, i: usize, desired: Option<&PodTemplateMetadata>) {
        let existing = parse_ephemeral(&self.rs[i]);
        let meta = self
            .template(i)
            .and_then(|t| t.metadata.clone())
            .unwrap_or_default();
        let (new_meta, modified) = sync_metadata(&meta, existing.as_ref(), desired);
        if !modified {
            return;
        }
        let name = self.rs[i].name.clone();
        if self.rs[i].spec_replicas != 0 {
            self.emit(Effect::SyncPodMetadata {
                replica_set: name.clone(),
                previous: existing,
                desired: desired.cloned(),
            });
        }
        let mut update = ReplicaSetUpdate {
            template_metadata: Some(PodTemplateMetadata {
                labels: new_meta.labels.clone(),
                annotations: new_meta.annotations.clone(),
            }),
            ..Default::default()
        };
        match desired {
            Some(d) => {
                let value = serde_json::to_string(d).unwrap_or_default();
                self.rs[i]
                    .annotations
                    .insert(labels::EPHEMERAL_METADATA.to_string(), value.clone());
                update
                    .set_annotations
                    .insert(labels::EPHEMERAL_METADATA.to_string(), value);
            }
            None => {
                self.rs[i].annotations.remove(labels::EPHEMERAL_METADATA);
                update
                    .remove_annotations
                    .push(labels::EPHEMERAL_METADATA.to_string());
            }
        }
        if let Some(t) = self.template_mut(i) {
            t.metadata = Some(new_meta);
        }
        self.emit(Effect::UpdateReplicaSet { name, update });
    }

    /// Argo's `reconcileEphemeralMetadata`.
    pub(crate) fn reconcile_ephemeral(&mut self) {
        let (new_md, stable_md) = if let Some(c) = self.ro.spec.canary() {
            (c.canary_metadata.clone(), c.stable_metadata.clone())
        } else if let Some(b) = self.ro.spec.blue_green() {
            (b.preview_metadata.clone(), b.active_metadata.clone())
        } else {
            return;
        };
        if new_md.is_none() && stable_md.is_none() {
            return;
        }
        let stable = self.old_stable().to_string();
        let fully =
            stable.is_empty() || Some(stable.as_str()) == self.new_rs.map(|i| self.rs[i].hash());
        if let Some(n) = self.new_rs {
            self.sync_ephemeral(
                n,
                if fully {
                    stable_md.as_ref()
                } else {
                    new_md.as_ref()
                },
            );
        }
        if !fully && let Some(s) = self.stable_rs {
            self.sync_ephemeral(s, stable_md.as_ref());
        }
        for i in self.others.clone() {
            self.sync_ephemeral(i, None);
        }
    }
}
