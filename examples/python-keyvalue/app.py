"""A Python wasi:http component that keeps its state in a linked key-value store.

Every request is one command, named by the path (values and link names in the query):

    /incr/KEY[?LINK]     increments KEY (link LINK, default `default`): `Counter KEY: N`
    /set/KEY?VALUE       sets KEY                      /get/KEY      its value (404: none)
    /del/KEY             deletes KEY                   /exists/KEY   `true` or `false`
    /fill/N              sets N keys `fill-00000`… in batches of 500 (batch.set-many)
    /count               walks list-keys with its cursor: `K keys in P pages`
    /batch               set-many, get-many and delete-many of three keys
    /big/N               sets `big` to N bytes: `ok` or the store's error

A store error answers 500 with the error. Built with componentize-py 0.25.1 against the WIT in
wit/ and the packages Flotilla vendors (README.md next to this file).
"""

from urllib.parse import unquote

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import atomics, batch, lattice, store
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)


def use_link(name):
    lattice.set_link_name(
        name,
        [
            lattice.CallTargetInterface("wasi", "keyvalue", "store"),
            lattice.CallTargetInterface("wasi", "keyvalue", "atomics"),
            lattice.CallTargetInterface("wasi", "keyvalue", "batch"),
        ],
    )


def command(path, query):
    parts = path.strip("/").split("/", 1)
    verb, key = parts[0], unquote(parts[1]) if len(parts) > 1 else ""
    use_link(query or "default") if verb == "incr" else use_link("default")
    bucket = store.open("default")
    if verb == "incr":
        return 200, f"Counter {key}: {atomics.increment(bucket, key, 1)}"
    if verb == "set":
        bucket.set(key, unquote(query).encode())
        return 200, "ok"
    if verb == "get":
        value = bucket.get(key)
        return (404, "none") if value is None else (200, value.decode())
    if verb == "del":
        bucket.delete(key)
        return 200, "ok"
    if verb == "exists":
        return 200, "true" if bucket.exists(key) else "false"
    if verb == "fill":
        n = int(key)
        for start in range(0, n, 500):
            pairs = [(f"fill-{i:05}", b"x") for i in range(start, min(n, start + 500))]
            batch.set_many(bucket, pairs)
        return 200, f"filled {n}"
    if verb == "count":
        keys, pages, cursor = set(), 0, None
        while True:
            page = bucket.list_keys(cursor)
            pages += 1
            keys.update(k for k in page.keys if k.startswith("fill-"))
            cursor = page.cursor
            if cursor is None:
                break
        return 200, f"{len(keys)} keys in {pages} pages"
    if verb == "batch":
        batch.set_many(bucket, [("b1", b"one"), ("b2", b"two"), ("b3", b"three")])
        got = batch.get_many(bucket, ["b1", "missing", "b3"])
        batch.delete_many(bucket, ["b1", "b2", "b3"])
        after = batch.get_many(bucket, ["b1", "b2"])
        shown = [None if g is None else f"{g[0]}={g[1].decode()}" for g in got]
        return 200, f"{shown} then {after}"
    if verb == "big":
        bucket.set("big", b"x" * int(key))
        return 200, "ok"
    return 404, f"no command {verb}"


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        path, _, query = (request.path_with_query() or "/").partition("?")
        try:
            status, text = command(path, query)
        except Err as e:
            status, text = 500, f"store error: {e.value}"
        response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
        response.set_status_code(status)
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        with body.write() as stream:
            stream.blocking_write_and_flush((text + "\n").encode())
        OutgoingBody.finish(body, None)
