//! The component the WebAssembly tests run (built for wasm32-wasip2 in their set-up): each
//! route does one thing a test checks.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;
use sylph_guest::tables::Tables;
use sylph_guest::{Request, Response};

/// Requests this instance has served: a warm instance keeps counting.
static SERVED: AtomicU64 = AtomicU64::new(0);

struct Component;

impl sylph_guest::Handler for Component {
    fn handle(request: Request) -> Response {
        let served = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
        // Under a REST route the same routes live below `/rest`.
        let segments = request.segments();
        let segments = match segments.split_first() {
            Some((&"rest", rest)) => rest,
            _ => &segments[..],
        };
        match (request.method.as_str(), segments) {
            ("GET", ["hello"]) => {
                Response::text(200, "hello from a component\n").with_header("x-served", &served.to_string())
            }
            ("GET", ["env", name]) => match std::env::var(name) {
                Ok(value) => Response::text(200, value),
                Err(_) => Response::text(404, format!("{name} is not set")),
            },
            ("GET", ["echo"]) | ("POST", ["echo"]) => Response::json(
                200,
                &json!({
                    "method": request.method,
                    "path": request.path,
                    "query": request.query,
                    "headers": request.headers.iter().map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned())).collect::<std::collections::BTreeMap<_, _>>(),
                    "body": String::from_utf8_lossy(&request.body),
                }),
            ),
            ("POST", ["events"]) => {
                let event: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or(serde_json::Value::Null);
                println!(
                    "event for request {}",
                    request.header("lambda-runtime-aws-request-id").unwrap_or("?")
                );
                Response::json(200, &json!({ "received": event }))
            }
            ("GET", ["log"]) => {
                println!("a line on stdout");
                eprintln!("a line on stderr");
                Response::text(200, "logged")
            }
            ("PUT", ["items", id]) => {
                let table = std::env::var("TABLE").unwrap_or_default();
                let put = json!({ "TableName": table, "Item": { "id": { "S": id }, "body": { "S": String::from_utf8_lossy(&request.body) } } });
                match Tables::from_env().call("PutItem", &put) {
                    Ok(_) => Response::text(200, "stored"),
                    Err(e) => Response::text(500, e.to_string()),
                }
            }
            ("GET", ["items", id]) => {
                let table = std::env::var("TABLE").unwrap_or_default();
                let get = json!({ "TableName": table, "Key": { "id": { "S": id } } });
                match Tables::from_env().call("GetItem", &get) {
                    Ok(answer) => match answer["Item"]["body"]["S"].as_str() {
                        Some(body) => Response::text(200, body),
                        None => Response::text(404, "no such item"),
                    },
                    Err(e) => Response::text(500, e.to_string()),
                }
            }
            ("POST", ["relay"]) => {
                // {"method", "url", "headers": [[name, value]], "body"}: sent as given.
                let spec: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
                let headers: Vec<(String, String)> = spec["headers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|h| Some((h[0].as_str()?.to_owned(), h[1].as_str()?.to_owned())))
                    .collect();
                let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                match sylph_guest::fetch(
                    spec["method"].as_str().unwrap_or("GET"),
                    spec["url"].as_str().unwrap_or(""),
                    &headers,
                    spec["body"].as_str().unwrap_or("").as_bytes(),
                ) {
                    Ok(f) => Response::json(
                        200,
                        &json!({"status": f.status, "body": String::from_utf8_lossy(&f.body)}),
                    ),
                    Err(code) => Response::text(502, format!("{code:?}")),
                }
            }
            ("GET", ["fetch"]) => {
                let url = request.param("url").unwrap_or_default();
                match sylph_guest::fetch("GET", &url, &[], b"") {
                    Ok(fetched) => Response::text(200, fetched.body),
                    Err(code) => Response::text(502, format!("{code:?}")),
                }
            }
            ("GET", ["grow", mb]) => {
                let mb: usize = mb.parse().unwrap_or(1);
                let mut block = vec![0u8; mb * 1024 * 1024];
                // Touch every page, so the memory is really used.
                for i in (0..block.len()).step_by(4096) {
                    block[i] = 1;
                }
                Response::text(200, format!("grew by {} MB", block.len() / (1024 * 1024)))
            }
            ("GET", ["sleep", ms]) => {
                let ms: u64 = ms.parse().unwrap_or(0);
                sylph_guest::__wasi::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
                Response::text(200, format!("slept {ms} ms"))
            }
            ("GET", ["spin"]) => {
                // A busy loop with no calls out: only epoch interruption can stop it.
                let mut x: u64 = served;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                    if x == 0 {
                        break;
                    }
                }
                Response::text(200, format!("{x}"))
            }
            ("GET", ["trap"]) => panic!("the component was asked to trap"),
            _ => Response::text(404, format!("no route for {} {}", request.method, request.path)),
        }
    }
}

sylph_guest::export!(Component);
