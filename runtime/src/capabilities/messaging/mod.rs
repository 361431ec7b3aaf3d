//! `wasmcloud:messaging@0.2.0` in the host: `consumer.publish` and `consumer.request` through the
//! component's consumer link to a `messaging-nats` capability (its `cluster_uris`, default
//! `127.0.0.1:4222`), and, in [`inbound`], the handler links' subscriptions that call a
//! component's exported `handler.handle-message` for each message.

pub mod inbound;

use std::sync::Arc;
use std::time::Duration;

use scheduler::Provider;

use super::bindings::wasmcloud::messaging::{consumer, types};
use super::links::LinkGrant;
use crate::engine::GuestState;

/// The consumer interface, as links name it.
pub const CONSUMER: &str = "wasmcloud:messaging/consumer";
/// The servers of a messaging link that names none (wasmCloud's default, on loopback).
pub const DEFAULT_CLUSTER_URIS: &str = "nats://127.0.0.1:4222";
/// Where a component's log lines about its messaging links go.
const LOG_CONTEXT: &str = "flotilla:messaging";

/// `cluster_uris` of a messaging link as the NATS client takes them (`HOST:PORT` or `nats://…`,
/// comma-separated).
pub fn cluster_uris(config: &std::collections::BTreeMap<String, String>) -> String {
    config
        .get(scheduler::provider::CLUSTER_URIS)
        .map(|uris| {
            uris.split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(|u| {
                    if u.contains("://") {
                        u.to_string()
                    } else {
                        format!("nats://{u}")
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_CLUSTER_URIS.to_string())
}

impl GuestState {
    /// The NATS connection of the component's current consumer link.
    async fn messaging(&mut self) -> Result<(Arc<LinkGrant>, async_nats::Client), String> {
        let link = self.link_for(CONSUMER)?;
        if link.provider != Provider::MessagingNats {
            return Err(format!(
                "link '{}' for {CONSUMER} leads to '{}', which is not a messaging capability",
                link.name, link.target
            ));
        }
        let uris = cluster_uris(&link.config);
        match self.backends.nats_client(&uris).await {
            Ok(client) => Ok((link, client)),
            Err(e) => {
                let why = e.to_string();
                self.link_failed(&link, LOG_CONTEXT, &why);
                Err(why)
            }
        }
    }

    /// Records how a call on `link` went and hands the outcome to the guest.
    fn messaging_outcome<T>(
        &self,
        link: &LinkGrant,
        outcome: Result<T, String>,
    ) -> Result<T, String> {
        match &outcome {
            Ok(_) => self.link_succeeded(link),
            Err(why) => self.link_failed(link, LOG_CONTEXT, why),
        }
        outcome
    }
}

impl types::Host for GuestState {}

impl consumer::Host for GuestState {
    async fn request(
        &mut self,
        subject: String,
        body: Vec<u8>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<types::BrokerMessage, String>> {
        let (link, client) = match self.messaging().await {
            Ok(pair) => pair,
            Err(why) => return Ok(Err(why)),
        };
        let within = Duration::from_millis(u64::from(timeout_ms));
        let answer = match tokio::time::timeout(
            within,
            client.request(subject.clone(), body.into()),
        )
        .await
        {
            Err(_) => Err(format!("no reply on {subject} within {timeout_ms} ms")),
            Ok(Err(e)) => Err(format!("request on {subject}: {e}")),
            Ok(Ok(reply)) => Ok(types::BrokerMessage {
                subject: reply.subject.to_string(),
                body: reply.payload.to_vec(),
                reply_to: reply.reply.map(|r| r.to_string()),
            }),
        };
        Ok(self.messaging_outcome(&link, answer))
    }

    async fn publish(&mut self, msg: types::BrokerMessage) -> wasmtime::Result<Result<(), String>> {
        let (link, client) = match self.messaging().await {
            Ok(pair) => pair,
            Err(why) => return Ok(Err(why)),
        };
        let subject = msg.subject.clone();
        let sent = match msg.reply_to {
            Some(reply) => {
                client
                    .publish_with_reply(msg.subject, reply, msg.body.into())
                    .await
            }
            None => client.publish(msg.subject, msg.body.into()).await,
        };
        let sent = sent.map_err(|e| format!("publish on {subject}: {e}"));
        Ok(self.messaging_outcome(&link, sent))
    }
}
