//! Command-line flags, compatible with Argo Rollouts' `rollouts-controller`.
//!
//! Every flag Argo's controller accepts is accepted here with the same name, default and value
//! syntax, so existing Helm values and manifests start this binary unchanged (`argo-core.md`
//! §3.1). Booleans take `--flag` or `--flag=false` (never a separate word, as in Go's pflag);
//! durations use Go's syntax (`15s`, `1m30s`). A flag whose feature this build does not have yet
//! is accepted and reported once at startup by [`Flags::inert`].
//!
//! The standard kubectl client flags (`--kubeconfig`, `--context`, `--namespace`, `--server`,
//! `--token`, ...) are accepted too; [`crate::client`] applies them.
//!
//! Flags of our own (not in Argo) are marked as such in their help: `--bind-address`.

use std::{path::PathBuf, time::Duration};

use clap::{ArgAction, Parser};

use crate::error::{Error, Result};

/// Name of the Lease used for leader election (Argo's).
pub const LEASE_NAME: &str = "argo-rollouts-controller-lock";

/// Controller namespace when `POD_NAMESPACE` is not set and no service account namespace is
/// mounted.
pub const DEFAULT_NAMESPACE: &str = "argo-rollouts";

/// The controller's flags.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "rollouts-controller",
    about = "rollouts-controller drives Argo Rollouts objects (argoproj.io/v1alpha1): a drop-in \
             replacement for Argo's rollouts-controller",
    disable_version_flag = true
)]
pub struct Flags {
    // ---- kubectl client flags -------------------------------------------------------------
    /// Path to a kube config. Only required if out-of-cluster.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The name of the kubeconfig context to use.
    #[arg(long)]
    pub context: Option<String>,
    /// The name of the kubeconfig cluster to use.
    #[arg(long)]
    pub cluster: Option<String>,
    /// The name of the kubeconfig user to use.
    #[arg(long)]
    pub user: Option<String>,
    /// If present, the namespace scope for this CLI request (with --namespaced: the namespace
    /// to watch).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// The address and port of the Kubernetes API server.
    #[arg(short = 's', long)]
    pub server: Option<String>,
    /// Bearer token for authentication to the API server.
    #[arg(long)]
    pub token: Option<String>,
    /// Username for basic authentication to the API server.
    #[arg(long)]
    pub username: Option<String>,
    /// Password for basic authentication to the API server.
    #[arg(long)]
    pub password: Option<String>,
    /// Username to impersonate for the operation.
    #[arg(long = "as")]
    pub as_user: Option<String>,
    /// Group to impersonate for the operation; repeat for several groups.
    #[arg(long = "as-group")]
    pub as_group: Vec<String>,
    /// UID to impersonate for the operation.
    #[arg(long = "as-uid")]
    pub as_uid: Option<String>,
    /// Path to a cert file for the certificate authority.
    #[arg(long)]
    pub certificate_authority: Option<PathBuf>,
    /// Path to a client certificate file for TLS.
    #[arg(long)]
    pub client_certificate: Option<PathBuf>,
    /// Path to a client key file for TLS.
    #[arg(long)]
    pub client_key: Option<PathBuf>,
    /// If true, the server's certificate will not be checked for validity.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub insecure_skip_tls_verify: bool,
    /// Server name to use for server certificate validation.
    #[arg(long)]
    pub tls_server_name: Option<String>,
    /// The length of time to wait before giving up on a single server request (`0`: no
    /// timeout).
    #[arg(long, default_value = "0")]
    pub request_timeout: String,
    /// If true, opt-out of response compression for all requests to the server.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub disable_compression: bool,
    /// If provided, this URL will be used to connect via proxy.
    #[arg(long)]
    pub proxy_url: Option<String>,

    // ---- Argo's controller flags ----------------------------------------------------------
    /// Time period in seconds for rollouts resync.
    #[arg(long, default_value_t = 900)]
    pub rollout_resync: i64,
    /// Runs controller in namespaced mode (does not require cluster RBAC).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub namespaced: bool,
    /// Set the logging level. One of: debug|info|warn|error.
    #[arg(long, default_value = "info")]
    pub loglevel: String,
    /// Set the logging format. One of: text|json.
    #[arg(long, default_value = "")]
    pub logformat: String,
    /// Set the klog logging level (accepted; this controller has no klog).
    #[arg(long, default_value_t = 0)]
    pub kloglevel: i32,
    /// Set the port the metrics endpoint should be exposed over.
    #[arg(long = "metricsPort", alias = "metricsport", default_value_t = 8090)]
    pub metrics_port: u16,
    /// Set the port the healthz endpoint should be exposed over.
    #[arg(long = "healthzPort", alias = "healthzport", default_value_t = 8080)]
    pub healthz_port: u16,
    /// Address the metrics and healthz servers listen on (ours, not Argo's).
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: String,
    /// Indicates which argo rollout objects the controller should operate on.
    #[arg(long, default_value = "")]
    pub instance_id: String,
    /// Maximum QPS (queries per second) to the K8s API server.
    #[arg(long, default_value_t = 40.0)]
    pub qps: f32,
    /// Maximum burst for throttle.
    #[arg(long, default_value_t = 80)]
    pub burst: u32,
    /// Set the number of worker threads for the Rollout controller.
    #[arg(long, default_value_t = 10)]
    pub rollout_threads: u16,
    /// Set the number of worker threads for the Experiment controller.
    #[arg(long, default_value_t = 10)]
    pub experiment_threads: u16,
    /// Set the number of worker threads for the AnalysisRun controller.
    #[arg(long, default_value_t = 30)]
    pub analysis_threads: u16,
    /// Set the number of worker threads for the Service controller.
    #[arg(long, default_value_t = 10)]
    pub service_threads: u16,
    /// Set the number of worker threads for the Ingress controller.
    #[arg(long, default_value_t = 10)]
    pub ingress_threads: u16,
    /// Number of pods updated in parallel when ephemeral metadata changes.
    #[arg(long, default_value_t = 10)]
    pub ephemeral_metadata_threads: usize,
    /// Retries of a pod update when ephemeral metadata changes.
    #[arg(long, default_value_t = 3)]
    pub ephemeral_metadata_update_pod_retries: u32,
    /// Set the default Istio apiVersion that controller should look when manipulating
    /// VirtualServices.
    #[arg(long, default_value = "v1alpha3")]
    pub istio_api_version: String,
    /// Set the Ambassador apiVersion that controller should look when manipulating Ambassador
    /// Mappings.
    #[arg(long, default_value = "getambassador.io/v2")]
    pub ambassador_api_version: String,
    /// Set the default TrafficSplit apiVersion that controller uses when creating
    /// TrafficSplits.
    #[arg(long, default_value = "v1alpha1")]
    pub traffic_split_api_version: String,
    /// Set the default Traefik apiGroup that controller uses.
    #[arg(long, default_value = "traefik.io")]
    pub traefik_api_group: String,
    /// Set the default Traefik apiVersion that controller uses.
    #[arg(long, default_value = "traefik.io/v1alpha1")]
    pub traefik_api_version: String,
    /// Set the Ingress apiVersion that the controller should use (auto-detected if empty).
    #[arg(long, default_value = "")]
    pub ingress_api_version: String,
    /// Set the default AppMesh CRD Version that controller uses when manipulating resources.
    #[arg(long, default_value = "v1beta2")]
    pub appmesh_crd_version: String,
    /// Defines all the ingress class annotations that the alb ingress controller operates on.
    #[arg(long, default_values_t = vec!["alb".to_string()])]
    pub alb_ingress_classes: Vec<String>,
    /// Defines all the ingress class annotations that the nginx ingress controller operates on.
    #[arg(long, default_values_t = vec!["nginx".to_string()])]
    pub nginx_ingress_classes: Vec<String>,
    /// Verify ALB target group before progressing through steps (requires AWS privileges).
    #[arg(long, alias = "alb-verify-weight", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub aws_verify_target_group: bool,
    /// The apiVersion of AWS TargetGroupBindings.
    #[arg(long, default_value = "elbv2.k8s.aws/v1beta1")]
    pub aws_target_group_binding_api_version: String,
    /// The tag key of the resource ID of ALB load balancers.
    #[arg(long, default_value = "ingress.k8s.aws/resource")]
    pub alb_tag_key_resource_id: String,
    /// Print version.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub version: bool,
    /// If true, controller will perform leader election between instances to ensure no more
    /// than one instance of controller operates at a time.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = true, default_missing_value = "true")]
    pub leader_elect: bool,
    /// Namespace of the leader election Lease (default: the controller namespace).
    #[arg(long, default_value = "")]
    pub leader_election_namespace: String,
    /// The duration that non-leader candidates will wait after observing a leadership renewal
    /// until attempting to acquire leadership of a led but unrenewed leader slot.
    #[arg(long, default_value = "15s")]
    pub leader_election_lease_duration: String,
    /// The interval between attempts by the acting master to renew a leadership slot before it
    /// stops leading.
    #[arg(long, default_value = "10s")]
    pub leader_election_renew_deadline: String,
    /// The duration the clients should wait between attempting acquisition and renewal of a
    /// leadership.
    #[arg(long, default_value = "2s")]
    pub leader_election_retry_period: String,
    /// Allows rollouts controller to pull notification config from the namespace that the
    /// rollout resource is in.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true")]
    pub self_service_notification_enabled: bool,
    /// Explicitly specify the list of controllers to run; only `analysis` is supported.
    #[arg(long, value_delimiter = ',')]
    pub controllers: Vec<String>,
    /// Enable pprof profiling on controller by providing a server address.
    #[arg(long, default_value = "")]
    pub enable_pprof_address: String,
}

/// Leader election timing, parsed from the `--leader-election-*` flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a lease is valid after its last renewal.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up leading.
    pub renew_deadline: Duration,
    /// Pause between attempts.
    pub retry_period: Duration,
}

/// Log verbosity from `--loglevel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// `trace`.
    Trace,
    /// `debug`.
    Debug,
    /// `info`.
    Info,
    /// `warn`/`warning`.
    Warn,
    /// `error`, `fatal`, `panic`.
    Error,
}

/// Log format from `--logformat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (`text`, or empty).
    Text,
    /// One JSON object per line.
    Json,
}

impl Flags {
    /// Parses the process arguments (exits with usage on error, as clap does).
    pub fn from_env() -> Self {
        Self::parse()
    }

    /// The resync period (`--rollout-resync`, seconds).
    pub fn resync(&self) -> Result<Duration> {
        if self.rollout_resync <= 0 {
            return Err(Error::Flag {
                flag: "rollout-resync",
                message: format!(
                    "must be a positive number of seconds, got {}",
                    self.rollout_resync
                ),
            });
        }
        Ok(Duration::from_secs(self.rollout_resync as u64))
    }

    /// The leader election timing, checked as client-go checks it.
    pub fn lease_timing(&self) -> Result<LeaseTiming> {
        let lease_duration = go_duration(
            "leader-election-lease-duration",
            &self.leader_election_lease_duration,
        )?;
        let renew_deadline = go_duration(
            "leader-election-renew-deadline",
            &self.leader_election_renew_deadline,
        )?;
        let retry_period = go_duration(
            "leader-election-retry-period",
            &self.leader_election_retry_period,
        )?;
        if lease_duration <= renew_deadline {
            return Err(Error::Flag {
                flag: "leader-election-lease-duration",
                message: "must be greater than --leader-election-renew-deadline".into(),
            });
        }
        if retry_period.is_zero()
            || renew_deadline.as_secs_f64() <= 1.2 * retry_period.as_secs_f64()
        {
            return Err(Error::Flag {
                flag: "leader-election-renew-deadline",
                message: "must be greater than 1.2 times --leader-election-retry-period".into(),
            });
        }
        if lease_duration.as_secs() < 1 {
            return Err(Error::Flag {
                flag: "leader-election-lease-duration",
                message: "must be at least one second".into(),
            });
        }
        Ok(LeaseTiming {
            lease_duration,
            renew_deadline,
            retry_period,
        })
    }

    /// `--request-timeout` (`0`: none).
    pub fn request_timeout(&self) -> Result<Option<Duration>> {
        let t = self.request_timeout.trim();
        if t.is_empty() || t == "0" {
            return Ok(None);
        }
        // kubectl accepts a bare integer as seconds.
        if let Ok(secs) = t.parse::<u64>() {
            return Ok(Some(Duration::from_secs(secs)));
        }
        let d = go_duration("request-timeout", t)?;
        Ok((!d.is_zero()).then_some(d))
    }

    /// `--loglevel`, with logrus' spellings.
    pub fn log_level(&self) -> Result<LogLevel> {
        match self.loglevel.to_ascii_lowercase().as_str() {
            "trace" => Ok(LogLevel::Trace),
            "debug" => Ok(LogLevel::Debug),
            "info" => Ok(LogLevel::Info),
            "warn" | "warning" => Ok(LogLevel::Warn),
            "error" | "fatal" | "panic" => Ok(LogLevel::Error),
            other => Err(Error::Flag {
                flag: "loglevel",
                message: format!("not a valid logrus Level: {other:?}"),
            }),
        }
    }

    /// `--logformat`; an unknown value falls back to text (as Argo does, with a log line).
    pub fn log_format(&self) -> (LogFormat, Option<String>) {
        match self.logformat.to_ascii_lowercase().as_str() {
            "json" => (LogFormat::Json, None),
            "" | "text" => (LogFormat::Text, None),
            other => (
                LogFormat::Text,
                Some(format!("Unknown format: {other}. Using text logformat")),
            ),
        }
    }

    /// Checks `--controllers`: only `analysis` is a known value.
    pub fn analysis_only(&self) -> Result<bool> {
        let mut analysis = false;
        for c in self.controllers.iter().filter(|c| !c.is_empty()) {
            if c == "analysis" {
                analysis = true;
            } else {
                return Err(Error::Flag {
                    flag: "controllers",
                    message: format!("unsupported controller: {c}"),
                });
            }
        }
        Ok(analysis)
    }

    /// The name of the leader election Lease (`-<instance-id>` appended when set).
    pub fn lease_name(&self) -> String {
        if self.instance_id.is_empty() {
            LEASE_NAME.to_string()
        } else {
            format!("{LEASE_NAME}-{}", self.instance_id)
        }
    }

    /// The router settings these flags give (installed once at startup; routers read them).
    pub fn router_settings(&self) -> rollouts_plugin::RouterSettings {
        use rollouts_plugin::settings::keys;
        rollouts_plugin::RouterSettings::new()
            .with(keys::ISTIO_API_VERSION, &self.istio_api_version)
            .with(
                keys::TRAFFIC_SPLIT_API_VERSION,
                &self.traffic_split_api_version,
            )
            .with(keys::INGRESS_API_VERSION, &self.ingress_api_version)
            .with(
                keys::NGINX_INGRESS_CLASSES,
                self.nginx_ingress_classes.join(","),
            )
            .with(
                keys::ALB_INGRESS_CLASSES,
                self.alb_ingress_classes.join(","),
            )
            .with(keys::AMBASSADOR_API_VERSION, &self.ambassador_api_version)
            .with(keys::TRAEFIK_API_GROUP, &self.traefik_api_group)
            .with(keys::TRAEFIK_API_VERSION, &self.traefik_api_version)
            .with(keys::APPMESH_CRD_VERSION, &self.appmesh_crd_version)
    }

    /// Flags that were set to something other than their default but whose feature this build
    /// does not have yet; each is reported once at startup.
    pub fn inert(&self) -> Vec<String> {
        let defaults = Flags::parse_from(["rollouts-controller"]);
        let mut out = Vec::new();
        let mut check = |name: &str, set: bool, why: &str| {
            if set {
                out.push(format!("--{name} has no effect in this build yet ({why})"));
            }
        };
        check(
            "kloglevel",
            self.kloglevel != defaults.kloglevel,
            "there is no klog",
        );
        check(
            "service-threads",
            self.service_threads != defaults.service_threads,
            "Services are reconciled by the Rollout controller",
        );
        check(
            "ingress-threads",
            self.ingress_threads != defaults.ingress_threads,
            "there is no Ingress controller yet",
        );
        check(
            "ephemeral-metadata-update-pod-retries",
            self.ephemeral_metadata_update_pod_retries
                != defaults.ephemeral_metadata_update_pod_retries,
            "pods are patched, so there are no update conflicts to retry",
        );
        let router = "no router of this build verifies ALB target groups yet";
        check(
            "aws-verify-target-group",
            self.aws_verify_target_group,
            router,
        );
        check(
            "aws-target-group-binding-api-version",
            self.aws_target_group_binding_api_version
                != defaults.aws_target_group_binding_api_version,
            router,
        );
        check(
            "alb-tag-key-resource-id",
            self.alb_tag_key_resource_id != defaults.alb_tag_key_resource_id,
            router,
        );
        check(
            "self-service-notification-enabled",
            self.self_service_notification_enabled,
            "notifications are not part of this build yet",
        );
        check(
            "enable-pprof-address",
            !self.enable_pprof_address.is_empty(),
            "there is no pprof in a Rust binary; use /metrics",
        );
        check(
            "disable-compression",
            self.disable_compression,
            "responses are not compressed by this client",
        );
        check(
            "proxy-url",
            self.proxy_url.is_some(),
            "this build has no HTTP proxy support",
        );
        out
    }
}

/// Parses a Go duration flag.
fn go_duration(flag: &'static str, value: &str) -> Result<Duration> {
    let d =
        rollouts_engine::duration::parse_go_duration(value.trim()).map_err(|e| Error::Flag {
            flag,
            message: format!("invalid duration {value:?}: {e}"),
        })?;
    if d.as_nanos() < 0 {
        return Err(Error::Flag {
            flag,
            message: format!("must not be negative, got {value:?}"),
        });
    }
    Ok(Duration::from_nanos(d.as_nanos() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Flags {
        let mut all = vec!["rollouts-controller"];
        all.extend_from_slice(args);
        Flags::try_parse_from(all).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn defaults_are_argos() {
        let f = parse(&[]);
        assert_eq!(f.rollout_resync, 900);
        assert_eq!(f.resync().unwrap(), Duration::from_secs(900));
        assert_eq!(f.metrics_port, 8090);
        assert_eq!(f.healthz_port, 8080);
        assert_eq!((f.qps, f.burst), (40.0, 80));
        assert_eq!(
            (
                f.rollout_threads,
                f.experiment_threads,
                f.analysis_threads,
                f.service_threads,
                f.ingress_threads
            ),
            (10, 10, 30, 10, 10)
        );
        assert!(f.leader_elect);
        assert!(!f.namespaced);
        assert_eq!(f.lease_name(), "argo-rollouts-controller-lock");
        assert_eq!(
            f.lease_timing().unwrap(),
            LeaseTiming {
                lease_duration: Duration::from_secs(15),
                renew_deadline: Duration::from_secs(10),
                retry_period: Duration::from_secs(2),
            }
        );
        assert_eq!(f.log_level().unwrap(), LogLevel::Info);
        assert_eq!(f.log_format(), (LogFormat::Text, None));
        assert_eq!(f.alb_ingress_classes, ["alb"]);
        assert_eq!(f.nginx_ingress_classes, ["nginx"]);
        assert!(f.inert().is_empty(), "{:?}", f.inert());
        assert!(!f.analysis_only().unwrap());
    }

    #[test]
    fn a_typical_argo_deployment_starts() {
        // The container args of Argo's manifests and Helm chart.
        let f = parse(&[
            "--kubeconfig=/etc/kube/config",
            "--namespaced",
            "--instance-id=team-a",
            "--leader-elect=false",
            "--leader-election-lease-duration=30s",
            "--leader-election-renew-deadline=20s",
            "--leader-election-retry-period=4s",
            "--rollout-resync",
            "60",
            "--loglevel=debug",
            "--logformat=json",
            "--kloglevel=4",
            "--metricsport=9090",
            "--healthzPort",
            "9091",
            "--qps=20",
            "--burst=30",
            "--rollout-threads=4",
            "--alb-ingress-classes=alb",
            "--alb-ingress-classes=internal-alb",
            "--aws-verify-target-group",
            "--controllers=analysis",
            "-n",
            "team-a",
        ]);
        assert_eq!(
            f.kubeconfig.as_deref(),
            Some(std::path::Path::new("/etc/kube/config"))
        );
        assert!(f.namespaced);
        assert!(!f.leader_elect);
        assert_eq!(f.lease_name(), "argo-rollouts-controller-lock-team-a");
        assert_eq!(f.resync().unwrap(), Duration::from_secs(60));
        assert_eq!(
            f.lease_timing().unwrap().lease_duration,
            Duration::from_secs(30)
        );
        assert_eq!(f.log_level().unwrap(), LogLevel::Debug);
        assert_eq!(f.log_format().0, LogFormat::Json);
        assert_eq!(f.metrics_port, 9090);
        assert_eq!(f.healthz_port, 9091);
        assert_eq!((f.qps, f.burst, f.rollout_threads), (20.0, 30, 4));
        assert_eq!(f.alb_ingress_classes, ["alb", "internal-alb"]);
        assert!(f.aws_verify_target_group);
        assert!(f.analysis_only().unwrap());
        assert_eq!(f.namespace.as_deref(), Some("team-a"));
        let inert = f.inert();
        assert!(
            inert.iter().any(|l| l.starts_with("--kloglevel")),
            "{inert:?}"
        );
        assert!(
            inert
                .iter()
                .any(|l| l.starts_with("--aws-verify-target-group")),
            "{inert:?}"
        );
        // Router flags reach the routers through their settings.
        assert!(
            !inert.iter().any(|l| l.starts_with("--alb-ingress-classes")),
            "{inert:?}"
        );
        let settings = f.router_settings();
        assert_eq!(
            settings.get("alb-ingress-classes"),
            Some("alb,internal-alb")
        );
        assert_eq!(settings.get("istio-api-version"), Some("v1alpha3"));
        assert_eq!(
            settings.get_or("ingress-api-version", "networking.k8s.io/v1"),
            "networking.k8s.io/v1"
        );
    }

    #[test]
    fn both_spellings_of_the_metrics_port() {
        assert_eq!(parse(&["--metricsPort=1234"]).metrics_port, 1234);
        assert_eq!(parse(&["--metricsport", "4321"]).metrics_port, 4321);
        assert!(parse(&["--alb-verify-weight"]).aws_verify_target_group);
    }

    #[test]
    fn booleans_never_swallow_the_next_word() {
        // pflag: `--namespaced false` is the flag followed by a positional argument, which the
        // controller rejects; `--namespaced=false` is the way to turn it off.
        assert!(Flags::try_parse_from(["rollouts-controller", "--namespaced", "false"]).is_err());
        assert!(!parse(&["--namespaced=false"]).namespaced);
        assert!(parse(&["--version"]).version);
    }

    #[test]
    fn bad_values_name_the_flag() {
        let f = parse(&["--leader-election-lease-duration=5s"]);
        let err = f.lease_timing().unwrap_err().to_string();
        assert!(
            err.starts_with("flag --leader-election-lease-duration:"),
            "{err}"
        );
        let f = parse(&["--leader-election-retry-period=1h"]);
        assert!(f.lease_timing().is_err());
        let f = parse(&["--leader-election-renew-deadline=ten"]);
        let err = f.lease_timing().unwrap_err().to_string();
        assert!(err.contains("invalid duration \"ten\""), "{err}");
        let f = parse(&["--loglevel=loud"]);
        assert!(f.log_level().unwrap_err().to_string().contains("loud"));
        let f = parse(&["--controllers=rollouts"]);
        assert!(
            f.analysis_only()
                .unwrap_err()
                .to_string()
                .contains("unsupported controller")
        );
        let f = parse(&["--rollout-resync=0"]);
        assert!(f.resync().is_err());
        assert!(Flags::try_parse_from(["rollouts-controller", "--qps=fast"]).is_err());
        assert!(Flags::try_parse_from(["rollouts-controller", "--no-such-flag"]).is_err());
    }

    #[test]
    fn unknown_log_format_falls_back_to_text() {
        let f = parse(&["--logformat=xml"]);
        let (format, note) = f.log_format();
        assert_eq!(format, LogFormat::Text);
        assert_eq!(
            note.as_deref(),
            Some("Unknown format: xml. Using text logformat")
        );
    }

    #[test]
    fn request_timeout_takes_seconds_or_go_durations() {
        assert_eq!(parse(&[]).request_timeout().unwrap(), None);
        assert_eq!(
            parse(&["--request-timeout=30"]).request_timeout().unwrap(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse(&["--request-timeout=1m"]).request_timeout().unwrap(),
            Some(Duration::from_secs(60))
        );
        assert!(
            parse(&["--request-timeout=soon"])
                .request_timeout()
                .is_err()
        );
    }
}
