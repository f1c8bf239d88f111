//! The YAML we hand to the cluster: the kubeconfig, KWOK's stages and the fake nodes.

use super::pki::Pki;

/// The label that makes KWOK fail a pod: its containers "exit 1" and the pod goes `Failed`.
pub const FAIL_LABEL: &str = "rollouts-e2e/fail";

/// An admin kubeconfig for `server`, pointing at the PKI files (absolute paths).
pub fn kubeconfig(server: &str, pki: &Pki) -> String {
    let q = |p: &std::path::Path| yaml_quote(&p.display().to_string());
    format!(
        "# Written by `cargo xtask cluster up`.\n\
         apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: rollouts-rs\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\n\
         users:\n\
         - name: rollouts-rs-admin\n  user:\n    client-certificate: {cert}\n    client-key: {key}\n\
         contexts:\n\
         - name: rollouts-rs\n  context:\n    cluster: rollouts-rs\n    user: rollouts-rs-admin\n\
         current-context: rollouts-rs\n",
        server = yaml_quote(server),
        ca = q(&pki.ca_cert),
        cert = q(&pki.admin_cert),
        key = q(&pki.admin_key),
    )
}

fn yaml_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `count` fake nodes, managed by KWOK (no taints, so that any pod can land on them).
pub fn nodes(count: u32) -> String {
    (0..count)
        .map(|i| {
            format!(
                "apiVersion: v1\n\
                 kind: Node\n\
                 metadata:\n  name: kwok-node-{i}\n  annotations:\n    kwok.x-k8s.io/node: fake\n\
                 \x20 labels:\n    kubernetes.io/hostname: kwok-node-{i}\n    kubernetes.io/os: linux\n\
                 \x20   kubernetes.io/arch: amd64\n    type: kwok\n\
                 spec:\n  podCIDR: 10.244.{i}.0/24\n  podCIDRs:\n  - 10.244.{i}.0/24\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// KWOK stages (its `--config`): how fake nodes and their pods move through their lifecycle.
///
/// Node: not Ready → Ready (with addresses, capacity and node info); Ready → a status heartbeat
/// every few minutes (KWOK renews the node's Lease on its own). Pod (on a fake node, i.e.
/// scheduled):
///
/// * `pod-ready`: Pending → Running and Ready (readiness gates too), with pod IPs from the
///   node's podCIDR;
/// * `pod-fail`: Pending with label `rollouts-e2e/fail: "true"` → Failed, every container
///   terminated with exit code 1 (it never becomes Ready);
/// * `pod-complete`: Running and owned by a Job → Succeeded, containers exited 0;
/// * `pod-delete`: a pod with a deletionTimestamp is removed at once (no grace period).
pub const KWOK_STAGES: &str = r#"# Written by `cargo xtask cluster up`: KWOK stages of the rollouts-rs test cluster.
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: NotIn
      values: ["True"]
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      {{ range NodeConditions }}
      - type: {{ .type | Quote }}
        status: {{ .status | Quote }}
        reason: {{ .reason | Quote }}
        message: {{ .message | Quote }}
        lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
      {{ end }}
      addresses:
      - type: InternalIP
        address: {{ NodeIP | Quote }}
      - type: Hostname
        address: {{ .metadata.name | Quote }}
      {{ with NodePort }}
      daemonEndpoints:
        kubeletEndpoint:
          Port: {{ . }}
      {{ end }}
      allocatable:
        cpu: "64"
        memory: 256Gi
        pods: "250"
      capacity:
        cpu: "64"
        memory: 256Gi
        pods: "250"
      nodeInfo:
        architecture: amd64
        operatingSystem: linux
        bootID: ""
        machineID: ""
        systemUUID: ""
        osImage: kwok
        kernelVersion: {{ printf "kwok-%s" Version | Quote }}
        kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
        kubeProxyVersion: {{ printf "kwok-%s" Version | Quote }}
        containerRuntimeVersion: {{ printf "kwok-%s" Version | Quote }}
      phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-heartbeat
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: In
      values: ["True"]
  delay:
    durationMilliseconds: 240000
    jitterDurationMilliseconds: 300000
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      {{ range NodeConditions }}
      - type: {{ .type | Quote }}
        status: {{ .status | Quote }}
        reason: {{ .reason | Quote }}
        message: {{ .message | Quote }}
        lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: ["Pending"]
    - key: '.metadata.labels["rollouts-e2e/fail"]'
      operator: NotIn
      values: ["true"]
  next:
    statusTemplate: |
      {{ $now := Now }}
      phase: Running
      startTime: {{ $now | Quote }}
      conditions:
      - type: PodScheduled
        status: "True"
        lastTransitionTime: {{ $now | Quote }}
      - type: Initialized
        status: "True"
        lastTransitionTime: {{ $now | Quote }}
      - type: ContainersReady
        status: "True"
        lastTransitionTime: {{ $now | Quote }}
      - type: Ready
        status: "True"
        lastTransitionTime: {{ $now | Quote }}
      {{ range .spec.readinessGates }}
      - type: {{ .conditionType | Quote }}
        status: "True"
        lastTransitionTime: {{ $now | Quote }}
      {{ end }}
      initContainerStatuses:
      {{ range .spec.initContainers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: true
        restartCount: 0
        state:
          terminated:
            exitCode: 0
            reason: Completed
            startedAt: {{ $now | Quote }}
            finishedAt: {{ $now | Quote }}
      {{ end }}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: true
        started: true
        restartCount: 0
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
      {{ with NodeIPsWith .spec.nodeName }}
      hostIP: {{ index . 0 | Quote }}
      hostIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      {{ with PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-fail
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: ["Pending"]
    - key: '.metadata.labels["rollouts-e2e/fail"]'
      operator: In
      values: ["true"]
  next:
    statusTemplate: |
      {{ $now := Now }}
      phase: Failed
      startTime: {{ $now | Quote }}
      conditions:
      - type: PodScheduled
        status: "True"
        lastTransitionTime: {{ $now | Quote }}
      - type: Initialized
        status: "True"
        lastTransitionTime: {{ $now | Quote }}
      - type: ContainersReady
        status: "False"
        reason: PodFailed
        lastTransitionTime: {{ $now | Quote }}
      - type: Ready
        status: "False"
        reason: PodFailed
        lastTransitionTime: {{ $now | Quote }}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: false
        started: false
        restartCount: 0
        state:
          terminated:
            exitCode: 1
            reason: Error
            message: "failed on purpose: the pod has label rollouts-e2e/fail=true"
            startedAt: {{ $now | Quote }}
            finishedAt: {{ $now | Quote }}
      {{ end }}
      {{ with NodeIPsWith .spec.nodeName }}
      hostIP: {{ index . 0 | Quote }}
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-complete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: ["Running"]
    - key: '.metadata.ownerReferences.[].kind'
      operator: In
      values: ["Job"]
  next:
    statusTemplate: |
      {{ $now := Now }}
      phase: Succeeded
      conditions:
      - type: ContainersReady
        status: "False"
        reason: PodCompleted
        lastTransitionTime: {{ $now | Quote }}
      - type: Ready
        status: "False"
        reason: PodCompleted
        lastTransitionTime: {{ $now | Quote }}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: false
        started: false
        restartCount: 0
        state:
          terminated:
            exitCode: 0
            reason: Completed
            startedAt: {{ $now | Quote }}
            finishedAt: {{ $now | Quote }}
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: Exists
  next:
    delete: true
"#;

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn kubeconfig_quotes_paths_and_names_the_server() {
        let p = |s: &str| PathBuf::from(format!("/c/pki/{s}"));
        let pki = Pki {
            ca_cert: p("ca.crt"),
            ca_key: p("ca.key"),
            server_cert: p("server.crt"),
            server_key: p("server.key"),
            admin_cert: PathBuf::from("/with \"quote\"/admin.crt"),
            admin_key: p("admin.key"),
            proxy_cert: p("proxy.crt"),
            proxy_key: p("proxy.key"),
            sa_key: p("sa.key"),
            sa_pub: p("sa.pub"),
        };
        let kc = kubeconfig("https://127.0.0.1:6443", &pki);
        assert!(kc.contains("server: \"https://127.0.0.1:6443\""), "{kc}");
        assert!(
            kc.contains("certificate-authority: \"/c/pki/ca.crt\""),
            "{kc}"
        );
        assert!(
            kc.contains(r#"client-certificate: "/with \"quote\"/admin.crt""#),
            "{kc}"
        );
        assert!(kc.contains("current-context: rollouts-rs"), "{kc}");
    }

    #[test]
    fn nodes_are_separate_documents_with_their_own_cidr() {
        let yaml = nodes(2);
        assert_eq!(yaml.matches("kind: Node").count(), 2);
        assert_eq!(yaml.matches("---\n").count(), 1);
        assert!(yaml.contains("name: kwok-node-1"));
        assert!(yaml.contains("podCIDR: 10.244.1.0/24"));
        assert!(!yaml.contains("taints"));
    }

    #[test]
    fn stages_cover_nodes_pods_and_the_fail_label() {
        for name in [
            "node-ready",
            "node-heartbeat",
            "pod-ready",
            "pod-fail",
            "pod-complete",
            "pod-delete",
        ] {
            assert!(
                KWOK_STAGES.contains(&format!("  name: {name}\n")),
                "missing stage {name}"
            );
        }
        assert_eq!(
            KWOK_STAGES
                .matches(&format!(".metadata.labels[\"{FAIL_LABEL}\"]"))
                .count(),
            2,
            "pod-ready must exclude and pod-fail select the fail label"
        );
    }
}
