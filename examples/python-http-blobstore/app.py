"""wasmCloud's http-blobstore example (examples/rust/components/http-blobstore), in Python.

Every request runs the example's tour of wasi:blobstore: creates the containers named by the
runtime config `container_names` (comma-separated; default `ying,yang`) and reads their info;
writes `earth`, `air`, `fire` and `water` to the first, checks each exists and reads its info;
reads them back whole and `water`'s bytes 0..=4; moves `fire` and copies `water` to the second;
lists both; deletes `earth` and `air` at once and `water` from the second; clears the first.
It answers a JSON object with, per operation, whether it succeeded, a message and a timestamp,
as the Rust original does. Built with componentize-py 0.25.1 against wit/world.wit.
"""

import json
import time

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import blobstore, runtime
from wit_world.imports import wasi_blobstore_types as blob_types
from wit_world.imports.wasi_http_types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)

DEFAULT_CONTAINERS = ["ying", "yang"]
TEST_BLOBS = ["earth", "air", "fire", "water"]
# blocking-write-and-flush takes at most this many bytes at once (wasi:io).
WRITE_MAX = 4096
# The largest end offset: "to the end of the object".
TO_THE_END = 2**64 - 1


def format_timestamp(seconds):
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


class Demo:
    def __init__(self, container_names):
        self.container_ops = {}
        self.blob_ops = {}
        self.container_names = container_names

    def record(self, op, success, message):
        ops = self.blob_ops if ("blob" in op or "object" in op) else self.container_ops
        ops[op] = {
            "success": success,
            "message": message,
            "timestamp": format_timestamp(int(time.time())),
        }

    def to_json(self):
        return json.dumps(
            {
                "container_ops": self.container_ops,
                "blob_ops": self.blob_ops,
                "container_names": self.container_names,
            },
            indent=2,
        )


def container_names():
    try:
        names = runtime.get("container_names")
    except Err:
        names = None
    return names.split(",") if names else list(DEFAULT_CONTAINERS)


def write_blob(container, name, data):
    c = blobstore.get_container(container)
    value = blob_types.OutgoingValue.new_outgoing_value()
    with value.outgoing_value_write_body() as stream:
        for at in range(0, len(data), WRITE_MAX):
            stream.blocking_write_and_flush(data[at : at + WRITE_MAX])
    c.write_data(name, value)
    blob_types.OutgoingValue.finish(value)


def read_blob(container, name, start=0, end=TO_THE_END):
    value = blobstore.get_container(container).get_data(name, start, end)
    return blob_types.IncomingValue.incoming_value_consume_sync(value)


def demonstrate_container_ops(demo):
    for container in demo.container_names:
        try:
            c = blobstore.create_container(container)
            demo.record("create_container", True, f"Created {container}")
            try:
                info = c.info()
                demo.record(
                    "container_info",
                    True,
                    f"Container {info.name} created at {format_timestamp(info.created_at)}",
                )
            except Err as e:
                demo.record("container_info", False, e.value)
        except Err as e:
            demo.record("create_container", False, e.value)


def demonstrate_blob_ops(demo):
    ying, yang = demo.container_names[0], demo.container_names[1]
    for blob in TEST_BLOBS:
        try:
            write_blob(ying, blob, f"Content of {blob}".encode())
            demo.record("write_blob", True, f"Wrote {blob} to {ying}")
        except Err as e:
            demo.record("write_blob", False, e.value)
        try:
            c = blobstore.get_container(ying)
        except Err:
            continue
        try:
            demo.record("has_object", True, f"Object {blob} exists in {ying}: {str(c.has_object(blob)).lower()}")
        except Err as e:
            demo.record("has_object", False, e.value)
        try:
            info = c.object_info(blob)
            demo.record(
                "object_info",
                True,
                f"Object {info.name} in {info.container} created at "
                f"{format_timestamp(info.created_at)}, size: {info.size}",
            )
        except Err as e:
            demo.record("object_info", False, e.value)

    for blob in TEST_BLOBS:
        try:
            data = read_blob(ying, blob)
            demo.record("read_blob", True, f"Read {blob} from {ying}: {data.decode(errors='replace')}")
        except Err as e:
            demo.record("read_blob", False, f"Failed to read {blob}: {e.value}")

    try:
        data = read_blob(ying, "water", 0, 4)
        demo.record(
            "partial_read",
            True,
            f"Partial read of 'water' (bytes 0..=4): {data.decode(errors='replace')}",
        )
    except Err as e:
        demo.record("partial_read", False, f"Failed partial read: {e.value}")

    try:
        blobstore.move_object(blob_types.ObjectId(ying, "fire"), blob_types.ObjectId(yang, "fire"))
        demo.record("move_blob", True, f"Moved fire from {ying} to {yang}")
    except Err as e:
        demo.record("move_blob", False, f"Failed to move fire: {e.value}")

    try:
        blobstore.copy_object(blob_types.ObjectId(ying, "water"), blob_types.ObjectId(yang, "water"))
        demo.record("copy_blob", True, f"Copied water from {ying} to {yang}")
    except Err as e:
        demo.record("copy_blob", False, f"Failed to copy water: {e.value}")

    for container in demo.container_names:
        try:
            c = blobstore.get_container(container)
        except Err:
            continue
        try:
            names, _ = c.list_objects().read_stream_object_names(100)
            demo.record("list_objects", True, f"Objects in {container}: {sorted(names)}")
        except Err as e:
            demo.record("list_objects", False, f"Failed to list objects: {e.value}")

    try:
        blobstore.get_container(ying).delete_objects(["earth", "air"])
        demo.record("delete_objects", True, f"Deleted multiple objects from {ying}: ['earth', 'air']")
    except Err as e:
        demo.record("delete_objects", False, e.value)

    try:
        blobstore.get_container(yang).delete_object("water")
        demo.record("delete_object", True, f"Deleted water from {yang}")
    except Err as e:
        demo.record("delete_object", False, e.value)

    try:
        blobstore.get_container(ying).clear()
        demo.record("clear_container", True, f"Cleared {ying}")
    except Err as e:
        demo.record("clear_container", False, f"Failed to clear {ying}: {e.value}")


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        demo = Demo(container_names())
        demonstrate_container_ops(demo)
        demonstrate_blob_ops(demo)
        body_bytes = demo.to_json().encode()
        response = OutgoingResponse(Fields.from_list([("content-type", b"application/json")]))
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        with body.write() as stream:
            for at in range(0, len(body_bytes), WRITE_MAX):
                stream.blocking_write_and_flush(body_bytes[at : at + WRITE_MAX])
        OutgoingBody.finish(body, None)
