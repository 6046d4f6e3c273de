//! The pool against a fake [`Runtime`] under paused tokio time: scaling, reuse, reaping,
//! reload, throttling and the retry of an invocation a dead warm instance never ran. The fake
//! instances answer with the payload after a delay (tokio's clock, so paused time jumps ahead)
//! or fail as a test tells them to.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use sylph_model::{Function, Runtime as RuntimeId, Service};
use sylph_runtime::{
    BoxFuture, Completed, Failure, Instance, InstanceConfig, Invocation, Outcome, Runtime, StartError, StartKind,
};
use sylph_telemetry::LogSink;

use crate::{ErrorKind, InvokeError, InvokeRequest, InvokeResult, Invoker, Pool, PoolConfig, ThrottleReason};

/// What an instance does with one invocation.
#[derive(Clone, Copy, Debug)]
enum Script {
    /// Answer with the payload.
    Answer,
    /// Die before taking the invocation (as a warm instance that crashed while idle does).
    DieUnseen,
    /// Crash while running it.
    Crash,
}

#[derive(Default)]
struct Counters {
    starts: AtomicUsize,
    live: AtomicUsize,
    invocations: AtomicUsize,
}

struct FakeRuntime {
    counters: Arc<Counters>,
    /// How long each invocation takes.
    work: Duration,
    /// For the next instances started, what each does with its invocations in turn (then it
    /// answers).
    scripts: Mutex<VecDeque<Vec<Script>>>,
}

impl FakeRuntime {
    fn new(work: Duration) -> Arc<FakeRuntime> {
        Arc::new(FakeRuntime {
            counters: Arc::default(),
            work,
            scripts: Mutex::default(),
        })
    }

    fn script(&self, next_instance: Vec<Script>) {
        self.scripts.lock().unwrap().push_back(next_instance);
    }

    fn starts(&self) -> usize {
        self.counters.starts.load(Ordering::SeqCst)
    }

    fn live(&self) -> usize {
        self.counters.live.load(Ordering::SeqCst)
    }
}

impl Runtime for FakeRuntime {
    fn start(&self, _config: Arc<InstanceConfig>) -> BoxFuture<'static, Result<Box<dyn Instance>, StartError>> {
        self.counters.starts.fetch_add(1, Ordering::SeqCst);
        self.counters.live.fetch_add(1, Ordering::SeqCst);
        let instance = FakeInstance {
            counters: self.counters.clone(),
            work: self.work,
            script: self.scripts.lock().unwrap().pop_front().unwrap_or_default().into(),
            healthy: true,
            served: 0,
        };
        Box::pin(async move { Ok(Box::new(instance) as Box<dyn Instance>) })
    }
}

struct FakeInstance {
    counters: Arc<Counters>,
    work: Duration,
    script: VecDeque<Script>,
    healthy: bool,
    served: usize,
}

impl Instance for FakeInstance {
    fn invoke(&mut self, invocation: Invocation) -> BoxFuture<'_, Completed> {
        Box::pin(async move {
            let first = self.served == 0;
            self.served += 1;
            let script = self.script.pop_front().unwrap_or(Script::Answer);
            let outcome = match script {
                Script::DieUnseen => {
                    self.healthy = false;
                    Outcome::InstanceFailed(Failure::Unavailable("the instance had stopped".into()))
                }
                Script::Crash => {
                    self.counters.invocations.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(self.work).await;
                    self.healthy = false;
                    Outcome::InstanceFailed(Failure::Exited("exit status 1".into()))
                }
                Script::Answer => {
                    self.counters.invocations.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(self.work).await;
                    Outcome::Response(invocation.payload)
                }
            };
            Completed {
                outcome,
                duration: self.work,
                init_duration: first.then_some(Duration::from_millis(1)),
                max_memory_mb: 1,
                logs: None,
                start: if first { StartKind::Cold } else { StartKind::Warm },
            }
        })
    }

    fn is_healthy(&self) -> bool {
        self.healthy
    }

    fn pid(&self) -> Option<u32> {
        None
    }
}

impl Drop for FakeInstance {
    fn drop(&mut self) {
        self.counters.live.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl LogSink for Lines {
    fn line(&self, _function: &str, _request_id: Option<&str>, text: &str) {
        self.0.lock().unwrap().push(text.to_owned());
    }
}

fn function(key: &str, reserved: Option<u32>) -> Function {
    Function {
        key: key.to_owned(),
        name: format!("svc-dev-{key}"),
        handler: "h.f".to_owned(),
        runtime: RuntimeId::Node("nodejs20.x".to_owned()),
        memory_mb: 128,
        ephemeral_mb: 512,
        timeout: Duration::from_secs(6),
        environment: Default::default(),
        reserved_concurrency: reserved,
        events: Vec::new(),
        artifact: None,
        platform_logs: Default::default(),
        outbound_hosts: Vec::new(),
        role: None,
        on_async: Default::default(),
        layers: Vec::new(),
    }
}

fn service(functions: Vec<Function>) -> Service {
    Service {
        name: "svc".to_owned(),
        stage: "dev".to_owned(),
        region: "us-east-1".to_owned(),
        root: std::env::temp_dir(),
        functions,
        http_api_cors: None,
        resources: serde_json::Value::Null,
        custom: serde_json::Value::Null,
        package_patterns: Vec::new(),
        tables: Vec::new(),
        queues: Vec::new(),
        api_keys: Vec::new(),
        usage_plans: Vec::new(),
        node_build: None,
        python_requirements: None,
        websocket_route_selection: Vec::new(),
    }
}

const KEEP_WARM: Duration = Duration::from_secs(300);

fn pool(runtime: &Arc<FakeRuntime>, functions: Vec<Function>, concurrency: usize) -> Arc<Pool> {
    Pool::new(
        &service(functions),
        runtime.clone(),
        Arc::new(Lines::default()),
        PoolConfig {
            keep_warm: KEEP_WARM,
            concurrency_limit: concurrency,
            queue_timeout: Duration::from_secs(5),
            extra_env: Vec::new(),
            version: None,
        },
    )
}

fn request(text: &'static str) -> InvokeRequest {
    InvokeRequest {
        payload: Bytes::from_static(text.as_bytes()),
        ..Default::default()
    }
}

async fn invoke(pool: &Arc<Pool>, function: &str, text: &'static str) -> Result<InvokeResult, InvokeError> {
    pool.invoke(function, request(text)).await.map(|r| r.result)
}

/// Run `n` invocations of `function` at once; their results in order.
async fn burst(pool: &Arc<Pool>, function: &'static str, n: usize) -> Vec<Result<InvokeResult, InvokeError>> {
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { invoke(&pool, function, "{}").await })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

fn answered(result: &Result<InvokeResult, InvokeError>, text: &str) -> bool {
    matches!(result, Ok(InvokeResult::Success(body)) if body == text.as_bytes())
}

#[tokio::test(start_paused = true)]
async fn one_request_per_instance_then_warm_instances_are_reused() {
    let runtime = FakeRuntime::new(Duration::from_millis(100));
    let pool = pool(&runtime, vec![function("f", None)], 100);
    let results = burst(&pool, "f", 4).await;
    assert!(results.iter().all(|r| answered(r, "{}")), "{results:?}");
    assert_eq!(runtime.starts(), 4, "four at once need four instances");
    assert_eq!(pool.idle_instances("f"), 4);
    // One after another: the same warm instance every time, no new start.
    for _ in 0..10 {
        assert!(answered(&invoke(&pool, "f", "\"x\"").await, "\"x\""));
    }
    assert_eq!(runtime.starts(), 4);
    // A burst of the same size again is all warm.
    burst(&pool, "f", 4).await;
    assert_eq!(runtime.starts(), 4);
}

#[tokio::test(start_paused = true)]
async fn functions_do_not_share_instances() {
    let runtime = FakeRuntime::new(Duration::from_millis(10));
    let pool = pool(&runtime, vec![function("a", None), function("b", None)], 100);
    assert!(answered(&invoke(&pool, "a", "1").await, "1"));
    assert!(answered(&invoke(&pool, "b", "2").await, "2"));
    assert_eq!(runtime.starts(), 2);
    // By deployed name and by ARN too.
    assert!(answered(&invoke(&pool, "svc-dev-a", "3").await, "3"));
    assert!(answered(
        &invoke(&pool, "arn:aws:lambda:us-east-1:000000000000:function:svc-dev-b", "4").await,
        "4"
    ));
    assert_eq!(runtime.starts(), 2);
    assert!(matches!(
        invoke(&pool, "nope", "{}").await,
        Err(InvokeError::FunctionNotFound(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn idle_instances_are_stopped_after_keep_warm_and_the_next_call_starts_anew() {
    let runtime = FakeRuntime::new(Duration::from_millis(10));
    let pool = pool(&runtime, vec![function("f", None)], 100);
    burst(&pool, "f", 3).await;
    assert_eq!(runtime.live(), 3);
    // Just inside the window: still warm.
    tokio::time::sleep(KEEP_WARM - Duration::from_secs(10)).await;
    assert_eq!(runtime.live(), 3);
    assert!(answered(&invoke(&pool, "f", "1").await, "1"));
    assert_eq!(runtime.starts(), 3, "a warm instance served it");
    // Past the window (plus one reaper period): every instance is gone, none left running.
    tokio::time::sleep(KEEP_WARM + Duration::from_secs(10)).await;
    assert_eq!(runtime.live(), 0, "a quiet function holds no instance");
    assert_eq!(pool.idle_instances("f"), 0);
    assert!(answered(&invoke(&pool, "f", "2").await, "2"));
    assert_eq!(runtime.starts(), 4, "a cold start after the quiet period");
}

#[tokio::test(start_paused = true)]
async fn a_reload_retires_idle_instances_and_in_flight_ones_finish_on_the_old_code() {
    let runtime = FakeRuntime::new(Duration::from_secs(1));
    let pool = pool(&runtime, vec![function("f", None)], 100);
    burst(&pool, "f", 2).await;
    assert_eq!(runtime.live(), 2);
    // One invocation is running when the code changes.
    let running = {
        let pool = pool.clone();
        tokio::spawn(async move { invoke(&pool, "f", "old").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    pool.reload();
    assert_eq!(runtime.live(), 1, "the idle one stopped, the busy one runs on");
    assert!(answered(&running.await.unwrap(), "old"), "the in-flight call finished");
    assert_eq!(runtime.live(), 0, "and its instance was not kept");
    assert!(answered(&invoke(&pool, "f", "new").await, "new"));
    assert_eq!(runtime.starts(), 3, "the next call loaded the new code");
}

#[tokio::test(start_paused = true)]
async fn reserved_concurrency_queues_then_throttles() {
    let runtime = FakeRuntime::new(Duration::from_secs(2));
    let pool = pool(&runtime, vec![function("f", Some(1)), function("off", Some(0))], 100);
    // Two at once with a limit of one: the second waits its turn (2 s < the 5 s queue).
    let results = burst(&pool, "f", 2).await;
    assert!(results.iter().all(|r| answered(r, "{}")), "{results:?}");
    assert_eq!(runtime.starts(), 1, "never more than one instance");
    // Four at once: 2 s each, so the fourth would wait 6 s, past the queue: throttled.
    let results = burst(&pool, "f", 4).await;
    let throttled: Vec<_> = results
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(InvokeError::Throttled(
                    ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded
                ))
            )
        })
        .collect();
    assert_eq!(throttled.len(), 1, "{results:?}");
    assert_eq!(results.iter().filter(|r| answered(r, "{}")).count(), 3);
    // A reserved concurrency of zero turns the function off.
    assert!(matches!(
        invoke(&pool, "off", "{}").await,
        Err(InvokeError::Throttled(
            ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded
        ))
    ));
    assert_eq!(runtime.starts(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_platform_limit_spans_functions() {
    let runtime = FakeRuntime::new(Duration::from_secs(10));
    let pool = pool(&runtime, vec![function("a", None), function("b", None)], 1);
    let long = {
        let pool = pool.clone();
        tokio::spawn(async move { invoke(&pool, "a", "a").await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    // Another function, while the only slot is taken for longer than the queue waits.
    assert!(matches!(
        invoke(&pool, "b", "b").await,
        Err(InvokeError::Throttled(
            ThrottleReason::ConcurrentInvocationLimitExceeded
        ))
    ));
    assert!(answered(&long.await.unwrap(), "a"));
    assert!(answered(&invoke(&pool, "b", "b").await, "b"), "free again");
}

#[tokio::test(start_paused = true)]
async fn a_warm_instance_that_died_unseen_costs_nothing_but_a_crash_fails_its_request() {
    let runtime = FakeRuntime::new(Duration::from_millis(10));
    let pool = pool(&runtime, vec![function("f", None)], 100);
    // The instance will have died while idle when its second invocation comes.
    runtime.script(vec![Script::Answer, Script::DieUnseen]);
    assert!(answered(&invoke(&pool, "f", "1").await, "1"));
    assert_eq!(runtime.starts(), 1);
    assert!(
        answered(&invoke(&pool, "f", "2").await, "2"),
        "retried on a new instance"
    );
    assert_eq!(runtime.starts(), 2);
    assert_eq!(
        runtime.counters.invocations.load(Ordering::SeqCst),
        2,
        "each call ran once"
    );
    // A crash while running is the request's failure: no retry (it may have had effects),
    // even on a warm instance.
    pool.reload();
    runtime.script(vec![Script::Answer, Script::Crash]);
    assert!(answered(&invoke(&pool, "f", "3").await, "3"));
    let (starts, ran) = (runtime.starts(), runtime.counters.invocations.load(Ordering::SeqCst));
    let result = invoke(&pool, "f", "4").await;
    assert!(
        matches!(
            result,
            Ok(InvokeResult::Error {
                kind: ErrorKind::Runtime,
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(runtime.starts(), starts, "not run again on a new instance");
    assert_eq!(runtime.counters.invocations.load(Ordering::SeqCst), ran + 1);
    assert_eq!(pool.idle_instances("f"), 0, "the crashed instance is not reused");
    assert!(answered(&invoke(&pool, "f", "5").await, "5"));
}

#[tokio::test(start_paused = true)]
async fn every_invocation_writes_start_end_and_report() {
    let runtime = FakeRuntime::new(Duration::from_millis(10));
    let sink = Arc::new(Lines::default());
    let pool = Pool::new(
        &service(vec![function("f", None)]),
        runtime.clone(),
        sink.clone(),
        PoolConfig::default(),
    );
    let response = pool.invoke("f", request("1")).await.unwrap();
    let lines = sink.0.lock().unwrap().clone();
    let id = &*response.request_id;
    assert_eq!(lines[0], format!("START RequestId: {id} Version: $LATEST"));
    assert_eq!(lines[1], format!("END RequestId: {id}"));
    assert!(lines[2].starts_with(&format!("REPORT RequestId: {id}")), "{lines:?}");
    assert!(
        lines[2].contains("Init Duration"),
        "a cold start reports its init: {lines:?}"
    );
}
