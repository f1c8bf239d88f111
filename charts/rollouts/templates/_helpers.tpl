{{/*
Helpers of the rollouts-rs chart: names, labels, the controller's arguments, the checks of the
values, and the rules of the controller's role.
*/}}

{{/* The chart name (app.kubernetes.io/name). */}}
{{- define "rollouts.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The base name of the objects: fullnameOverride, else the release name when it already contains
the chart name (`argo-rollouts`), else `<release>-<chart>`.
*/}}
{{- define "rollouts.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "rollouts.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* `name-version` of the chart, for the helm.sh/chart label. */}}
{{- define "rollouts.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The labels that select the controller pods (never change them: Deployment selectors are immutable). */}}
{{- define "rollouts.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rollouts.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: rollouts-controller
{{- end -}}

{{/* The labels of every object. */}}
{{- define "rollouts.labels" -}}
{{ include "rollouts.selectorLabels" . }}
app.kubernetes.io/part-of: rollouts-rs
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "rollouts.chart" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The controller's ServiceAccount. */}}
{{- define "rollouts.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rollouts.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The controller image: registry/repository:tag (tag defaults to the appVersion). */}}
{{- define "rollouts.image" -}}
{{- $image := .Values.controller.image -}}
{{- $repository := required "controller.image.repository must be set" $image.repository -}}
{{- $tag := default .Chart.AppVersion ($image.tag | toString) -}}
{{- if $image.registry -}}
{{- printf "%s/%s:%s" $image.registry $repository $tag -}}
{{- else -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
Checks across values (values.schema.json checks each value's type and form); each failure names
the value.
*/}}
{{- define "rollouts.validate" -}}
{{- if and (gt (int .Values.controller.replicas) 1) (not .Values.controller.leaderElection.enabled) -}}
{{- fail "controller.leaderElection.enabled: false with controller.replicas > 1 would run several active controllers at once" -}}
{{- end -}}
{{- if gt (int .Values.controller.replicas) 1 -}}
{{- range .Values.controller.extraArgs -}}
{{- if eq (toString .) "--leader-elect=false" -}}
{{- fail "controller.extraArgs: --leader-elect=false with controller.replicas > 1 would run several active controllers at once" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.controller.metrics.serviceMonitor.enabled (not .Values.controller.metrics.enabled) -}}
{{- fail "controller.metrics.serviceMonitor.enabled needs controller.metrics.enabled (the ServiceMonitor scrapes the metrics Service)" -}}
{{- end -}}
{{- end -}}

{{/* The controller's arguments, from the values. */}}
{{- define "rollouts.args" -}}
{{- $controller := .Values.controller -}}
- --healthzPort={{ $controller.containerPorts.healthz }}
- --metricsport={{ $controller.containerPorts.metrics }}
- --loglevel={{ $controller.logging.level }}
- --logformat={{ $controller.logging.format }}
{{- if ne (toString $controller.logging.kloglevel) "" }}
- --kloglevel={{ $controller.logging.kloglevel }}
{{- end }}
{{- if not .Values.clusterInstall }}
- --namespaced
{{- end }}
{{- with .Values.instanceID }}
- --instance-id={{ . }}
{{- end }}
- --leader-elect={{ $controller.leaderElection.enabled }}
{{- if $controller.leaderElection.enabled }}
{{- with $controller.leaderElection.leaseDuration }}
- --leader-election-lease-duration={{ . }}
{{- end }}
{{- with $controller.leaderElection.renewDeadline }}
- --leader-election-renew-deadline={{ . }}
{{- end }}
{{- with $controller.leaderElection.retryPeriod }}
- --leader-election-retry-period={{ . }}
{{- end }}
{{- end }}
{{- range .Values.controller.extraArgs }}
- {{ . | toString | quote }}
{{- end }}
{{- end -}}

{{/*
The rules of the controller's role, derived from what the controller, its traffic routers and its
metric providers read and write (docs/install.md explains each one and compares them with Argo's
ClusterRole). Leases are not here: they get a Role of their own in the release namespace.
Argument: a dict with `root` (the chart context) and `cluster` (true for the ClusterRole).
*/}}
{{- define "rollouts.rules" -}}
{{- $values := .root.Values -}}
# Rollouts: watched; replicas and annotations merge-patched; status written through /status.
- apiGroups: ["argoproj.io"]
  resources: ["rollouts"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["argoproj.io"]
  resources: ["rollouts/status"]
  verbs: ["patch"]
# Objects the controller owns carry blockOwnerDeletion: on clusters that enforce owner references
# (OwnerReferencesPermissionEnforcement), setting it needs update on the owner's finalizers.
- apiGroups: ["argoproj.io"]
  resources: ["rollouts/finalizers", "analysisruns/finalizers", "experiments/finalizers"]
  verbs: ["update"]
# AnalysisRuns (the AnalysisRun controller writes their status) and Experiments.
- apiGroups: ["argoproj.io"]
  resources: ["analysisruns", "experiments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Templates are read when an AnalysisRun is built.
- apiGroups: ["argoproj.io"]
  resources:
    - analysistemplates
    {{- if .cluster }}
    - clusteranalysistemplates
    {{- end }}
  verbs: ["get"]
# ReplicaSets of each revision; a workloadRef's Deployment (scaled down once the Rollout is
# healthy), ReplicaSet or PodTemplate.
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: [""]
  resources: ["podtemplates"]
  verbs: ["get"]
# Service selectors are switched between revisions; Experiments create and delete the Services
# of their templates.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Pods: ephemeral metadata is patched, restartAt evicts, the job provider reads its pods' errors.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "patch"]
- apiGroups: [""]
  resources: ["pods/eviction"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
# Secret values of AnalysisTemplate arguments (valueFrom.secretKeyRef), read when measuring.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# The job metric provider; the AnalysisRun controller watches its Jobs.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
# The nginx router's canary Ingress and the ALB router's annotations.
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "create", "patch"]
{{- if $values.providerRBAC.enabled }}
{{- with $values.providerRBAC.providers }}
{{- if .istio }}
# istio router: VirtualServices and DestinationRules are updated as read (resourceVersion).
- apiGroups: ["networking.istio.io"]
  resources: ["virtualservices", "destinationrules"]
  verbs: ["get", "update"]
{{- end }}
{{- if .smi }}
# smi router: a TrafficSplit per Rollout.
- apiGroups: ["split.smi-spec.io"]
  resources: ["trafficsplits"]
  verbs: ["get", "create", "patch"]
{{- end }}
{{- if .ambassador }}
# ambassador router: canary Mappings, deleted when the rollout ends.
- apiGroups: ["getambassador.io"]
  resources: ["mappings"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["x.getambassador.io"]
  resources: ["ambassadormappings"]
  verbs: ["get", "create", "patch", "delete"]
{{- end }}
{{- if .traefik }}
# traefik router: weighted TraefikServices.
- apiGroups: ["traefik.io", "traefik.containo.us"]
  resources: ["traefikservices"]
  verbs: ["get", "patch"]
{{- end }}
{{- if .awsAppMesh }}
# appMesh router: VirtualServices are read; VirtualRouter weights and VirtualNode pod selectors
# are patched.
- apiGroups: ["appmesh.k8s.aws"]
  resources: ["virtualservices", "virtualrouters", "virtualnodes"]
  verbs: ["get", "update", "patch"]
{{- end }}
{{- if .apisix }}
# apisix router: the ApisixRoute, and its copies for header routes.
- apiGroups: ["apisix.apache.org"]
  resources: ["apisixroutes"]
  verbs: ["get", "create", "patch", "delete"]
{{- end }}
{{- if .gatewayAPI }}
# gatewayapi router: HTTPRoute and GRPCRoute backend weights.
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes", "grpcroutes"]
  verbs: ["get", "patch"]
{{- end }}
{{- end }}
{{- end }}
{{- with $values.providerRBAC.additionalRules }}
# providerRBAC.additionalRules
{{ toYaml . }}
{{- end }}
{{- end -}}
