//! Wiring the event sources (`sylph-events`) into `sylph dev` and `sylph server`: the flags
//! they share, the gateway's `Event` invocations into the durable queue, and the queue's
//! metrics onto the metrics page.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use sylph_events::queue::{AcceptError, AsyncQueue, QueueSettings};
use sylph_events::store::{EventStore, Source};
use sylph_events::Target;

/// How asynchronous invocations are queued and retried.
#[derive(Args, Debug, Clone)]
pub struct EventArgs {
    /// Seconds before the first retry of an asynchronous invocation that failed; the second
    /// waits twice as long (Lambda: one minute, then two).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub async_retry_delay: u64,
    /// Asynchronous events (Event invocations, schedule ticks) kept and not yet finished, at
    /// most; past it new ones are refused with TooManyRequestsException.
    #[arg(long, default_value_t = 10_000)]
    pub max_async_events: usize,
}

/// Open the event store at `path` and a queue on it that reaches functions through `functions`.
pub fn open_queue(
    path: &std::path::Path,
    functions: Arc<dyn sylph_events::Functions>,
    args: &EventArgs,
    region: &str,
    concurrency: usize,
) -> anyhow::Result<Arc<AsyncQueue>> {
    let store = EventStore::open(path).with_context(|| {
        format!(
            "cannot open the event store {} (is another sylph using it?)",
            path.display()
        )
    })?;
    Ok(AsyncQueue::new(
        Arc::new(store),
        functions,
        QueueSettings {
            max_pending: args.max_async_events.max(1),
            retry_delay: Duration::from_secs(args.async_retry_delay),
            max_in_flight: concurrency.max(1),
            region: region.to_owned(),
        },
    ))
}

/// A service's `Event` invocations, kept in the durable queue before the caller gets its 202.
pub struct GatewayEvents {
    pub queue: Arc<AsyncQueue>,
    pub service: String,
    pub stage: String,
    /// The version whose gateway accepted them (`sylph server`).
    pub version: Option<u32>,
}

impl sylph_gateway::EventQueue for GatewayEvents {
    fn accept(
        &self,
        function: String,
        payload: bytes::Bytes,
    ) -> sylph_invoker::BoxFuture<'static, Result<(), sylph_gateway::QueueError>> {
        let queue = self.queue.clone();
        let target = Target {
            service: self.service.clone(),
            stage: self.stage.clone(),
            function,
            version: self.version,
        };
        Box::pin(async move {
            let payload = String::from_utf8_lossy(&payload).into_owned();
            queue
                .accept(target, payload, Source::Invoke)
                .await
                .map_err(|e| match e {
                    AcceptError::Full(_) => sylph_gateway::QueueError::Full,
                    AcceptError::Store(e) => sylph_gateway::QueueError::Failed(e.to_string()),
                })
        })
    }
}

/// The event sources' metrics (asynchronous invocation, queue pollers), for every function.
pub struct SourceMetrics {
    pub queue: Arc<AsyncQueue>,
    pub sqs: Arc<sylph_events::sqs::SqsSources>,
    pub streams: Arc<sylph_events::streams::StreamSources>,
}

impl SourceMetrics {
    /// The Prometheus text of the functions `show` accepts.
    pub fn render_for(&self, show: impl Fn(&str) -> bool) -> String {
        let mut out = self.queue.render_metrics(&show);
        out.push_str(&self.sqs.render_metrics(&show));
        out.push_str(&self.streams.render_metrics(&show));
        out
    }
}

impl sylph_telemetry::metrics::MetricsSource for SourceMetrics {
    fn render(&self) -> String {
        self.render_for(|_| true)
    }
}

/// Create (or bring up to date) the queues `service` declares; dead-letter queues first, since
/// a queue's RedrivePolicy must name an existing one. Returns a line per queue.
pub async fn provision_queues(
    queues: &sylph_queues::Queues,
    service: &sylph_model::Service,
) -> anyhow::Result<Vec<String>> {
    let mut ordered: Vec<&sylph_model::QueueResource> = service.queues.iter().collect();
    ordered.sort_by_key(|q| q.attributes.contains_key("RedrivePolicy"));
    let mut lines = Vec::new();
    for q in ordered {
        let what = if queues.exists(&q.name) {
            let mut attributes = q.attributes.clone();
            attributes.remove("FifoQueue");
            queues
                .set_attributes(&q.name, attributes)
                .await
                .map(|()| "kept (existing messages)")
        } else {
            queues
                .create_queue(&q.name, q.attributes.clone(), q.tags.clone())
                .await
                .map(|()| "created")
        }
        .map_err(|e| {
            anyhow::anyhow!(
                "resources.Resources.{}: cannot create queue {}: {}",
                q.logical_id,
                q.name,
                e.message
            )
        })?;
        lines.push(format!("queue {} {what}", q.name));
    }
    Ok(lines)
}

/// Print each schedule and when it next fires.
pub fn print_schedules(upcoming: &[sylph_events::schedules::Upcoming]) {
    if upcoming.is_empty() {
        return;
    }
    let width = upcoming.iter().map(|u| u.expression.len()).max().unwrap_or(0);
    for u in upcoming {
        println!("  schedule {:<width$}  {}  next: {}", u.expression, u.function, u.next);
    }
}
