//! Messages that invoke components: for every subscription of a handler link to a component
//! this host runs, the host queue-subscribes on NATS (the hosts running the component share
//! the queue group, so a message is handled once in the cluster) and calls the component's
//! exported `wasmcloud:messaging/handler@0.2.0.handle-message` for each message, on a fresh
//! instance under one of the replica's permits: a flood waits for permits instead of
//! exhausting memory. A handler's error, trap or exhausted deadline fails that message only
//! (logged in the app's log with the subject); the subscription goes on. When the component
//! moves away (a drain included), the subscription is drained: messages NATS already handed
//! to this host are handled before it lets go.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;

use crate::capabilities::followers::{Failures, Follow, Followed, Followers};

use crate::capabilities::bindings::wasmcloud::messaging::types::BrokerMessage;
use crate::capabilities::Backends;
use crate::engine::{GuestContext, Prepared, WasmEngine};
use crate::logs::{Level, Stream};
use crate::plan::Inbound;
use crate::replicas::{Replica, ReplicaSet};

/// The interface a handler component exports.
const HANDLER_EXPORT: &str = "wasmcloud:messaging/handler@0.2.0";
/// How long after a subscription could not start it is tried again.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(2);
/// Longest wait for a replica of the component to be running here.
const REPLICA_POLL: Duration = Duration::from_millis(200);

/// The subscriptions this host keeps, each a task.
pub struct Subscriptions {
    replicas: Arc<ReplicaSet>,
    followers: Followers<Inbound>,
}

impl Followed for Inbound {
    fn owner(&self) -> (String, String) {
        (self.app.clone(), self.component.clone())
    }
}

impl Subscriptions {
    pub fn new(replicas: Arc<ReplicaSet>) -> Arc<Subscriptions> {
        Arc::new(Subscriptions {
            replicas,
            followers: Followers::default(),
        })
    }

    /// Why subscriptions are not running now.
    pub fn failures(&self) -> Failures {
        self.followers.failures()
    }

    /// Keeps exactly the subscriptions of `wanted`; the others are drained.
    pub fn sync(&self, wanted: Vec<Inbound>) {
        self.followers
            .sync(wanted, |follow| run(follow, self.replicas.clone()));
    }
}

/// How a subscription ended.
enum Ended {
    /// Drained after being told to stop.
    Stopped,
    Failed(String),
}

/// Follows a subscription until it is no longer wanted (then drains it), subscribing again
/// after [`RESUBSCRIBE_AFTER`] when it could not start.
async fn run(follow: Follow<Inbound>, replicas: Arc<ReplicaSet>) {
    let mut stop = follow.stop.clone();
    let inbound = follow.what.clone();
    loop {
        if *stop.borrow() {
            return;
        }
        match serve(&inbound, &replicas, &mut stop, || follow.running()).await {
            Ended::Stopped => return,
            Ended::Failed(why) => follow.failed(
                &inbound.capability,
                format!(
                    "subscribing to {} on {}: {why}",
                    inbound.subject, inbound.cluster_uris
                ),
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(RESUBSCRIBE_AFTER) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn serve(
    inbound: &Inbound,
    replicas: &Arc<ReplicaSet>,
    stop: &mut watch::Receiver<bool>,
    subscribed: impl FnOnce(),
) -> Ended {
    let backends: &Arc<Backends> = replicas.backends();
    let client = match backends.nats_client(&inbound.cluster_uris).await {
        Ok(c) => c,
        Err(e) => return Ended::Failed(e.to_string()),
    };
    let mut subscriber = match client
        .queue_subscribe(inbound.subject.clone(), inbound.queue.clone())
        .await
    {
        Ok(s) => s,
        Err(e) => return Ended::Failed(e.to_string()),
    };
    subscribed();
    // The replica that last handled a message: a drain that starts after the reconciler
    // stopped the replica here (it stops replicas before subscriptions) handles what NATS
    // already handed over on it instead of dropping those messages.
    let mut last: Option<Arc<Replica>> = None;
    loop {
        // A permit first: at most `replicas` messages of this component run here at once, and
        // the next message is taken from NATS only when one is free.
        let (replica, permit) = loop {
            if let Some(replica) = replicas.get(&inbound.app, &inbound.component) {
                last = Some(replica.clone());
                tokio::select! {
                    permit = replica.permits().acquire_owned() => match permit {
                        Ok(p) => break (replica, p),
                        Err(_) => continue,
                    },
                    _ = stop.changed() => return drain(inbound, replicas, subscriber, last).await,
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(REPLICA_POLL) => {}
                _ = stop.changed() => return drain(inbound, replicas, subscriber, last).await,
            }
        };
        let message = tokio::select! {
            m = subscriber.next() => m,
            _ = stop.changed() => {
                drop(permit);
                return drain(inbound, replicas, subscriber, last).await;
            }
        };
        let Some(message) = message else {
            return Ended::Failed("the subscription ended".to_string());
        };
        let (inbound, replicas) = (inbound.clone(), replicas.clone());
        tokio::spawn(async move {
            handle(&inbound, &replicas, &replica, message).await;
            drop(permit);
        });
    }
}

/// Stops taking new messages and handles those NATS already handed to this host, on the
/// replica running here or, when it has just been stopped, on `last` (its code is still
/// loaded while this holds it).
async fn drain(
    inbound: &Inbound,
    replicas: &Arc<ReplicaSet>,
    mut subscriber: async_nats::Subscriber,
    last: Option<Arc<Replica>>,
) -> Ended {
    let _ = subscriber.drain().await;
    while let Some(message) = subscriber.next().await {
        let Some(replica) = replicas
            .get(&inbound.app, &inbound.component)
            .or_else(|| last.clone())
        else {
            break;
        };
        let Ok(permit) = replica.permits().acquire_owned().await else {
            break;
        };
        handle(inbound, replicas, &replica, message).await;
        drop(permit);
    }
    Ended::Stopped
}

/// Calls `replica`'s component for one message; a failure is logged with the subject.
async fn handle(
    inbound: &Inbound,
    replicas: &ReplicaSet,
    replica: &Replica,
    message: async_nats::Message,
) {
    let subject = message.subject.to_string();
    let context = replicas.context(
        &inbound.app,
        &inbound.component,
        &format!("message:{subject}"),
    );
    let sink = context.sink.clone();
    let msg = BrokerMessage {
        subject: subject.clone(),
        body: message.payload.to_vec(),
        reply_to: message.reply.map(|r| r.to_string()),
    };
    if let Err(why) = call(replicas.engine(), &replica.prepared, context, msg).await {
        sink.log(
            Level::Error,
            Stream::Logging,
            "flotilla:messaging",
            &format!("handling a message on {subject} failed: {why}"),
        );
    }
}

/// Instantiates the component and calls its `handle-message` export.
async fn call(
    engine: &WasmEngine,
    prepared: &Prepared,
    context: GuestContext,
    msg: BrokerMessage,
) -> Result<(), String> {
    let mut store = engine.store(prepared, context);
    let instance = prepared
        .instance
        .instantiate_async(&mut store)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let interface = instance
        .get_export_index(&mut store, None, HANDLER_EXPORT)
        .ok_or_else(|| format!("the component does not export {HANDLER_EXPORT}"))?;
    let index = instance
        .get_export_index(&mut store, Some(&interface), "handle-message")
        .ok_or_else(|| format!("{HANDLER_EXPORT} has no handle-message"))?;
    let function = instance
        .get_typed_func::<(BrokerMessage,), (Result<(), String>,)>(&mut store, &index)
        .map_err(|e| format!("{e:#}"))?;
    match function.call_async(&mut store, (msg,)).await {
        Ok((Ok(()),)) => Ok(()),
        Ok((Err(why),)) => Err(format!("the handler answered an error: {why}")),
        Err(e) => Err(match e.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => {
                "the component exceeded its CPU deadline".to_string()
            }
            Some(trap) => format!("the component trapped: {trap}"),
            None => format!("{e:#}"),
        }),
    }
}
