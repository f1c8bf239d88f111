//! A small client of the AWS Elastic Load Balancing v2 API: the read-only calls target group
//! verification needs, over the AWS Query protocol (a form-encoded POST of
//! `Action=<name>&Version=2015-12-01&...`, signed with SigV4 for the service
//! `elasticloadbalancing`, answered in XML).
//!
//! Configuration comes from the standard environment variables: `AWS_REGION` (or
//! `AWS_DEFAULT_REGION`), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, and
//! the endpoint overrides `AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2` and `AWS_ENDPOINT_URL`
//! (tests point them at a server on 127.0.0.1). Throttling, server errors and transport errors
//! are retried (3 attempts in all, with exponential back-off), as the AWS SDKs' standard retry
//! mode does.

use std::{collections::BTreeMap, time::Duration};

use crate::sigv4::{self, Credentials, Scope};

/// The API version sent with every action.
pub const API_VERSION: &str = "2015-12-01";
/// The SigV4 signing name of the service.
pub const SIGNING_NAME: &str = "elasticloadbalancing";
/// `DescribeLoadBalancers` page size (Argo's).
pub const LOAD_BALANCER_PAGE_SIZE: u32 = 300;
/// ARNs per `DescribeTags` call (the API's limit, Argo's batch size).
pub const DESCRIBE_TAGS_LIMIT: usize = 20;

/// What can go wrong talking to AWS.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AwsError {
    /// Region or credentials are missing, or the endpoint is not a URL.
    #[error("AWS configuration: {0}")]
    Config(String),
    /// The request did not get an answer.
    #[error("{action}: {message}")]
    Transport {
        /// The API action.
        action: String,
        /// What happened.
        message: String,
    },
    /// AWS answered with an error.
    #[error("{action}: {code}: {message} (HTTP {status}, request id {request_id})")]
    Api {
        /// The API action.
        action: String,
        /// HTTP status.
        status: u16,
        /// The error code, e.g. `LoadBalancerNotFound`, `Throttling`, `AccessDenied`.
        code: String,
        /// The error message.
        message: String,
        /// The request id AWS gave.
        request_id: String,
    },
    /// The answer was not the XML expected.
    #[error("{action}: unreadable response: {message}")]
    Decode {
        /// The API action.
        action: String,
        /// What is wrong with it.
        message: String,
    },
}

impl AwsError {
    /// Whether a new attempt may succeed: throttling, server errors and transport errors.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Api { status, code, .. } => {
                *status >= 500
                    || matches!(
                        code.as_str(),
                        "Throttling"
                            | "ThrottlingException"
                            | "ThrottledException"
                            | "RequestThrottledException"
                            | "TooManyRequestsException"
                            | "RequestLimitExceeded"
                            | "SlowDown"
                            | "PriorRequestNotComplete"
                    )
            }
            Self::Config(_) | Self::Decode { .. } => false,
        }
    }

    /// The AWS error code, if AWS answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Where and how to call ELBv2.
#[derive(Clone, Debug)]
pub struct AwsConfig {
    /// The region, e.g. `us-west-2`.
    pub region: String,
    /// The endpoint, e.g. `https://elasticloadbalancing.us-west-2.amazonaws.com`.
    pub endpoint: String,
    /// Static credentials.
    pub credentials: Credentials,
    /// Attempts per call, the first included (at least 1).
    pub max_attempts: u32,
    /// Back-off before the second attempt; doubled for each further attempt.
    pub backoff: Duration,
    /// Overall deadline of one HTTP exchange.
    pub timeout: Duration,
}

impl AwsConfig {
    /// The default ELBv2 endpoint of a region.
    pub fn default_endpoint(region: &str) -> String {
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        format!("https://elasticloadbalancing.{region}.{suffix}")
    }

    /// Reads the configuration from `var` (the process environment in production).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, AwsError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let region = get("AWS_REGION")
            .or_else(|| get("AWS_DEFAULT_REGION"))
            .ok_or_else(|| AwsError::Config("no region: set AWS_REGION".into()))?;
        let access_key_id = get("AWS_ACCESS_KEY_ID");
        let secret_access_key = get("AWS_SECRET_ACCESS_KEY");
        let (Some(access_key_id), Some(secret_access_key)) = (access_key_id, secret_access_key)
        else {
            let hint = if get("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() {
                " (web identity tokens, as IRSA provides, are not supported: give the \
                 controller static or session credentials)"
            } else {
                ""
            };
            return Err(AwsError::Config(format!(
                "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY{hint}"
            )));
        };
        let endpoint = get("AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2")
            .or_else(|| get("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| Self::default_endpoint(&region));
        Ok(Self {
            region,
            endpoint,
            credentials: Credentials {
                access_key_id,
                secret_access_key,
                session_token: get("AWS_SESSION_TOKEN"),
            },
            max_attempts: 3,
            backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(30),
        })
    }

    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, AwsError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }
}

/// A load balancer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadBalancer {
    /// `LoadBalancerArn`.
    pub arn: String,
    /// `DNSName`.
    pub dns_name: String,
    /// `LoadBalancerName`.
    pub name: String,
}

/// A target group with its tags and the weight a listener rule gives it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetGroupMeta {
    /// `TargetGroupArn`.
    pub arn: String,
    /// `TargetGroupName`.
    pub name: String,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// The weight of the last forward action (over all listeners and rules) that names it, if
    /// any.
    pub weight: Option<i32>,
}

/// A registered target and its health.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetHealth {
    /// `Target.Id` (an IP address or instance id).
    pub id: String,
    /// `Target.Port`.
    pub port: Option<i32>,
    /// `TargetHealth.State` (`healthy`, `initial`, ...).
    pub state: String,
}

/// The ELBv2 client.
#[derive(Clone, Debug)]
pub struct Elbv2Client {
    http: reqwest::Client,
    config: AwsConfig,
}

/// An XML response, kept as text; parsed by each caller.
struct Response {
    action: String,
    body: String,
}

impl Response {
    fn document(&self) -> Result<roxmltree::Document<'_>, AwsError> {
        roxmltree::Document::parse(&self.body).map_err(|e| AwsError::Decode {
            action: self.action.clone(),
            message: e.to_string(),
        })
    }
}

/// The first descendant element of `node` named `name` (namespace ignored).
fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// The text of the child element `name` of `node`, or `""`.
fn text<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> &'a str {
    child(node, name).and_then(|c| c.text()).unwrap_or_default()
}

/// The `member` elements of the child list `name` of `node`.
fn members<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    name: &str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    child(node, name).into_iter().flat_map(|list| {
        list.children()
            .filter(|c| c.is_element() && c.tag_name().name() == "member")
    })
}

/// The `<Action>Result` element of a response document.
fn result<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    action: &str,
) -> Result<roxmltree::Node<'a, 'i>, AwsError> {
    let root = doc.root_element();
    child(root, &format!("{action}Result")).ok_or_else(|| AwsError::Decode {
        action: action.to_string(),
        message: format!("no {action}Result element in <{}>", root.tag_name().name()),
    })
}

fn next_marker(node: roxmltree::Node<'_, '_>) -> Option<String> {
    Some(text(node, "NextMarker").to_string()).filter(|m| !m.is_empty())
}

/// AWS Query encoding of a form value (RFC 3986 unreserved kept, everything else `%XX`).
fn form_encode(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                sigv4::uri_encode(k, false),
                sigv4::uri_encode(v, false)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Reads an awsQuery error document: `<ErrorResponse><Error><Code>..</Code><Message>..`.
fn api_error(action: &str, status: u16, body: &str) -> AwsError {
    let parsed = roxmltree::Document::parse(body).ok();
    let (code, message, request_id) = match &parsed {
        Some(doc) => {
            let root = doc.root_element();
            let error = child(root, "Error").unwrap_or(root);
            let request_id = match text(root, "RequestId") {
                "" => text(error, "RequestId"),
                id => id,
            };
            (
                text(error, "Code").to_string(),
                text(error, "Message").to_string(),
                request_id.to_string(),
            )
        }
        None => (String::new(), String::new(), String::new()),
    };
    let code = if code.is_empty() {
        format!("HTTP{status}")
    } else {
        code
    };
    let message = if message.is_empty() {
        body.chars().take(200).collect()
    } else {
        message
    };
    AwsError::Api {
        action: action.to_string(),
        status,
        code,
        message,
        request_id,
    }
}

impl Elbv2Client {
    /// A client for `config`.
    pub fn new(config: AwsConfig) -> Result<Self, AwsError> {
        reqwest::Url::parse(&config.endpoint).map_err(|e| {
            AwsError::Config(format!("endpoint {:?} is not a URL: {e}", config.endpoint))
        })?;
        let http =
            rollouts_plugin::http::client(false, Some(config.timeout)).map_err(AwsError::Config)?;
        Ok(Self { http, config })
    }

    /// A client configured from the environment (see the module docs).
    pub fn from_env() -> Result<Self, AwsError> {
        Self::new(AwsConfig::from_env()?)
    }

    /// The configuration in use.
    pub fn config(&self) -> &AwsConfig {
        &self.config
    }

    /// Sends `action` with `params`, retrying what can be retried.
    async fn call(&self, action: &str, params: &[(String, String)]) -> Result<Response, AwsError> {
        let attempts = self.config.max_attempts.max(1);
        let mut delay = self.config.backoff;
        let mut attempt = 1;
        loop {
            match self.call_once(action, params).await {
                Err(e) if e.retryable() && attempt < attempts => {
                    tracing::debug!(action, attempt, error = %e, "Retrying an ELBv2 call.");
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn call_once(
        &self,
        action: &str,
        params: &[(String, String)],
    ) -> Result<Response, AwsError> {
        let mut form = vec![
            ("Action".to_string(), action.to_string()),
            ("Version".to_string(), API_VERSION.to_string()),
        ];
        form.extend(params.iter().cloned());
        let body = form_encode(&form);
        let url = reqwest::Url::parse(&self.config.endpoint)
            .map_err(|e| AwsError::Config(e.to_string()))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => {
                return Err(AwsError::Config(format!(
                    "endpoint {:?} has no host",
                    self.config.endpoint
                )));
            }
        };
        let amz_date = sigv4::amz_date(jiff::Timestamp::now());
        let mut headers = vec![
            (
                "Content-Type".to_string(),
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            ),
            ("Host".to_string(), host),
            ("X-Amz-Date".to_string(), amz_date.clone()),
        ];
        if let Some(token) = &self.config.credentials.session_token {
            headers.push(("X-Amz-Security-Token".to_string(), token.clone()));
        }
        let scope = Scope {
            amz_date: &amz_date,
            region: &self.config.region,
            service: SIGNING_NAME,
        };
        let path = url.path().to_string();
        let authorization = sigv4::authorization(
            &self.config.credentials,
            &scope,
            &sigv4::Request {
                method: "POST",
                path: &path,
                query: url.query().unwrap_or_default(),
                headers: &headers,
                body: body.as_bytes(),
            },
        );
        let mut request = self.http.post(url.clone()).body(body);
        for (name, value) in &headers {
            // reqwest sets Host from the URL, to the same value.
            if name != "Host" {
                request = request.header(name.as_str(), value.as_str());
            }
        }
        request = request.header("Authorization", authorization);
        let response = request.send().await.map_err(|e| AwsError::Transport {
            action: action.to_string(),
            message: rollouts_plugin::http::transport_error(
                "POST",
                url.as_str(),
                &e,
                "context deadline exceeded",
            ),
        })?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| AwsError::Transport {
            action: action.to_string(),
            message: format!("reading the response: {e}"),
        })?;
        if !(200..300).contains(&status) {
            return Err(api_error(action, status, &body));
        }
        Ok(Response {
            action: action.to_string(),
            body,
        })
    }

    /// One page of `DescribeLoadBalancers` (`PageSize` 300) and the marker of the next one.
    pub async fn describe_load_balancers(
        &self,
        marker: Option<&str>,
    ) -> Result<(Vec<LoadBalancer>, Option<String>), AwsError> {
        const ACTION: &str = "DescribeLoadBalancers";
        let mut params = vec![("PageSize".to_string(), LOAD_BALANCER_PAGE_SIZE.to_string())];
        if let Some(m) = marker {
            params.push(("Marker".to_string(), m.to_string()));
        }
        let response = self.call(ACTION, &params).await?;
        let doc = response.document()?;
        let result = result(&doc, ACTION)?;
        let lbs = members(result, "LoadBalancers")
            .map(|m| LoadBalancer {
                arn: text(m, "LoadBalancerArn").to_string(),
                dns_name: text(m, "DNSName").to_string(),
                name: text(m, "LoadBalancerName").to_string(),
            })
            .collect();
        Ok((lbs, next_marker(result)))
    }

    /// The load balancer whose `DNSName` is `dns_name`, going through every page; `None` when
    /// there is none.
    pub async fn find_load_balancer_by_dns_name(
        &self,
        dns_name: &str,
    ) -> Result<Option<LoadBalancer>, AwsError> {
        let mut marker: Option<String> = None;
        loop {
            let (page, next) = self.describe_load_balancers(marker.as_deref()).await?;
            if let Some(lb) = page.into_iter().find(|lb| lb.dns_name == dns_name) {
                return Ok(Some(lb));
            }
            match next {
                Some(next) if marker.as_deref() != Some(next.as_str()) => marker = Some(next),
                _ => return Ok(None),
            }
        }
    }

    /// Runs a paginated action: `parse` reads one page's result into `out`.
    async fn paginated(
        &self,
        action: &str,
        params: &[(String, String)],
        mut parse: impl FnMut(roxmltree::Node<'_, '_>),
    ) -> Result<(), AwsError> {
        let mut marker: Option<String> = None;
        loop {
            let mut page = params.to_vec();
            if let Some(m) = &marker {
                page.push(("Marker".to_string(), m.clone()));
            }
            let response = self.call(action, &page).await?;
            let doc = response.document()?;
            let result = result(&doc, action)?;
            parse(result);
            match next_marker(result) {
                Some(next) if marker.as_deref() != Some(next.as_str()) => marker = Some(next),
                _ => return Ok(()),
            }
        }
    }

    /// `DescribeTargetGroups` of a load balancer: `(arn, name)` of each.
    pub async fn describe_target_groups(
        &self,
        load_balancer_arn: &str,
    ) -> Result<Vec<(String, String)>, AwsError> {
        let mut out = Vec::new();
        self.paginated(
            "DescribeTargetGroups",
            &[("LoadBalancerArn".to_string(), load_balancer_arn.to_string())],
            |result| {
                out.extend(members(result, "TargetGroups").map(|m| {
                    (
                        text(m, "TargetGroupArn").to_string(),
                        text(m, "TargetGroupName").to_string(),
                    )
                }));
            },
        )
        .await?;
        Ok(out)
    }

    /// `DescribeTags` of up to 20 resources: `(arn, tags)` of each.
    pub async fn describe_tags(
        &self,
        arns: &[String],
    ) -> Result<Vec<(String, BTreeMap<String, String>)>, AwsError> {
        const ACTION: &str = "DescribeTags";
        let params: Vec<(String, String)> = arns
            .iter()
            .enumerate()
            .map(|(i, arn)| (format!("ResourceArns.member.{}", i + 1), arn.clone()))
            .collect();
        let response = self.call(ACTION, &params).await?;
        let doc = response.document()?;
        let result = result(&doc, ACTION)?;
        Ok(members(result, "TagDescriptions")
            .map(|d| {
                let tags = members(d, "Tags")
                    .map(|t| (text(t, "Key").to_string(), text(t, "Value").to_string()))
                    .collect();
                (text(d, "ResourceArn").to_string(), tags)
            })
            .collect())
    }

    /// `DescribeListeners` of a load balancer: the listener ARNs.
    pub async fn describe_listeners(
        &self,
        load_balancer_arn: &str,
    ) -> Result<Vec<String>, AwsError> {
        let mut out = Vec::new();
        self.paginated(
            "DescribeListeners",
            &[("LoadBalancerArn".to_string(), load_balancer_arn.to_string())],
            |result| {
                out.extend(
                    members(result, "Listeners").map(|m| text(m, "ListenerArn").to_string()),
                );
            },
        )
        .await?;
        Ok(out)
    }

    /// `DescribeRules` of a listener: `(target group arn, weight)` of every target group of every
    /// forward action, in order.
    pub async fn describe_rules(
        &self,
        listener_arn: &str,
    ) -> Result<Vec<(String, Option<i32>)>, AwsError> {
        let mut out = Vec::new();
        self.paginated(
            "DescribeRules",
            &[("ListenerArn".to_string(), listener_arn.to_string())],
            |result| {
                for rule in members(result, "Rules") {
                    for action in members(rule, "Actions") {
                        let Some(forward) = child(action, "ForwardConfig") else {
                            continue;
                        };
                        for tg in members(forward, "TargetGroups") {
                            out.push((
                                text(tg, "TargetGroupArn").to_string(),
                                text(tg, "Weight").trim().parse().ok(),
                            ));
                        }
                    }
                }
            },
        )
        .await?;
        Ok(out)
    }

    /// `DescribeTargetHealth` of a target group.
    pub async fn describe_target_health(
        &self,
        target_group_arn: &str,
    ) -> Result<Vec<TargetHealth>, AwsError> {
        const ACTION: &str = "DescribeTargetHealth";
        let response = self
            .call(
                ACTION,
                &[("TargetGroupArn".to_string(), target_group_arn.to_string())],
            )
            .await?;
        let doc = response.document()?;
        let result = result(&doc, ACTION)?;
        Ok(members(result, "TargetHealthDescriptions")
            .map(|d| {
                let target = child(d, "Target");
                let health = child(d, "TargetHealth");
                TargetHealth {
                    id: target
                        .map(|t| text(t, "Id"))
                        .unwrap_or_default()
                        .to_string(),
                    port: target.and_then(|t| text(t, "Port").trim().parse().ok()),
                    state: health
                        .map(|h| text(h, "State"))
                        .unwrap_or_default()
                        .to_string(),
                }
            })
            .collect())
    }

    /// The target groups of a load balancer with their tags (`DescribeTags` in batches of 20)
    /// and weights (from every rule of every listener; the last forward action naming a group
    /// wins, and groups named by none have no weight): Argo's `GetTargetGroupMetadata`.
    pub async fn target_group_metadata(
        &self,
        load_balancer_arn: &str,
    ) -> Result<Vec<TargetGroupMeta>, AwsError> {
        let groups = self.describe_target_groups(load_balancer_arn).await?;
        let mut metas: Vec<TargetGroupMeta> = groups
            .into_iter()
            .map(|(arn, name)| TargetGroupMeta {
                arn,
                name,
                ..Default::default()
            })
            .collect();
        let arns: Vec<String> = metas.iter().map(|m| m.arn.clone()).collect();
        for batch in arns.chunks(DESCRIBE_TAGS_LIMIT) {
            for (arn, tags) in self.describe_tags(batch).await? {
                if let Some(meta) = metas.iter_mut().find(|m| m.arn == arn) {
                    meta.tags.extend(tags);
                }
            }
        }
        for listener in self.describe_listeners(load_balancer_arn).await? {
            for (arn, weight) in self.describe_rules(&listener).await? {
                match metas.iter_mut().find(|m| m.arn == arn) {
                    Some(meta) => meta.weight = weight,
                    None => tracing::warn!(
                        target_group = %arn,
                        "A forward action names a target group the load balancer does not list."
                    ),
                }
            }
        }
        Ok(metas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn configuration_comes_from_the_standard_variables() {
        let cfg = AwsConfig::from_vars(vars(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
        ]))
        .unwrap();
        assert_eq!(cfg.region, "eu-west-1");
        assert_eq!(
            cfg.endpoint,
            "https://elasticloadbalancing.eu-west-1.amazonaws.com"
        );
        assert_eq!(cfg.credentials.session_token.as_deref(), Some("token"));
        let cfg = AwsConfig::from_vars(vars(&[
            ("AWS_DEFAULT_REGION", "cn-north-1"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
        ]))
        .unwrap();
        assert_eq!(cfg.endpoint, "http://127.0.0.1:1");
        assert_eq!(cfg.credentials.session_token, None);
        assert_eq!(
            AwsConfig::default_endpoint("cn-north-1"),
            "https://elasticloadbalancing.cn-north-1.amazonaws.com.cn"
        );
        let cfg = AwsConfig::from_vars(vars(&[
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            (
                "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2",
                "http://127.0.0.1:2",
            ),
        ]))
        .unwrap();
        assert_eq!(
            cfg.endpoint, "http://127.0.0.1:2",
            "the service's own override wins"
        );
    }

    #[test]
    fn missing_configuration_is_named() {
        assert_eq!(
            AwsConfig::from_vars(vars(&[])).unwrap_err().to_string(),
            "AWS configuration: no region: set AWS_REGION"
        );
        assert_eq!(
            AwsConfig::from_vars(vars(&[
                ("AWS_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "A")
            ]))
            .unwrap_err()
            .to_string(),
            "AWS configuration: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        );
        let irsa = AwsConfig::from_vars(vars(&[
            ("AWS_REGION", "us-east-1"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(irsa.contains("web identity tokens"), "{irsa}");
        let mut cfg = AwsConfig::from_vars(vars(&[
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "A"),
            ("AWS_SECRET_ACCESS_KEY", "S"),
        ]))
        .unwrap();
        cfg.endpoint = "not a url".into();
        assert!(matches!(Elbv2Client::new(cfg), Err(AwsError::Config(_))));
    }

    #[test]
    fn errors_read_from_the_xml_and_retry_only_when_it_may_help() {
        let body = r#"<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">
  <Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>
  <RequestId>req-1</RequestId>
</ErrorResponse>"#;
        let e = api_error("DescribeRules", 400, body);
        assert_eq!(
            e.to_string(),
            "DescribeRules: Throttling: Rate exceeded (HTTP 400, request id req-1)"
        );
        assert!(e.retryable());
        assert_eq!(e.code(), Some("Throttling"));
        let denied = api_error(
            "DescribeLoadBalancers",
            403,
            "<ErrorResponse><Error><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>",
        );
        assert!(!denied.retryable());
        let garbage = api_error("DescribeTags", 502, "Bad Gateway");
        assert_eq!(
            garbage.to_string(),
            "DescribeTags: HTTP502: Bad Gateway (HTTP 502, request id )"
        );
        assert!(garbage.retryable());
        assert_eq!(
            form_encode(&[("Marker".into(), "a b/c+=".into())]),
            "Marker=a%20b%2Fc%2B%3D"
        );
    }
}
