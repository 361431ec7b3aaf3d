//! The Redis key watcher: for a component linked from a `keyvalue-redis` capability with
//! `watch=SET@key,DEL@key`, the host subscribes to Redis keyspace notifications of those keys
//! and calls the component's exported `wasi:keyvalue/watcher@0.2.0-draft` — `on-set(bucket,
//! key, value)` with the value read after the event, `on-delete(bucket, key)` — as wasmCloud's
//! Redis provider does (the bucket is the database number, `"0"`). Redis must send keyspace
//! events (`notify-keyspace-events` with `K$g`, or `KA`): without them the watch is reported as
//! failing in the app's status. Each call takes one of the replica's permits, like a request;
//! a handler that traps or runs past its deadline fails that event only.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis::AsyncCommands;
use scheduler::provider::WatchOp;
use wasmtime::component::Resource;

use super::Bucket;
use crate::capabilities::followers::{Failures, Follow, Followed, Followers};
use crate::engine::{GuestContext, Prepared, WasmEngine};
use crate::logs::{Level, Stream};
use crate::plan::Watch;
use crate::replicas::ReplicaSet;

/// The interface a watched component exports.
const WATCHER_EXPORT: &str = "wasi:keyvalue/watcher@0.2.0-draft";
/// How long after a lost subscription (or one that could not start) it is tried again.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(2);

/// The watches this host keeps, each a task following its Redis.
pub struct Watchers {
    replicas: Arc<ReplicaSet>,
    followers: Followers<Watch>,
}

impl Followed for Watch {
    fn owner(&self) -> (String, String) {
        (self.app.clone(), self.component.clone())
    }
}

impl Watchers {
    pub fn new(replicas: Arc<ReplicaSet>) -> Arc<Watchers> {
        Arc::new(Watchers {
            replicas,
            followers: Followers::default(),
        })
    }

    /// `(app, component) → (capability, why)` of the watches that are not running now.
    pub fn failures(&self) -> Failures {
        self.followers.failures()
    }

    /// Keeps exactly the watches of `wanted`.
    pub fn sync(&self, wanted: Vec<Watch>) {
        self.followers
            .sync(wanted, |follow| run(follow, self.replicas.clone()));
    }
}

/// Follows a watch until it is no longer wanted: subscribes, serves events, and subscribes
/// again after [`RESUBSCRIBE_AFTER`] when Redis goes away.
async fn run(follow: Follow<Watch>, replicas: Arc<ReplicaSet>) {
    let mut stop = follow.stop.clone();
    loop {
        let watch = follow.what.clone();
        let outcome = tokio::select! {
            outcome = serve(&watch, &replicas, || follow.running()) => outcome,
            _ = stop.changed() => return,
        };
        let shown = scheduler::provider::redact_password(&watch.url);
        follow.failed(
            &watch.capability,
            format!("watching keys on redis {shown}: {outcome}"),
        );
        tokio::select! {
            _ = tokio::time::sleep(RESUBSCRIBE_AFTER) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Subscribes to the keys of `watch` and calls the component for each event; answers why it
/// stopped. `subscribed` is called once the subscription is in place.
async fn serve(watch: &Watch, replicas: &ReplicaSet, subscribed: impl FnOnce()) -> String {
    let client = match redis::Client::open(watch.url.as_str()) {
        Ok(c) => c,
        Err(e) => return format!("bad URL: {}", e.category()),
    };
    let db = client.get_connection_info().redis_settings().db();
    let mut reader = match client.get_multiplexed_async_connection().await {
        Ok(c) => c,
        Err(e) => return connection_failure(&e),
    };
    let events: Vec<String> = match redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query_async(&mut reader)
        .await
    {
        Ok(v) => v,
        Err(e) => return connection_failure(&e),
    };
    let flags = events.get(1).cloned().unwrap_or_default();
    let keyspace = flags.contains('K');
    let kinds = flags.contains('A') || (flags.contains('$') && flags.contains('g'));
    if !(keyspace && kinds) {
        return format!(
            "Redis sends no keyspace events for these keys (notify-keyspace-events is `{flags}`): set it to include K$g"
        );
    }
    let mut pubsub = match client.get_async_pubsub().await {
        Ok(p) => p,
        Err(e) => return connection_failure(&e),
    };
    let prefix = format!("__keyspace@{db}__:");
    for (_, key) in &watch.keys {
        if let Err(e) = pubsub.subscribe(format!("{prefix}{key}")).await {
            return connection_failure(&e);
        }
    }
    subscribed();
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let Some(key) = message.get_channel_name().strip_prefix(&prefix) else {
            continue;
        };
        let event: String = message.get_payload().unwrap_or_default();
        let op = match event.as_str() {
            "set" => WatchOp::Set,
            "del" => WatchOp::Delete,
            _ => continue,
        };
        if !watch.keys.iter().any(|(o, k)| *o == op && k == key) {
            continue;
        }
        let value = match op {
            WatchOp::Set => match reader.get::<_, Option<Vec<u8>>>(key).await {
                Ok(Some(v)) => Some(v),
                // Deleted again before it could be read: nothing to tell.
                Ok(None) => continue,
                Err(e) => return connection_failure(&e),
            },
            WatchOp::Delete => None,
        };
        deliver(watch, replicas, &db.to_string(), key, value).await;
    }
    "the subscription ended".to_string()
}

fn connection_failure(e: &redis::RedisError) -> String {
    if e.is_connection_refusal() {
        "connection refused".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else {
        e.category().to_string()
    }
}

/// Calls the component for one event under one of its replica's permits; a failure is logged
/// in the app's log with the key.
async fn deliver(
    watch: &Watch,
    replicas: &ReplicaSet,
    bucket: &str,
    key: &str,
    value: Option<Vec<u8>>,
) {
    let Some(replica) = replicas.get(&watch.app, &watch.component) else {
        return;
    };
    let Ok(_permit) = replica.permits().clone().acquire_owned().await else {
        return;
    };
    let context = replicas.context(&watch.app, &watch.component, &format!("watch:{key}"));
    let sink = context.sink.clone();
    if let Err(why) = call(
        replicas.engine(),
        &replica.prepared,
        context,
        bucket,
        key,
        value,
    )
    .await
    {
        sink.log(
            Level::Error,
            Stream::Logging,
            "flotilla:keyvalue",
            &format!("watcher of `{key}` failed: {why}"),
        );
    }
}

/// Instantiates the component and calls its watcher export for one event.
async fn call(
    engine: &WasmEngine,
    prepared: &Prepared,
    context: GuestContext,
    bucket: &str,
    key: &str,
    value: Option<Vec<u8>>,
) -> Result<(), String> {
    let mut store = engine.store(prepared, context);
    let instance = prepared
        .instance
        .instantiate_async(&mut store)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let interface = instance
        .get_export_index(&mut store, None, WATCHER_EXPORT)
        .ok_or_else(|| format!("the component does not export {WATCHER_EXPORT}"))?;
    let function = if value.is_some() {
        "on-set"
    } else {
        "on-delete"
    };
    let index = instance
        .get_export_index(&mut store, Some(&interface), function)
        .ok_or_else(|| format!("{WATCHER_EXPORT} has no {function}"))?;
    let handle: Resource<Bucket> = store
        .data_mut()
        .table
        .push(Bucket {
            identifier: bucket.to_string(),
        })
        .map_err(|e| e.to_string())?;
    let outcome = match value {
        Some(value) => {
            let f = instance
                .get_typed_func::<(Resource<Bucket>, String, Vec<u8>), ()>(&mut store, &index)
                .map_err(|e| format!("{e:#}"))?;
            f.call_async(&mut store, (handle, key.to_string(), value))
                .await
        }
        None => {
            let f = instance
                .get_typed_func::<(Resource<Bucket>, String), ()>(&mut store, &index)
                .map_err(|e| format!("{e:#}"))?;
            f.call_async(&mut store, (handle, key.to_string())).await
        }
    };
    outcome.map_err(|e| match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => "the component exceeded its CPU deadline".to_string(),
        Some(trap) => format!("the component trapped: {trap}"),
        None => format!("{e:#}"),
    })
}
