"""wasmCloud's keyvalue-messaging example (examples/rust/components/keyvalue-messaging), in Python.

A message on the handler link's subscription (`nats.atomic.delta`) carries a counter delta (its
body as a number; 42 otherwise). The component reads its runtime config (`link_name1`, the
key-value link to use, required; `link_name2`, a second one, optional; `pub_subject`, default
`nats.demo`), selects the link with `wasmcloud:bus/lattice.set-link-name`, and then, as the
original: sets `local_key` to a number from the clock and publishes it; increments `counter` by
the delta and publishes the new value; copies `local_key` into the second bucket, if any, and
publishes it from there; publishes the bucket's keys, comma-separated; deletes `local_key`.
Built with componentize-py 0.25.1 against wit/world.wit (README.md next to this file).
"""

import time

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import atomics, consumer, lattice, runtime, store
from wit_world.imports.logging import Level, log
from wit_world.imports.types import BrokerMessage

MAGIC_NUMBER = 42
DEFAULT_PUB_SUBJECT = "nats.demo"
CONTEXT = "kv-demo"


def config(key):
    try:
        return runtime.get(key)
    except Err as e:
        raise Err(f"Failed to get {key}: {e.value}")


def select(link_name):
    """Later key-value calls go through the link named `link_name`."""
    lattice.set_link_name(
        link_name,
        [
            lattice.CallTargetInterface("wasi", "keyvalue", "store"),
            lattice.CallTargetInterface("wasi", "keyvalue", "atomics"),
        ],
    )
    log(Level.INFO, CONTEXT, f"Accessing the NATS Kv store identified by '{link_name}'")


def publish(subject, body):
    try:
        consumer.publish(BrokerMessage(subject, body, None))
    except Err:
        log(Level.ERROR, CONTEXT, "Failed to publish message")
        raise Err("Failed to publish message")


def kv(action, *args):
    try:
        return action(*args)
    except Err as e:
        raise Err(f"key-value: {e.value}")


class Handler(exports.Handler):
    def handle_message(self, msg: BrokerMessage) -> None:
        link_name1 = config("link_name1")
        if link_name1 is None:
            raise Err("First bucket id not found")
        link_name2 = config("link_name2")
        pub_subject = config("pub_subject") or DEFAULT_PUB_SUBJECT
        try:
            delta = int(msg.body.decode())
        except ValueError:
            delta = MAGIC_NUMBER
        log(Level.INFO, CONTEXT, f"Counter delta number: '{delta}'")

        select(link_name1)
        first = kv(store.open, link_name1)
        kv(first.set, "local_key", str(int(time.time()) % MAGIC_NUMBER).encode())
        local = kv(first.get, "local_key")
        if local is not None:
            publish(pub_subject, local)
        publish(pub_subject, str(kv(atomics.increment, first, "counter", delta)).encode())

        if link_name2 is not None:
            select(link_name2)
            second = kv(store.open, link_name2)
            local = kv(first.get, "local_key")
            if local is not None:
                kv(second.set, "imported_key", local)
                imported = kv(second.get, "imported_key")
                if imported is not None:
                    publish(pub_subject, imported)
            select(link_name1)

        keys = kv(first.list_keys, 0).keys
        publish(pub_subject, ", ".join(keys).encode())
        kv(first.delete, "local_key")
