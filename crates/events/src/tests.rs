//! The queue against a fake invoker (a real store in a temporary folder): retries, the
//! destination record, the bound, and events kept across a restart.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use sylph_invoker::{BoxFuture, ErrorKind, InvokeError, InvokeRequest, InvokeResponse, InvokeResult, Invoker};
use sylph_model::{AsyncConfig, Destination, Function, Runtime};

use crate::queue::{AcceptError, AsyncQueue, QueueSettings};
use crate::store::{EventStore, Source};
use crate::{Functions, Lookup, Target};

/// `worker` fails its first `failures` runs; `sink` records what it gets.
struct Fake {
    functions: Vec<Function>,
    failures: u32,
    worker_runs: AtomicU32,
    received: Mutex<Vec<(String, String)>>,
}

fn function(key: &str, on_async: AsyncConfig) -> Function {
    Function {
        key: key.to_owned(),
        name: format!("svc-dev-{key}"),
        handler: "h.f".to_owned(),
        runtime: Runtime::Node("nodejs20.x".to_owned()),
        memory_mb: 128,
        ephemeral_mb: 512,
        timeout: Duration::from_secs(6),
        environment: Default::default(),
        reserved_concurrency: None,
        events: Vec::new(),
        artifact: None,
        platform_logs: Default::default(),
        outbound_hosts: Vec::new(),
        role: None,
        on_async,
        layers: Vec::new(),
    }
}

impl Invoker for Fake {
    fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }

    fn invoke<'a>(
        &'a self,
        function: &'a str,
        request: InvokeRequest,
    ) -> BoxFuture<'a, Result<InvokeResponse, InvokeError>> {
        Box::pin(async move {
            let payload = String::from_utf8_lossy(&request.payload).into_owned();
            self.received.lock().unwrap().push((function.to_owned(), payload));
            let result =
                if function == "svc-dev-worker" && self.worker_runs.fetch_add(1, Ordering::SeqCst) < self.failures {
                    InvokeResult::Error {
                        kind: ErrorKind::Function,
                        error_type: "Error".into(),
                        body: Bytes::from_static(br#"{"errorType":"Error","errorMessage":"boom"}"#),
                    }
                } else {
                    InvokeResult::Success(Bytes::from_static(br#""done""#))
                };
            Ok(InvokeResponse {
                request_id: "req-1".into(),
                result,
                logs: None,
            })
        })
    }
}

struct One(Arc<Fake>);

impl Functions for One {
    fn find(&self, _target: &Target) -> Lookup {
        Lookup::Found(self.0.clone())
    }
}

fn fake(failures: u32, worker: AsyncConfig) -> Arc<Fake> {
    Arc::new(Fake {
        functions: vec![function("worker", worker), function("sink", AsyncConfig::default())],
        failures,
        worker_runs: AtomicU32::new(0),
        received: Mutex::new(Vec::new()),
    })
}

fn queue(dir: &std::path::Path, fake: &Arc<Fake>, max_pending: usize) -> Arc<AsyncQueue> {
    let store = Arc::new(EventStore::open(&dir.join("events.redb")).unwrap());
    AsyncQueue::new(
        store,
        Arc::new(One(fake.clone())),
        QueueSettings {
            max_pending,
            retry_delay: Duration::from_millis(5),
            max_in_flight: 4,
            region: "us-east-1".into(),
        },
    )
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sylph-events-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn target(function: &str) -> Target {
    Target {
        service: "svc".into(),
        stage: "dev".into(),
        function: function.into(),
        version: None,
    }
}

async fn until(what: &str, check: impl Fn() -> bool) {
    for _ in 0..2000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{what} did not happen");
}

#[tokio::test]
async fn a_failing_event_is_retried_twice_then_its_record_goes_to_on_failure() {
    let dir = temp("retries");
    let on_failure = AsyncConfig {
        on_failure: Some(Destination::Function("svc-dev-sink".into())),
        ..AsyncConfig::default()
    };
    let fake = fake(u32::MAX, on_failure);
    let q = queue(&dir, &fake, 100);
    q.accept(target("svc-dev-worker"), r#"{"order":7}"#.into(), Source::Invoke)
        .await
        .unwrap();
    until("the failure record", || {
        fake.received.lock().unwrap().iter().any(|(f, _)| f == "svc-dev-sink")
    })
    .await;
    let received = fake.received.lock().unwrap().clone();
    let worker_runs = received.iter().filter(|(f, _)| f == "svc-dev-worker").count();
    assert_eq!(worker_runs, 3, "one run and two retries: {received:?}");
    let record: serde_json::Value = serde_json::from_str(&received.last().unwrap().1).unwrap();
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(record["requestPayload"]["order"], 7);
    assert_eq!(record["responsePayload"]["errorMessage"], "boom");
    until("the queue to empty", || q.pending() == 0).await;
    assert!(q.store().pending().unwrap().is_empty());
    let stats = q.stats();
    let worker = stats.iter().find(|((f, _), _)| f == "svc-dev-worker").unwrap().1;
    assert_eq!((worker.retried, worker.failed, worker.dead_lettered), (2, 1, 1));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn maximum_retry_attempts_zero_runs_once_and_success_goes_to_on_success() {
    let dir = temp("no-retries");
    let config = AsyncConfig {
        maximum_retry_attempts: 0,
        on_success: Some(Destination::Function("svc-dev-sink".into())),
        ..AsyncConfig::default()
    };
    // It fails once: with no retries that is the end (and no success record).
    let fake = fake(1, config);
    let q = queue(&dir, &fake, 100);
    q.accept(target("svc-dev-worker"), "1".into(), Source::Invoke)
        .await
        .unwrap();
    until("the queue to empty", || q.pending() == 0).await;
    q.accept(target("svc-dev-worker"), "2".into(), Source::Invoke)
        .await
        .unwrap();
    until("the success record", || {
        fake.received.lock().unwrap().iter().any(|(f, _)| f == "svc-dev-sink")
    })
    .await;
    let received = fake.received.lock().unwrap().clone();
    assert_eq!(
        received.iter().filter(|(f, _)| f == "svc-dev-worker").count(),
        2,
        "{received:?}"
    );
    let record: serde_json::Value = serde_json::from_str(&received.last().unwrap().1).unwrap();
    assert_eq!(record["requestContext"]["condition"], "Success");
    assert_eq!(record["requestPayload"], 2);
    assert_eq!(record["responsePayload"], "done");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn past_the_bound_events_are_refused_and_kept_ones_survive_a_restart() {
    let dir = temp("bound");
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    // No function answers yet: the lookup says "later", so events stay queued.
    struct Nowhere;
    impl Functions for Nowhere {
        fn find(&self, _: &Target) -> Lookup {
            Lookup::Later
        }
    }
    // The first "process": its runtime is dropped at the end, with every task it ran.
    runtime().block_on(async {
        let store = Arc::new(EventStore::open(&dir.join("events.redb")).unwrap());
        let settings = QueueSettings {
            max_pending: 3,
            retry_delay: Duration::from_millis(5),
            max_in_flight: 4,
            region: "us-east-1".into(),
        };
        let q = AsyncQueue::new(store, Arc::new(Nowhere), settings);
        for i in 0..3 {
            q.accept(target("svc-dev-sink"), i.to_string(), Source::Invoke)
                .await
                .unwrap();
        }
        let refused = q.accept(target("svc-dev-sink"), "3".into(), Source::Invoke).await;
        assert!(matches!(refused, Err(AcceptError::Full(3))), "{refused:?}");
    });
    // A new queue on the same store (a restart) runs the three kept events, and only those.
    runtime().block_on(async {
        let fake = fake(0, AsyncConfig::default());
        let q = queue(&dir, &fake, 3);
        assert_eq!(q.resume().unwrap(), 3);
        until("the kept events to run", || fake.received.lock().unwrap().len() == 3).await;
        let mut payloads: Vec<String> = fake.received.lock().unwrap().iter().map(|(_, p)| p.clone()).collect();
        payloads.sort();
        assert_eq!(payloads, ["0", "1", "2"]);
        until("the queue to empty", || q.pending() == 0).await;
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn ticks_missed_while_down_fire_once_on_return() {
    use crate::schedules::{schedule_key, Scheduler};
    use crate::store::ScheduleState;
    use sylph_model::{Event, ScheduleEvent, ScheduleInput, Service};

    let dir = temp("missed");
    let mut worker = function("worker", AsyncConfig::default());
    worker.events.push(Event::Schedule(ScheduleEvent {
        expression: "rate(1 minute)".into(),
        name: "svc-dev-worker-schedule-1".into(),
        enabled: true,
        scheduler: false,
        timezone: None,
        input: ScheduleInput::Event,
    }));
    let fake = Arc::new(Fake {
        functions: vec![worker.clone()],
        failures: 0,
        worker_runs: AtomicU32::new(0),
        received: Mutex::new(Vec::new()),
    });
    let q = queue(&dir, &fake, 100);
    // Down for the last five minutes: five ticks were missed.
    let now = sylph_telemetry::unix_ms() as i64;
    let key = schedule_key("svc", "dev", "svc-dev-worker-schedule-1");
    let before = ScheduleState {
        began_ms: now - 600_000,
        last_tick_ms: Some(now - 300_000),
    };
    q.store().tick(&key, before, None).unwrap();
    let service = Service {
        name: "svc".into(),
        stage: "dev".into(),
        region: "us-east-1".into(),
        root: dir.clone(),
        functions: vec![worker],
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
    };
    let scheduler = Scheduler::new(q.clone());
    let upcoming = scheduler.set_service(&service, None).unwrap();
    assert!(upcoming[0].next.starts_with("now (a tick was missed"), "{upcoming:?}");
    tokio::spawn(scheduler.clone().run());
    until("the missed tick", || !fake.received.lock().unwrap().is_empty()).await;
    until("the queue to empty", || q.pending() == 0).await;
    // The tick recorded is the first one missed; the next is in the future, a whole period
    // after a tick of the rate's own grid.
    let state = q.store().schedule_state(&key).unwrap().unwrap();
    let fired = state.last_tick_ms.unwrap();
    assert_eq!(fired, now - 240_000);
    let event: serde_json::Value = serde_json::from_str(&fake.received.lock().unwrap()[0].1).unwrap();
    assert_eq!(event["time"], sylph_schedule::utc_seconds(fired));
    // Once: the other four missed ticks were not fired (one more would be a new tick, over a
    // minute away).
    assert_eq!(fake.received.lock().unwrap().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
