"""wasmCloud's blobby example, in Python: files over HTTP in a linked blobstore, streamed.

    GET /NAME              the object (`?start=S&end=E`: its bytes S..=E), 404 when missing
    PUT or POST /NAME      stores the request body (Content-Length required): 201
    DELETE /NAME           deletes it: 200
    GET /                  the names in the container, one per line
    POST /NAME?copy=TO     copies NAME to TO; `?move=TO` moves it
    DELETE /?container     deletes the whole container

`?container=C` picks the container (default `blobby`, made on first use). Bodies go through
in chunks of CHUNK bytes: neither side holds a whole object. A blobstore error answers 500 with
the error. Built with componentize-py 0.25.1 against wit/world.wit (README.md next to this file).
"""

from urllib.parse import parse_qs, unquote

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import blobstore
from wit_world.imports.wasi_http_types import (
    Fields,
    IncomingRequest,
    Method_Delete,
    Method_Get,
    Method_Post,
    Method_Put,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)
from wit_world.imports import wasi_blobstore_types as blob_types
from wit_world.imports.wasi_io_streams_0_2_6 import StreamError_Closed as BlobStreamClosed
from wit_world.imports.wasi_io_streams_0_2_12 import StreamError_Closed as HttpStreamClosed

CHUNK = 64 * 1024
# blocking-write-and-flush takes at most this many bytes at once (wasi:io).
WRITE_MAX = 4096
DEFAULT_CONTAINER = "blobby"


def container_named(name):
    if not blobstore.container_exists(name):
        return blobstore.create_container(name)
    return blobstore.get_container(name)


def copy_stream(source, sink):
    """Copies an input stream into an output stream, CHUNK bytes at a time."""
    total = 0
    while True:
        try:
            chunk = source.blocking_read(CHUNK)
        except Err as e:
            if isinstance(e.value, (BlobStreamClosed, HttpStreamClosed)):
                return total
            raise
        for at in range(0, len(chunk), WRITE_MAX):
            sink.blocking_write_and_flush(chunk[at : at + WRITE_MAX])
        total += len(chunk)


def respond(response_out, status, text=None, source=None, length=None):
    headers = [("content-type", b"text/plain" if source is None else b"application/octet-stream")]
    if length is not None:
        headers.append(("content-length", str(length).encode()))
    response = OutgoingResponse(Fields.from_list(headers))
    response.set_status_code(status)
    body = response.body()
    ResponseOutparam.set(response_out, Ok(response))
    with body.write() as stream:
        if source is not None:
            copy_stream(source, stream)
        else:
            stream.blocking_write_and_flush((text + "\n").encode())
    OutgoingBody.finish(body, None)


def store(container, name, request):
    """Streams the request body into the object: the value's stream goes before `finish`."""
    value = blob_types.OutgoingValue.new_outgoing_value()
    with value.outgoing_value_write_body() as sink:
        container.write_data(name, value)
        body = request.consume()
        with body.stream() as source:
            written = copy_stream(source, sink)
    blob_types.OutgoingValue.finish(value)
    return written


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        path, _, query = (request.path_with_query() or "/").partition("?")
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        name = unquote(path.strip("/"))
        method = request.method()
        try:
            if isinstance(method, Method_Delete) and not name and "container" in params:
                blobstore.delete_container(params["container"] or DEFAULT_CONTAINER)
                return respond(response_out, 200, "deleted")
            container = container_named(params.get("container") or DEFAULT_CONTAINER)
            if isinstance(method, Method_Get) and not name:
                listing = container.list_objects()
                names, done = [], False
                while not done:
                    page, done = listing.read_stream_object_names(100)
                    names.extend(page)
                return respond(response_out, 200, "\n".join(sorted(names)))
            if isinstance(method, Method_Get):
                if not container.has_object(name):
                    return respond(response_out, 404, f"no {name}")
                size = container.object_info(name).size
                start = int(params.get("start", 0))
                end = int(params.get("end", size))
                value = container.get_data(name, start, end)
                length = value.size()
                source = blob_types.IncomingValue.incoming_value_consume_async(value)
                return respond(response_out, 200, source=source, length=length)
            if isinstance(method, Method_Post) and ("copy" in params or "move" in params):
                target = blob_types.ObjectId(container.name(), params.get("copy") or params.get("move"))
                here = blob_types.ObjectId(container.name(), name)
                if "copy" in params:
                    blobstore.copy_object(here, target)
                else:
                    blobstore.move_object(here, target)
                return respond(response_out, 200, "ok")
            if isinstance(method, (Method_Put, Method_Post)):
                written = store(container, name, request)
                return respond(response_out, 201, f"stored {written} bytes")
            if isinstance(method, Method_Delete):
                container.delete_object(name)
                return respond(response_out, 200, "deleted")
            return respond(response_out, 405, "method not allowed")
        except Err as e:
            return respond(response_out, 500, f"blobstore error: {e.value}")
