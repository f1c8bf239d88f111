//! The Kubernetes client: configuration from the kubectl flags, client-side throttling
//! (`--qps`, `--burst`) and the per-request metric `controller_clientset_k8s_request_total`.
//!
//! Configuration follows client-go's rules: `--kubeconfig`, else `$KUBECONFIG` or
//! `~/.kube/config`, else the in-cluster service account. The kubectl override flags
//! (`--context`, `--server`, `--token`, ...) are applied on top.
//!
//! Two tower layers sit under kube's client:
//! - [`ThrottleLayer`], a token bucket like client-go's (`qps` tokens per second, at most
//!   `burst` stored): a request waits for a token before it is sent;
//! - [`RequestMetricsLayer`], which counts every request by resource, namespace, name, verb and
//!   status code, with the labels of Argo's `kubeclientmetrics`.

use std::{
    future::Future,
    path::Path,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context as TaskContext, Poll},
    time::Duration,
};

use http::{Method, Request, Response};
use kube::{
    Client, Config,
    client::ClientBuilder,
    config::{KubeConfigOptions, Kubeconfig},
};
use prometheus::IntCounterVec;
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

use crate::{
    error::{Error, Result},
    flags::{DEFAULT_NAMESPACE, Flags},
};

/// Loads the client configuration the flags describe.
pub async fn load_config(flags: &Flags) -> Result<Config> {
    let kubeconfig = match &flags.kubeconfig {
        Some(path) => Some(Kubeconfig::read_from(path).map_err(|e| {
            Error::ClientConfig(format!("reading kubeconfig {}: {e}", path.display()))
        })?),
        None => Kubeconfig::read().ok(),
    };
    let mut config = match kubeconfig {
        Some(mut kc) => {
            override_kubeconfig(&mut kc, flags);
            let options = KubeConfigOptions {
                context: flags.context.clone(),
                cluster: flags.cluster.clone(),
                user: flags.user.clone(),
            };
            Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| Error::ClientConfig(format!("loading the kubeconfig: {e}")))?
        }
        None => {
            let mut config = Config::incluster().map_err(|e| {
                Error::ClientConfig(format!(
                    "no kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) and not running \
                     in a cluster: {e}"
                ))
            })?;
            if let Some(token) = &flags.token {
                config.auth_info.token = Some(token.clone().into());
                config.auth_info.token_file = None;
            }
            if flags.as_user.is_some() {
                config.auth_info.impersonate = flags.as_user.clone();
            }
            if !flags.as_group.is_empty() {
                config.auth_info.impersonate_groups = Some(flags.as_group.clone());
            }
            config
        }
    };
    if let Some(server) = &flags.server {
        config.cluster_url = server.parse().map_err(|e| Error::Flag {
            flag: "server",
            message: format!("invalid URL {server:?}: {e}"),
        })?;
    }
    if flags.insecure_skip_tls_verify {
        config.accept_invalid_certs = true;
    }
    if let Some(name) = &flags.tls_server_name {
        config.tls_server_name = Some(name.clone());
    }
    if let Some(ns) = &flags.namespace {
        config.default_namespace = ns.clone();
    }
    if let Some(timeout) = flags.request_timeout()? {
        config.read_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
    }
    Ok(config)
}

/// Applies the kubectl override flags to the kubeconfig document (what client-go's
/// `ConfigOverrides` do).
fn override_kubeconfig(kc: &mut Kubeconfig, flags: &Flags) {
    let context_name = flags.context.clone().or_else(|| kc.current_context.clone());
    let context = context_name.as_ref().and_then(|name| {
        kc.contexts
            .iter_mut()
            .find(|c| &c.name == name)
            .and_then(|c| c.context.as_mut())
    });
    let (mut cluster_name, mut user_name) = (flags.cluster.clone(), flags.user.clone());
    if let Some(context) = context {
        cluster_name = cluster_name.or_else(|| Some(context.cluster.clone()));
        user_name = user_name.or_else(|| context.user.clone());
        if let Some(ns) = &flags.namespace {
            context.namespace = Some(ns.clone());
        }
    }
    if let Some(cluster) = cluster_name.and_then(|name| {
        kc.clusters
            .iter_mut()
            .find(|c| c.name == name)
            .and_then(|c| c.cluster.as_mut())
    }) {
        if let Some(server) = &flags.server {
            cluster.server = Some(server.clone());
        }
        if flags.insecure_skip_tls_verify {
            cluster.insecure_skip_tls_verify = Some(true);
            cluster.certificate_authority = None;
            cluster.certificate_authority_data = None;
        }
        if let Some(ca) = &flags.certificate_authority {
            cluster.certificate_authority = Some(ca.display().to_string());
            cluster.certificate_authority_data = None;
        }
        if let Some(name) = &flags.tls_server_name {
            cluster.tls_server_name = Some(name.clone());
        }
    }
    if let Some(auth) = user_name.and_then(|name| {
        kc.auth_infos
            .iter_mut()
            .find(|a| a.name == name)
            .and_then(|a| a.auth_info.as_mut())
    }) {
        if let Some(token) = &flags.token {
            auth.token = Some(token.clone().into());
            auth.token_file = None;
        }
        if let Some(u) = &flags.username {
            auth.username = Some(u.clone());
        }
        if let Some(p) = &flags.password {
            auth.password = Some(p.clone().into());
        }
        if let Some(c) = &flags.client_certificate {
            auth.client_certificate = Some(c.display().to_string());
            auth.client_certificate_data = None;
        }
        if let Some(k) = &flags.client_key {
            auth.client_key = Some(k.display().to_string());
            auth.client_key_data = None;
        }
        if flags.as_user.is_some() {
            auth.impersonate = flags.as_user.clone();
        }
        if flags.as_uid.is_some() {
            auth.impersonate_uid = flags.as_uid.clone();
        }
        if !flags.as_group.is_empty() {
            auth.impersonate_groups = Some(flags.as_group.clone());
        }
    }
}

/// The namespace the controller runs in: `POD_NAMESPACE`, else the service account's, else
/// `argo-rollouts` (Argo's `defaults.Namespace()`).
pub fn controller_namespace() -> String {
    if let Ok(ns) = std::env::var("POD_NAMESPACE")
        && !ns.is_empty()
    {
        return ns;
    }
    let sa = Path::new("/var/run/secrets/kubernetes.io/serviceaccount/namespace");
    if let Ok(ns) = std::fs::read_to_string(sa) {
        let ns = ns.trim();
        if !ns.is_empty() {
            return ns.to_string();
        }
    }
    DEFAULT_NAMESPACE.to_string()
}

/// Builds the client: kube's stack with throttling and request metrics underneath.
pub fn build(config: Config, requests: IntCounterVec, qps: f32, burst: u32) -> Result<Client> {
    let builder = ClientBuilder::try_from(config)
        .map_err(|e| Error::ClientConfig(format!("building the client: {e}")))?;
    let client = builder
        .with_layer(&RequestMetricsLayer { counter: requests })
        .with_layer(&ThrottleLayer::new(qps, burst))
        .build();
    Ok(client)
}

// -------------------------------------------------------------------------------------------
// Throttling.

/// A token bucket shared by every request of one client (client-go's `tokenBucketRateLimiter`).
#[derive(Clone, Debug)]
pub struct ThrottleLayer {
    bucket: Option<Arc<Mutex<Bucket>>>,
}

#[derive(Debug)]
struct Bucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// Takes a token if one is available; otherwise says how long until one is.
    fn take(&mut self, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - self.tokens) / self.qps))
        }
    }
}

impl ThrottleLayer {
    /// `qps` requests per second on average, `burst` at once; `qps <= 0` disables throttling
    /// (as in client-go, where a negative QPS means "no limit").
    pub fn new(qps: f32, burst: u32) -> Self {
        let bucket = (qps > 0.0).then(|| {
            let burst = f64::from(burst.max(1));
            Arc::new(Mutex::new(Bucket {
                qps: f64::from(qps),
                burst,
                tokens: burst,
                last: Instant::now(),
            }))
        });
        Self { bucket }
    }
}

impl<S> Layer<S> for ThrottleLayer {
    type Service = Throttle<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Throttle {
            inner,
            bucket: self.bucket.clone(),
            sleep: None,
            permitted: false,
        }
    }
}

/// The service of [`ThrottleLayer`]: `poll_ready` waits for a token.
#[derive(Debug)]
pub struct Throttle<S> {
    inner: S,
    bucket: Option<Arc<Mutex<Bucket>>>,
    sleep: Option<Pin<Box<Sleep>>>,
    permitted: bool,
}

impl<S, B> Service<Request<B>> for Throttle<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        if let Some(bucket) = &self.bucket {
            while !self.permitted {
                if let Some(sleep) = self.sleep.as_mut() {
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.sleep = None;
                }
                let wait = bucket
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take(Instant::now());
                match wait {
                    None => self.permitted = true,
                    Some(d) => self.sleep = Some(Box::pin(tokio::time::sleep(d))),
                }
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        self.permitted = false;
        self.inner.call(req)
    }
}

// -------------------------------------------------------------------------------------------
// Request metrics.

/// Counts requests in `controller_clientset_k8s_request_total`.
#[derive(Clone, Debug)]
pub struct RequestMetricsLayer {
    counter: IntCounterVec,
}

impl<S> Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestMetrics {
            inner,
            counter: self.counter.clone(),
        }
    }
}

/// The service of [`RequestMetricsLayer`].
#[derive(Clone, Debug)]
pub struct RequestMetrics<S> {
    inner: S,
    counter: IntCounterVec,
}

/// What a request is about, for the metric labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    /// Resource (plural, e.g. `replicasets`), or `Unknown`.
    pub kind: String,
    /// Namespace, empty for cluster-scoped requests.
    pub namespace: String,
    /// Object name, `N/A` for collections and high-cardinality kinds.
    pub name: String,
    /// `List`, `Watch`, `Get`, `Create`, `Update`, `Patch`, `Delete` or `Unknown`.
    pub verb: &'static str,
}

impl RequestInfo {
    /// Classifies a request by method and path (Argo's `kubeclientmetrics` labels).
    pub fn of(method: &Method, path: &str, query: Option<&str>) -> Self {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        // /api/v1/... or /apis/<group>/<version>/...
        let rest: &[&str] = match segments.first() {
            Some(&"api") if segments.len() >= 2 => &segments[2..],
            Some(&"apis") if segments.len() >= 3 => &segments[3..],
            _ => &[],
        };
        let (namespace, rest) = match rest {
            ["namespaces", ns, tail @ ..] if !tail.is_empty() => (ns.to_string(), tail),
            _ => (String::new(), rest),
        };
        let watch =
            query.is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
        let (kind, name) = match rest {
            [] => ("Unknown".to_string(), String::new()),
            [kind] => (kind.to_string(), String::new()),
            [kind, name, ..] => (kind.to_string(), name.to_string()),
        };
        let is_collection = rest.len() == 1;
        let verb = match *method {
            Method::POST => "Create",
            Method::DELETE => "Delete",
            Method::PATCH => "Patch",
            Method::PUT => "Update",
            Method::GET if is_collection && watch => "Watch",
            Method::GET if is_collection => "List",
            Method::GET if !rest.is_empty() => "Get",
            _ => "Unknown",
        };
        if verb == "Unknown" || rest.is_empty() {
            return RequestInfo {
                kind: "Unknown".into(),
                namespace: "Unknown".into(),
                name: "Unknown".into(),
                verb: "Unknown",
            };
        }
        let name = if is_collection || name.is_empty() || kind == "events" || kind == "replicasets"
        {
            "N/A".to_string()
        } else {
            name
        };
        RequestInfo {
            kind,
            namespace,
            name,
            verb,
        }
    }
}

impl<S, B, RB> Service<Request<B>> for RequestMetrics<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    RB: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<RB>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let info = RequestInfo::of(req.method(), req.uri().path(), req.uri().query());
        let counter = self.counter.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let result = fut.await;
            let code = match &result {
                Ok(resp) => resp.status().as_u16().to_string(),
                Err(_) => "0".to_string(),
            };
            counter
                .with_label_values(&[
                    info.kind.as_str(),
                    info.namespace.as_str(),
                    info.name.as_str(),
                    info.verb,
                    code.as_str(),
                ])
                .inc();
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: Method, uri: &str) -> RequestInfo {
        let uri: http::Uri = uri.parse().unwrap();
        RequestInfo::of(&method, uri.path(), uri.query())
    }

    #[test]
    fn requests_are_labelled_like_argo() {
        let i = info(
            Method::GET,
            "/apis/argoproj.io/v1alpha1/namespaces/team/rollouts/web",
        );
        assert_eq!(
            (
                i.kind.as_str(),
                i.namespace.as_str(),
                i.name.as_str(),
                i.verb
            ),
            ("rollouts", "team", "web", "Get")
        );
        let i = info(
            Method::GET,
            "/apis/apps/v1/namespaces/team/replicasets?labelSelector=x&watch=true",
        );
        assert_eq!(
            (i.kind.as_str(), i.name.as_str(), i.verb),
            ("replicasets", "N/A", "Watch")
        );
        let i = info(Method::GET, "/apis/argoproj.io/v1alpha1/rollouts?limit=500");
        assert_eq!(
            (i.kind.as_str(), i.namespace.as_str(), i.verb),
            ("rollouts", "", "List")
        );
        let i = info(
            Method::PATCH,
            "/apis/argoproj.io/v1alpha1/namespaces/team/rollouts/web/status",
        );
        assert_eq!(
            (i.kind.as_str(), i.name.as_str(), i.verb),
            ("rollouts", "web", "Patch")
        );
        let i = info(Method::POST, "/api/v1/namespaces/team/pods/web-1/eviction");
        assert_eq!(
            (i.kind.as_str(), i.name.as_str(), i.verb),
            ("pods", "web-1", "Create")
        );
        let i = info(Method::POST, "/api/v1/namespaces/team/events");
        assert_eq!(
            (i.kind.as_str(), i.name.as_str(), i.verb),
            ("events", "N/A", "Create")
        );
        let i = info(
            Method::PATCH,
            "/apis/apps/v1/namespaces/team/replicasets/web-abc",
        );
        assert_eq!(i.name, "N/A", "replicasets never carry a name label");
        let i = info(Method::GET, "/version");
        assert_eq!(i.verb, "Unknown");
        assert_eq!(i.kind, "Unknown");
    }

    #[tokio::test(start_paused = true)]
    async fn the_bucket_lets_a_burst_through_then_paces() {
        let start = Instant::now();
        let mut bucket = Bucket {
            qps: 10.0,
            burst: 3.0,
            tokens: 3.0,
            last: start,
        };
        assert_eq!(bucket.take(start), None);
        assert_eq!(bucket.take(start), None);
        assert_eq!(bucket.take(start), None);
        let wait = bucket.take(start).expect("the burst is spent");
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        // After 100 ms one token has come back.
        assert_eq!(bucket.take(start + Duration::from_millis(100)), None);
        // Tokens never exceed the burst.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(bucket.take(later), None);
        }
        assert!(bucket.take(later).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn the_throttle_delays_requests_beyond_the_burst() {
        use tower::ServiceExt;
        let (mock, mut handle) = tower_test::mock::pair::<Request<()>, Response<()>>();
        let svc = ThrottleLayer::new(2.0, 1).layer(mock);
        let server = tokio::spawn(async move {
            let mut times = Vec::new();
            for _ in 0..3 {
                let (_, send) = handle.next_request().await.expect("a request");
                times.push(Instant::now());
                send.send_response(Response::new(()));
            }
            times
        });
        let start = Instant::now();
        let mut svc = svc;
        for _ in 0..3 {
            svc.ready()
                .await
                .unwrap()
                .call(Request::new(()))
                .await
                .unwrap();
        }
        let times = server.await.unwrap();
        let offsets: Vec<u128> = times.iter().map(|t| (*t - start).as_millis()).collect();
        assert_eq!(offsets, vec![0, 500, 1000]);
    }
}
