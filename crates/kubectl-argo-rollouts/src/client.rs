//! Connecting to the cluster as kubectl does: the kubeconfig of `--kubeconfig`, `$KUBECONFIG`
//! or `~/.kube/config` (or the in-cluster service account when there is none), the context,
//! cluster and user chosen by the flags, kubectl's override flags, and the namespace of
//! `-n` or else the context's.

use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, Resource};
use rollouts_engine::duration::parse_go_duration;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::cli::GlobalOptions;
use crate::error::{Error, Target};

/// A client with the namespace the command works in.
#[derive(Clone)]
pub struct Kube {
    /// The client.
    pub client: Client,
    /// The namespace of `-n`, else the kubeconfig context's, else `default`.
    pub namespace: String,
    /// The API server URL (for messages).
    pub server: String,
}

impl std::fmt::Debug for Kube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kube")
            .field("namespace", &self.namespace)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Builds the client configuration from the global flags.
pub async fn config(opts: &GlobalOptions) -> Result<Config, Error> {
    let kc_options = KubeConfigOptions {
        context: opts.context.clone(),
        cluster: opts.cluster.clone(),
        user: opts.user.clone(),
    };
    let mut config = match &opts.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|e| {
                Error::Kubeconfig(format!(
                    "{}: {}",
                    path.display(),
                    crate::error::one_line(&e)
                ))
            })?;
            Config::from_custom_kubeconfig(kc, &kc_options)
                .await
                .map_err(|e| Error::Kubeconfig(crate::error::one_line(&e)))?
        }
        None => match Kubeconfig::read() {
            Ok(kc) => Config::from_custom_kubeconfig(kc, &kc_options)
                .await
                .map_err(|e| Error::Kubeconfig(crate::error::one_line(&e)))?,
            Err(read_err) => match Config::incluster() {
                Ok(c) if opts.context.is_none() => c,
                _ if opts.server.is_some() => Config::new(
                    "http://localhost"
                        .parse()
                        .map_err(|_| Error::Kubeconfig("invalid URL".into()))?,
                ),
                _ => {
                    return Err(Error::Kubeconfig(format!(
                        "no kubeconfig found ({}) and not running inside a cluster",
                        crate::error::one_line(&read_err)
                    )));
                }
            },
        },
    };
    if let Some(server) = &opts.server {
        config.cluster_url = server
            .parse()
            .map_err(|e| Error::Usage(format!("--server {server:?}: {e}")))?;
    }
    if let Some(token) = &opts.token {
        config.auth_info = AuthInfo {
            token: Some(token.clone().into()),
            ..AuthInfo::default()
        };
    }
    if let Some(cert) = &opts.client_certificate {
        config.auth_info.client_certificate = Some(cert.display().to_string());
        config.auth_info.client_certificate_data = None;
    }
    if let Some(key) = &opts.client_key {
        config.auth_info.client_key = Some(key.display().to_string());
        config.auth_info.client_key_data = None;
    }
    if let Some(user) = &opts.as_user {
        config.auth_info.impersonate = Some(user.clone());
    }
    if !opts.as_group.is_empty() {
        config.auth_info.impersonate_groups = Some(opts.as_group.clone());
    }
    if let Some(ca) = &opts.certificate_authority {
        config.root_cert_file = Some(ca.clone());
        config.root_cert = None;
    }
    if opts.insecure_skip_tls_verify {
        config.accept_invalid_certs = true;
    }
    if let Some(name) = &opts.tls_server_name {
        config.tls_server_name = Some(name.clone());
    }
    let timeout = parse_request_timeout(&opts.request_timeout)?;
    if timeout.is_some() {
        config.connect_timeout = timeout;
        config.read_timeout = timeout;
        config.write_timeout = timeout;
    }
    if let Some(ns) = &opts.namespace {
        config.default_namespace = ns.clone();
    }
    Ok(config)
}

/// kubectl's `--request-timeout`: a bare number is seconds, else a Go duration; 0 is none.
pub fn parse_request_timeout(s: &str) -> Result<Option<Duration>, Error> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok((secs > 0).then(|| Duration::from_secs(secs)));
    }
    let d =
        parse_go_duration(s).map_err(|e| Error::Usage(format!("--request-timeout {s:?}: {e}")))?;
    Ok((d.as_nanos() > 0).then(|| Duration::from_nanos(d.as_nanos() as u64)))
}

impl Kube {
    /// Connects with the global flags (no request is made yet).
    pub async fn connect(opts: &GlobalOptions) -> Result<Self, Error> {
        let config = config(opts).await?;
        let namespace = config.default_namespace.clone();
        let server = config.cluster_url.to_string();
        let client =
            Client::try_from(config).map_err(|e| Error::Kubeconfig(crate::error::one_line(&e)))?;
        Ok(Self {
            client,
            namespace,
            server,
        })
    }

    /// A client over a given `Client` (tests, embedding).
    pub fn new(client: Client, namespace: &str) -> Self {
        Self {
            client,
            namespace: namespace.to_string(),
            server: String::new(),
        }
    }

    /// The namespaced API of `K` in the command's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// What an error about `kind`/`name` in the command's namespace refers to.
    pub fn target(&self, kind: &'static str, name: &str) -> Target {
        Target::new(kind, name, &self.namespace)
    }

    /// Classifies a kube error.
    pub fn err(&self, e: kube::Error, action: &str, target: &Target) -> Error {
        Error::from_kube(e, action, target, &self.server)
    }

    /// Gets a named object.
    pub async fn get<K>(&self, kind: &'static str, name: &str) -> Result<K, Error>
    where
        K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + std::fmt::Debug,
        <K as Resource>::DynamicType: Default,
    {
        self.api::<K>()
            .get(name)
            .await
            .map_err(|e| self.err(e, "getting", &self.target(kind, name)))
    }

    /// Merge-patches the main resource.
    pub async fn merge_patch<K>(
        &self,
        kind: &'static str,
        name: &str,
        patch: &Value,
    ) -> Result<K, Error>
    where
        K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + std::fmt::Debug,
        <K as Resource>::DynamicType: Default,
    {
        tracing::debug!(kind, name, %patch, "merge patch");
        self.api::<K>()
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(|e| self.err(e, "patching", &self.target(kind, name)))
    }

    /// Merge-patches the status subresource; on 404 (no status subresource, as on clusters
    /// with old CRDs) sends `fallback` to the main resource instead, as Argo's plugin does.
    pub async fn merge_patch_status<K>(
        &self,
        kind: &'static str,
        name: &str,
        patch: &Value,
        fallback: Option<&Value>,
    ) -> Result<K, Error>
    where
        K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + std::fmt::Debug,
        <K as Resource>::DynamicType: Default,
    {
        tracing::debug!(kind, name, %patch, "merge patch of the status subresource");
        match self
            .api::<K>()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(obj) => Ok(obj),
            Err(kube::Error::Api(s)) if s.code == 404 => {
                let body = fallback.unwrap_or(patch);
                tracing::debug!(kind, name, %body, "no status subresource: patching the main resource");
                self.merge_patch(kind, name, body).await
            }
            Err(e) => Err(self.err(e, "patching the status of", &self.target(kind, name))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_timeouts() {
        assert_eq!(parse_request_timeout("0").unwrap(), None);
        assert_eq!(
            parse_request_timeout("5").unwrap(),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_request_timeout("1m").unwrap(),
            Some(Duration::from_secs(60))
        );
        assert!(parse_request_timeout("soon").is_err());
    }

    #[tokio::test]
    async fn flags_override_the_kubeconfig() {
        let dir = std::env::temp_dir().join(format!("kar-client-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters:\n- name: c1\n  cluster: {server: 'https://127.0.0.1:1'}\n- name: c2\n  cluster: {server: 'https://127.0.0.2:2'}\ncontexts:\n- name: a\n  context: {cluster: c1, user: u, namespace: team-a}\n- name: b\n  context: {cluster: c2, user: u}\nusers:\n- name: u\n  user: {token: t}\n",
        )
        .unwrap();
        let mut opts = GlobalOptions {
            kubeconfig: Some(path.clone()),
            request_timeout: "0".into(),
            ..GlobalOptions::default()
        };
        let c = config(&opts).await.unwrap();
        assert_eq!(c.default_namespace, "team-a");
        assert_eq!(c.cluster_url.to_string(), "https://127.0.0.1:1/");
        opts.context = Some("b".into());
        let c = config(&opts).await.unwrap();
        assert_eq!(c.default_namespace, "default");
        assert_eq!(c.cluster_url.to_string(), "https://127.0.0.2:2/");
        opts.namespace = Some("prod".into());
        opts.as_user = Some("bob".into());
        let c = config(&opts).await.unwrap();
        assert_eq!(c.default_namespace, "prod");
        assert_eq!(c.auth_info.impersonate.as_deref(), Some("bob"));
        opts.context = Some("nope".into());
        assert!(matches!(config(&opts).await, Err(Error::Kubeconfig(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
