//! A local HTTP double of the AWS ELBv2 Query API, for tests.
//!
//! It listens on 127.0.0.1 (a free port) and answers the read-only actions the ALB router calls
//! (`DescribeLoadBalancers` with `Marker` paging, `DescribeTargetGroups`, `DescribeTags`,
//! `DescribeListeners`, `DescribeRules`, `DescribeTargetHealth`) from a [`Scenario`], in the
//! documented XML shapes. Every request is checked as AWS would: a form-encoded POST with
//! `Version=2015-12-01`, an `X-Amz-Date`, an `Authorization` header of the SigV4 shape for the
//! service `elasticloadbalancing`, whose signature is recomputed from what arrived (a bad one is
//! answered `403 SignatureDoesNotMatch`). Problems are recorded for the test to assert on.
//! Scripted failures (throttling, access denied, ...) are answered before the real answer.
//!
//! The server is a task of the test's runtime, aborted when the double is dropped; it needs no
//! other crate than tokio (the e2e tests include this file too).

#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use rollouts_router_alb::sigv4::{self, Credentials, Scope};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// The region and credentials clients of the double must use.
pub const REGION: &str = "us-west-2";
pub const ACCESS_KEY_ID: &str = "AKIDTESTDOUBLE";
pub const SECRET_ACCESS_KEY: &str = "double/secret+key";

/// A load balancer the double knows.
#[derive(Clone, Debug)]
pub struct Lb {
    pub arn: String,
    pub dns_name: String,
    pub name: String,
}

/// A target group, its tags, and nothing else.
#[derive(Clone, Debug)]
pub struct Tg {
    pub arn: String,
    pub name: String,
    pub tags: Vec<(String, String)>,
}

/// A listener and its rules: each rule is a list of forward target groups with weights.
#[derive(Clone, Debug)]
pub struct Listener {
    pub arn: String,
    pub rules: Vec<Vec<(String, Option<i32>)>>,
}

/// A scripted error: the next `times` calls of `action` get it.
#[derive(Clone, Debug)]
pub struct Failure {
    pub action: String,
    pub status: u16,
    pub code: String,
    pub message: String,
    pub times: usize,
}

/// What the double serves.
#[derive(Clone, Debug, Default)]
pub struct Scenario {
    /// Pages of `DescribeLoadBalancers`.
    pub load_balancer_pages: Vec<Vec<Lb>>,
    /// Target groups per load balancer ARN.
    pub target_groups: BTreeMap<String, Vec<Tg>>,
    /// Listeners per load balancer ARN.
    pub listeners: BTreeMap<String, Vec<Listener>>,
    /// Targets per target group ARN: `(id, port, state)`.
    pub targets: BTreeMap<String, Vec<(String, i32, String)>>,
    /// Errors to answer first.
    pub failures: Vec<Failure>,
    /// The session token requests must carry (and sign), if any.
    pub session_token: Option<String>,
}

/// One request the double received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub action: String,
    pub params: BTreeMap<String, String>,
}

#[derive(Default)]
struct State {
    scenario: Scenario,
    seen: Vec<Seen>,
    problems: Vec<String>,
}

/// The running double.
pub struct Elbv2Double {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Elbv2Double {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Elbv2Double {
    /// Starts the double on 127.0.0.1.
    pub async fn start(scenario: Scenario) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let endpoint = format!("http://{}", listener.local_addr().expect("local address"));
        let state = Arc::new(Mutex::new(State {
            scenario,
            ..Default::default()
        }));
        let served = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = served.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, state).await;
                });
            }
        });
        Self {
            endpoint,
            state,
            task,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The requests received so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state().seen.clone()
    }

    /// The actions received so far, in order.
    pub fn actions(&self) -> Vec<String> {
        self.state().seen.iter().map(|s| s.action.clone()).collect()
    }

    /// What was wrong with the requests (empty when every request was well-formed and signed).
    pub fn problems(&self) -> Vec<String> {
        self.state().problems.clone()
    }

    /// Changes the scenario (e.g. the weights the rules hold).
    pub fn update(&self, edit: impl FnOnce(&mut Scenario)) {
        edit(&mut self.state().scenario);
    }

    /// Forgets the requests seen so far.
    pub fn clear(&self) {
        self.state().seen.clear();
    }
}

/// Reads one HTTP/1.1 request (head and a `Content-Length` body).
async fn read_request(
    stream: &mut TcpStream,
) -> std::io::Result<Option<(String, String, Vec<(String, String)>, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Some((method, target, headers, body)))
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    while let Some((method, target, headers, body)) = read_request(&mut stream).await? {
        let (status, xml) = {
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            answer(&mut state, &method, &target, &headers, &body)
        };
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            403 => "Forbidden",
            _ => "Error",
        };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{xml}",
            xml.len()
        );
        stream.write_all(response.as_bytes()).await?;
    }
    Ok(())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn error_xml(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">\
         <Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error>\
         <RequestId>double-error-1</RequestId></ErrorResponse>",
        escape(message)
    )
}

fn ok_xml(action: &str, result: &str) -> String {
    format!(
        "<{action}Response xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">\n\
         <{action}Result>{result}</{action}Result>\n\
         <ResponseMetadata><RequestId>double-ok-1</RequestId></ResponseMetadata>\n\
         </{action}Response>"
    )
}

/// Checks the request like AWS would; returns the problems found.
fn check(
    scenario: &Scenario,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
    params: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if method != "POST" || target != "/" {
        problems.push(format!("request line {method} {target}, want POST /"));
    }
    if header(headers, "content-type") != Some("application/x-www-form-urlencoded; charset=utf-8") {
        problems.push(format!(
            "content-type {:?}",
            header(headers, "content-type")
        ));
    }
    if params.get("Version").map(String::as_str) != Some("2015-12-01") {
        problems.push(format!("Version {:?}", params.get("Version")));
    }
    let Some(date) = header(headers, "x-amz-date") else {
        problems.push("no X-Amz-Date".into());
        return problems;
    };
    let date_ok = date.len() == 16
        && date.as_bytes()[8] == b'T'
        && date.ends_with('Z')
        && date[..8].bytes().all(|b| b.is_ascii_digit())
        && date[9..15].bytes().all(|b| b.is_ascii_digit());
    if !date_ok {
        problems.push(format!("X-Amz-Date {date:?} is not YYYYMMDDTHHMMSSZ"));
    }
    let token = header(headers, "x-amz-security-token");
    if token.map(String::from) != scenario.session_token {
        problems.push(format!("X-Amz-Security-Token {token:?}"));
    }
    let Some(authorization) = header(headers, "authorization") else {
        problems.push("no Authorization".into());
        return problems;
    };
    let signed_list = if token.is_some() {
        "content-type;host;x-amz-date;x-amz-security-token"
    } else {
        "content-type;host;x-amz-date"
    };
    let prefix = format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/{}/{REGION}/elasticloadbalancing/aws4_request, SignedHeaders={signed_list}, Signature=",
        &date[..8.min(date.len())]
    );
    let Some(signature) = authorization.strip_prefix(&prefix) else {
        problems.push(format!(
            "Authorization {authorization:?} does not start with {prefix:?}"
        ));
        return problems;
    };
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        problems.push(format!("signature {signature:?} is not 64 hex digits"));
    }
    // Recompute the signature from what arrived.
    let signed: Vec<(String, String)> = signed_list
        .split(';')
        .map(|n| {
            (
                n.to_string(),
                header(headers, n).unwrap_or_default().to_string(),
            )
        })
        .collect();
    let credentials = Credentials {
        access_key_id: ACCESS_KEY_ID.into(),
        secret_access_key: SECRET_ACCESS_KEY.into(),
        session_token: scenario.session_token.clone(),
    };
    let want = sigv4::signature(
        &credentials,
        &Scope {
            amz_date: date,
            region: REGION,
            service: "elasticloadbalancing",
        },
        &sigv4::Request {
            method,
            path: "/",
            query: "",
            headers: &signed,
            body,
        },
    );
    if signature != want {
        problems.push(format!(
            "SignatureDoesNotMatch: got {signature}, want {want}"
        ));
    }
    problems
}

fn answer(
    state: &mut State,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, String) {
    let form = String::from_utf8_lossy(body).into_owned();
    let params: BTreeMap<String, String> = form
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                sigv4::percent_decode(k, true),
                sigv4::percent_decode(v, true),
            )
        })
        .collect();
    let action = params.get("Action").cloned().unwrap_or_default();
    state.seen.push(Seen {
        action: action.clone(),
        params: params.clone(),
    });
    let problems = check(&state.scenario, method, target, headers, body, &params);
    if !problems.is_empty() {
        let signature = problems
            .iter()
            .any(|p| p.starts_with("SignatureDoesNotMatch"));
        state.problems.extend(problems);
        return if signature {
            (
                403,
                error_xml(
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you provided.",
                ),
            )
        } else {
            (400, error_xml("InvalidAction", "malformed request"))
        };
    }
    if let Some(f) = state
        .scenario
        .failures
        .iter_mut()
        .find(|f| f.action == action && f.times > 0)
    {
        f.times -= 1;
        return (f.status, error_xml(&f.code, &f.message));
    }
    let s = &state.scenario;
    let param = |name: &str| params.get(name).cloned().unwrap_or_default();
    let marker = |next: Option<String>| {
        next.map(|m| format!("<NextMarker>{m}</NextMarker>"))
            .unwrap_or_default()
    };
    match action.as_str() {
        "DescribeLoadBalancers" => {
            if param("PageSize") != "300" {
                state
                    .problems
                    .push(format!("PageSize {:?}", param("PageSize")));
            }
            let page: usize = params
                .get("Marker")
                .and_then(|m| m.strip_prefix("page-"))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let lbs = s.load_balancer_pages.get(page).cloned().unwrap_or_default();
            let members: String = lbs
                .iter()
                .map(|lb| {
                    format!(
                        "<member><LoadBalancerArn>{}</LoadBalancerArn><DNSName>{}</DNSName>\
                         <LoadBalancerName>{}</LoadBalancerName><Scheme>internet-facing</Scheme>\
                         <Type>application</Type><State><Code>active</Code></State></member>",
                        escape(&lb.arn),
                        escape(&lb.dns_name),
                        escape(&lb.name)
                    )
                })
                .collect();
            let next =
                (page + 1 < s.load_balancer_pages.len()).then(|| format!("page-{}", page + 1));
            (
                200,
                ok_xml(
                    &action,
                    &format!("<LoadBalancers>{members}</LoadBalancers>{}", marker(next)),
                ),
            )
        }
        "DescribeTargetGroups" => {
            let tgs = s
                .target_groups
                .get(&param("LoadBalancerArn"))
                .cloned()
                .unwrap_or_default();
            let members: String = tgs
                .iter()
                .map(|tg| {
                    format!(
                        "<member><TargetGroupArn>{}</TargetGroupArn><TargetGroupName>{}</TargetGroupName>\
                         <Protocol>HTTP</Protocol><Port>80</Port><TargetType>ip</TargetType></member>",
                        escape(&tg.arn),
                        escape(&tg.name)
                    )
                })
                .collect();
            (
                200,
                ok_xml(&action, &format!("<TargetGroups>{members}</TargetGroups>")),
            )
        }
        "DescribeTags" => {
            let arns: Vec<String> = (1..)
                .map_while(|i| params.get(&format!("ResourceArns.member.{i}")).cloned())
                .collect();
            if arns.len() > 20 {
                state
                    .problems
                    .push(format!("DescribeTags with {} ARNs (limit 20)", arns.len()));
            }
            let all: Vec<&Tg> = s.target_groups.values().flatten().collect();
            let members: String = arns
                .iter()
                .filter_map(|arn| all.iter().find(|tg| &tg.arn == arn))
                .map(|tg| {
                    let tags: String = tg
                        .tags
                        .iter()
                        .map(|(k, v)| {
                            format!(
                                "<member><Key>{}</Key><Value>{}</Value></member>",
                                escape(k),
                                escape(v)
                            )
                        })
                        .collect();
                    format!(
                        "<member><ResourceArn>{}</ResourceArn><Tags>{tags}</Tags></member>",
                        escape(&tg.arn)
                    )
                })
                .collect();
            (
                200,
                ok_xml(
                    &action,
                    &format!("<TagDescriptions>{members}</TagDescriptions>"),
                ),
            )
        }
        "DescribeListeners" => {
            let listeners = s
                .listeners
                .get(&param("LoadBalancerArn"))
                .cloned()
                .unwrap_or_default();
            let members: String = listeners
                .iter()
                .map(|l| {
                    format!(
                        "<member><ListenerArn>{}</ListenerArn><Port>443</Port><Protocol>HTTPS</Protocol></member>",
                        escape(&l.arn)
                    )
                })
                .collect();
            (
                200,
                ok_xml(&action, &format!("<Listeners>{members}</Listeners>")),
            )
        }
        "DescribeRules" => {
            let listener = s
                .listeners
                .values()
                .flatten()
                .find(|l| l.arn == param("ListenerArn"))
                .cloned();
            let Some(listener) = listener else {
                return (
                    400,
                    error_xml("ListenerNotFound", "One or more listeners not found"),
                );
            };
            let members: String = listener
                .rules
                .iter()
                .enumerate()
                .map(|(i, groups)| {
                    let tgs: String = groups
                        .iter()
                        .map(|(arn, w)| {
                            let weight = w
                                .map(|w| format!("<Weight>{w}</Weight>"))
                                .unwrap_or_default();
                            format!(
                                "<member><TargetGroupArn>{}</TargetGroupArn>{weight}</member>",
                                escape(arn)
                            )
                        })
                        .collect();
                    format!(
                        "<member><RuleArn>{}/rule-{i}</RuleArn><Priority>{i}</Priority>\
                         <Actions><member><Type>forward</Type><Order>1</Order>\
                         <ForwardConfig><TargetGroups>{tgs}</TargetGroups></ForwardConfig>\
                         </member></Actions></member>",
                        escape(&listener.arn)
                    )
                })
                .collect();
            // A default rule with a fixed response, which has no ForwardConfig.
            let default = "<member><Priority>default</Priority><IsDefault>true</IsDefault>\
                           <Actions><member><Type>fixed-response</Type></member></Actions></member>";
            (
                200,
                ok_xml(&action, &format!("<Rules>{members}{default}</Rules>")),
            )
        }
        "DescribeTargetHealth" => {
            let targets = s
                .targets
                .get(&param("TargetGroupArn"))
                .cloned()
                .unwrap_or_default();
            let members: String = targets
                .iter()
                .map(|(id, port, state)| {
                    format!(
                        "<member><Target><Id>{id}</Id><Port>{port}</Port></Target>\
                         <TargetHealth><State>{state}</State></TargetHealth></member>"
                    )
                })
                .collect();
            (
                200,
                ok_xml(
                    &action,
                    &format!("<TargetHealthDescriptions>{members}</TargetHealthDescriptions>"),
                ),
            )
        }
        other => (
            400,
            error_xml("InvalidAction", &format!("unknown action {other:?}")),
        ),
    }
}

/// A scenario for the load balancer `web-alb` (DNS `web-alb-1.us-west-2.elb.amazonaws.com`)
/// behind the Ingress `web` of namespace `shop`: target groups for `web-canary` (weight
/// `canary`), `web-stable` (`100 - canary - Σ experiments`) and each experiment Service, tagged
/// as the AWS Load Balancer Controller tags them, on one HTTPS listener; `extra` more target
/// groups of other Ingresses (no weight) and a second page of load balancers before this one.
pub fn web_scenario(canary: i32, experiments: &[(&str, i32)], extra: usize) -> Scenario {
    let region_account = "us-west-2:123456789012";
    let lb_arn = format!(
        "arn:aws:elasticloadbalancing:{region_account}:loadbalancer/app/web-alb/50dc6c495c0c9188"
    );
    let tg = |service: &str, id: usize| Tg {
        arn: format!(
            "arn:aws:elasticloadbalancing:{region_account}:targetgroup/k8s-shop-{service}/{id:016x}"
        ),
        name: format!("k8s-shop-{service}"),
        tags: vec![
            ("elbv2.k8s.aws/cluster".into(), "e2e".into()),
            (
                "ingress.k8s.aws/resource".into(),
                format!("shop/web-{service}:80"),
            ),
            ("ingress.k8s.aws/stack".into(), "shop/web".into()),
        ],
    };
    let mut groups = vec![tg("web-canary", 1), tg("web-stable", 2)];
    let mut weights = vec![(groups[0].arn.clone(), Some(canary))];
    let mut stable = 100 - canary;
    for (i, (service, w)) in experiments.iter().enumerate() {
        let g = tg(service, 10 + i);
        weights.push((g.arn.clone(), Some(*w)));
        stable -= w;
        groups.push(g);
    }
    weights.push((groups[1].arn.clone(), Some(stable)));
    for i in 0..extra {
        let mut g = tg(&format!("other-{i}"), 100 + i);
        g.tags[1].1 = format!("shop/other-other-{i}:80");
        groups.push(g);
    }
    let other_lb = |i: usize| Lb {
        arn: format!(
            "arn:aws:elasticloadbalancing:{region_account}:loadbalancer/app/other-{i}/{i:016x}"
        ),
        dns_name: format!("other-{i}.us-west-2.elb.amazonaws.com"),
        name: format!("other-{i}"),
    };
    Scenario {
        load_balancer_pages: vec![
            vec![other_lb(1), other_lb(2)],
            vec![
                other_lb(3),
                Lb {
                    arn: lb_arn.clone(),
                    dns_name: "web-alb-1.us-west-2.elb.amazonaws.com".into(),
                    name: "web-alb".into(),
                },
            ],
        ],
        target_groups: BTreeMap::from([(lb_arn.clone(), groups)]),
        listeners: BTreeMap::from([(
            lb_arn.clone(),
            vec![Listener {
                arn: format!(
                    "arn:aws:elasticloadbalancing:{region_account}:listener/app/web-alb/50dc6c495c0c9188/f2f7dc8efc522ab2"
                ),
                rules: vec![weights],
            }],
        )]),
        ..Default::default()
    }
}

/// The ARN of a target group of [`web_scenario`].
pub fn web_tg_arn(service: &str, id: usize) -> String {
    format!(
        "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/k8s-shop-{service}/{id:016x}"
    )
}

/// Sets the canary (and stable) weight the listener rule of [`web_scenario`] holds.
pub fn set_rule_weight(scenario: &mut Scenario, canary: i32) {
    for listener in scenario.listeners.values_mut().flatten() {
        for rule in &mut listener.rules {
            for (arn, w) in rule.iter_mut() {
                if arn == &web_tg_arn("web-canary", 1) {
                    *w = Some(canary);
                } else if arn == &web_tg_arn("web-stable", 2) {
                    *w = Some(100 - canary);
                }
            }
        }
    }
}
