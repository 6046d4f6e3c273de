//! Matching a request to a function route the way API Gateway does: literal segments beat
//! `{param}` segments, which beat a greedy `{proxy+}`; a specific method beats `ANY`.

use sylph_model::{ApiKind, Cors, Event, Service};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

#[derive(Debug, Clone)]
pub struct Route {
    pub api: ApiKind,
    /// Upper-case method, `None` for any.
    pub method: Option<String>,
    /// The resource as declared, e.g. `/todos/{id}` (API Gateway's `resource`).
    pub resource: String,
    /// HTTP API route key: `GET /todos/{id}`, `ANY /x` or `$default`.
    pub route_key: String,
    /// The function's deployed name.
    pub function: String,
    pub cors: Option<Cors>,
    /// The route's authorizer, compiled once.
    pub auth: Option<std::sync::Arc<crate::authorizers::RouteAuth>>,
    /// `private: true`: an API key is required.
    pub private: bool,
    /// `request.schemas` / `request.parameters`, compiled once.
    pub validation: Option<std::sync::Arc<crate::validation::Validator>>,
    segments: Vec<Segment>,
}

/// A matched route and its path parameters (percent-decoded).
#[derive(Debug)]
pub struct Match<'r> {
    pub route: &'r Route,
    pub params: Vec<(String, String)>,
}

#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<Route>,
    stage_prefix: String,
}

impl Router {
    pub fn new(service: &Service) -> Router {
        let mut routes = Vec::new();
        for f in &service.functions {
            for ev in &f.events {
                let Event::Http(r) = ev else { continue };
                let method_label = r.method.clone().unwrap_or_else(|| "ANY".into());
                let route_key = if r.catch_all && r.method.is_none() {
                    "$default".to_owned()
                } else {
                    format!("{method_label} {}", r.path)
                };
                let cors = match r.api {
                    ApiKind::Rest => r.cors.clone(),
                    ApiKind::Http => service.http_api_cors.clone(),
                };
                routes.push(Route {
                    api: r.api,
                    method: r.method.clone(),
                    resource: r.path.clone(),
                    route_key,
                    function: f.name.clone(),
                    cors,
                    auth: r
                        .authorizer
                        .clone()
                        .map(|a| std::sync::Arc::new(crate::authorizers::RouteAuth::new(a, r.api))),
                    private: r.private,
                    validation: r
                        .validation
                        .clone()
                        .map(|v| std::sync::Arc::new(crate::validation::Validator::new(v))),
                    segments: parse_segments(&r.path),
                });
            }
        }
        Router {
            routes,
            stage_prefix: format!("/{}", service.stage),
        }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn has_rest_routes(&self) -> bool {
        self.routes.iter().any(|r| r.api == ApiKind::Rest)
    }

    /// The part of `path` after the `/{stage}` prefix that REST routes are served under.
    pub fn strip_stage<'p>(&self, path: &'p str) -> Option<&'p str> {
        let rest = path.strip_prefix(self.stage_prefix.as_str())?;
        if rest.is_empty() {
            Some("/")
        } else if rest.starts_with('/') {
            Some(rest)
        } else {
            None
        }
    }

    /// Find the best route for `method` and `path`; REST routes are matched under `/{stage}`.
    pub fn find(&self, method: &str, path: &str) -> Option<Match<'_>> {
        let rest_path = self.strip_stage(path);
        let mut best: Option<(Vec<u8>, Match<'_>)> = None;
        for route in &self.routes {
            if let Some(m) = &route.method {
                if m != method && !(method == "HEAD" && m == "GET") {
                    continue;
                }
            }
            let candidate = match route.api {
                ApiKind::Rest => match rest_path {
                    Some(p) => p,
                    None => continue,
                },
                ApiKind::Http => path,
            };
            let Some((mut score, params)) = route_match(route, candidate) else {
                continue;
            };
            // REST routes under the stage prefix take precedence over HTTP API routes that
            // happen to match the same URL; a specific method beats ANY.
            score.insert(0, u8::from(route.api == ApiKind::Rest && rest_path.is_some()));
            score.push(u8::from(route.method.is_some()));
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, Match { route, params }));
            }
        }
        best.map(|(_, m)| m)
    }

    /// Routes on `path` (any method) that have CORS set up, for answering a preflight.
    pub fn cors_for_path(&self, path: &str) -> Option<(&Cors, Vec<&str>)> {
        let rest_path = self.strip_stage(path);
        let mut cors = None;
        let mut methods = Vec::new();
        for route in &self.routes {
            let candidate = match route.api {
                ApiKind::Rest => match rest_path {
                    Some(p) => p,
                    None => continue,
                },
                ApiKind::Http => path,
            };
            if route_match(route, candidate).is_none() {
                continue;
            }
            if let Some(c) = &route.cors {
                cors.get_or_insert(c);
                match &route.method {
                    Some(m) => methods.push(m.as_str()),
                    None => methods.extend(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]),
                }
            }
        }
        cors.map(|c| (c, methods))
    }
}

fn parse_segments(path: &str) -> Vec<Segment> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if let Some(name) = s.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
                Segment::Greedy(name.to_owned())
            } else if let Some(name) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Segment::Param(name.to_owned())
            } else {
                Segment::Literal(s.to_owned())
            }
        })
        .collect()
}

/// Match a route: its segments, or (the HTTP API's `$default`, `httpApi: '*'`) any path at all,
/// `/` included, below every other route.
fn route_match(route: &Route, path: &str) -> Option<(Vec<u8>, Vec<(String, String)>)> {
    match_segments(&route.segments, path).or_else(|| (route.route_key == "$default").then(|| (vec![0], Vec::new())))
}

/// Match path segments; the score ranks literal (3) over param (2) over greedy (1) per position.
fn match_segments(segments: &[Segment], path: &str) -> Option<(Vec<u8>, Vec<(String, String)>)> {
    let trimmed = path.trim_start_matches('/');
    let mut parts = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect::<Vec<_>>()
    };
    // A trailing slash is ignored, as API Gateway does.
    if parts.last() == Some(&"") {
        parts.pop();
    }
    let mut score = Vec::with_capacity(segments.len());
    let mut params = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        match seg {
            Segment::Literal(lit) => {
                if parts.get(i) != Some(&lit.as_str()) {
                    return None;
                }
                score.push(3);
            }
            Segment::Param(name) => {
                let value = parts.get(i).filter(|p| !p.is_empty())?;
                params.push((name.clone(), decode(value)));
                score.push(2);
            }
            Segment::Greedy(name) => {
                if i >= parts.len() {
                    return None;
                }
                params.push((name.clone(), decode(&parts[i..].join("/"))));
                score.push(1);
                return Some((score, params));
            }
        }
    }
    if parts.len() != segments.len() {
        return None;
    }
    Some((score, params))
}

pub(crate) fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sylph_model::HttpRoute;

    fn service(routes: &[(&str, ApiKind, Option<&str>, &str)]) -> Service {
        let functions = routes
            .iter()
            .map(|(name, api, method, path)| sylph_model::Function {
                key: (*name).into(),
                name: (*name).into(),
                handler: "h.f".into(),
                runtime: sylph_model::Runtime::Node("nodejs20.x".into()),
                memory_mb: 128,
                ephemeral_mb: 512,
                timeout: std::time::Duration::from_secs(3),
                environment: Default::default(),
                reserved_concurrency: None,
                events: vec![Event::Http(HttpRoute {
                    api: *api,
                    method: method.map(String::from),
                    path: (*path).into(),
                    catch_all: false,
                    cors: None,
                    authorizer: None,
                    private: false,
                    validation: None,
                })],
                artifact: None,
                platform_logs: Default::default(),
                outbound_hosts: Vec::new(),
                role: None,
                on_async: Default::default(),
                layers: Vec::new(),
            })
            .collect();
        Service {
            name: "svc".into(),
            stage: "dev".into(),
            region: "us-east-1".into(),
            root: ".".into(),
            functions,
            http_api_cors: None,
            resources: serde_json::Value::Null,
            custom: serde_json::Value::Null,
            package_patterns: vec![],
            tables: vec![],
            queues: Vec::new(),
            api_keys: Vec::new(),
            usage_plans: Vec::new(),
            node_build: None,
            python_requirements: None,
            websocket_route_selection: Vec::new(),
        }
    }

    #[test]
    fn literal_beats_param_beats_greedy() {
        let router = Router::new(&service(&[
            ("greedy", ApiKind::Rest, None, "/items/{proxy+}"),
            ("param", ApiKind::Rest, Some("GET"), "/items/{id}"),
            ("literal", ApiKind::Rest, Some("GET"), "/items/special"),
        ]));
        assert_eq!(
            router.find("GET", "/dev/items/special").unwrap().route.function,
            "literal"
        );
        let m = router.find("GET", "/dev/items/42").unwrap();
        assert_eq!(
            (m.route.function.as_str(), m.params.clone()),
            ("param", vec![("id".into(), "42".into())])
        );
        let m = router.find("GET", "/dev/items/a/b%20c").unwrap();
        assert_eq!(
            (m.route.function.as_str(), m.params.clone()),
            ("greedy", vec![("proxy".into(), "a/b c".into())])
        );
        assert_eq!(router.find("POST", "/dev/items/42").unwrap().route.function, "greedy");
    }

    #[test]
    fn the_http_apis_default_route_takes_every_path_the_root_included() {
        let mut svc = service(&[
            ("default", ApiKind::Http, None, "/{proxy+}"),
            ("hello", ApiKind::Http, Some("GET"), "/hello"),
        ]);
        // `httpApi: '*'`, as the manifest reads it.
        if let Event::Http(r) = &mut svc.functions[0].events[0] {
            r.catch_all = true;
        }
        let router = Router::new(&svc);
        assert_eq!(router.find("GET", "/").unwrap().route.function, "default");
        assert_eq!(router.find("POST", "/a/b").unwrap().route.function, "default");
        assert_eq!(router.find("GET", "/hello").unwrap().route.function, "hello");
        // A plain greedy route still needs a segment, as on API Gateway.
        let plain = Router::new(&service(&[("greedy", ApiKind::Http, None, "/{proxy+}")]));
        assert!(plain.find("GET", "/").is_none());
    }

    #[test]
    fn rest_routes_need_the_stage_prefix_http_api_routes_do_not() {
        let router = Router::new(&service(&[
            ("rest", ApiKind::Rest, Some("GET"), "/hello"),
            ("http", ApiKind::Http, Some("GET"), "/hello"),
        ]));
        assert_eq!(router.find("GET", "/dev/hello").unwrap().route.function, "rest");
        assert_eq!(router.find("GET", "/hello").unwrap().route.function, "http");
        assert!(router.find("GET", "/prod/hello").is_none());
        assert!(router.find("DELETE", "/hello").is_none());
    }
}
