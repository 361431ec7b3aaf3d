"""wasmCloud's messaging-image-processor-worker (examples/rust/components/
messaging-image-processor-worker), in Python.

Each message on its subscription names a task of the task manager (`{"task_id": ID}`, or
`{"job_id": ID}` as the original's README writes it). The worker leases the task through
`wasmcloud:task-manager/tasks` (a link to the http-task-manager component, served in process),
reads the task's image processing request, fetches the image (the built-in default image, an
object in the blobstore, or an https:// URL through wasi:http), applies the operations
(`grayscale`, `resize` to `width_px` x `height_px`), writes the result to the destination
object in the blobstore, and marks the task completed (or failed, with the reason).

Images are PNG, decoded and encoded here with the standard library only (zlib): 8-bit gray,
gray+alpha, RGB or RGBA, not interlaced. The original uses the `image` crate (JPEG too) and
writes the raw pixels; this one writes a PNG. Built with componentize-py 0.25.1 against
wit/world.wit.
"""

import json
import struct
import zlib

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import blobstore, outgoing_handler, tasks
from wit_world.imports import wasi_blobstore_types as blob_types
from wit_world.imports import wasi_http_types as http
from wit_world.imports.logging import Level, log
from wit_world.imports.wasi_io_poll_0_2_12 import poll
from wit_world.imports.wasi_io_streams_0_2_12 import StreamError_Closed

LOG_CONTEXT = "image-processor-worker"
WORKER_ID = "python-component-worker"
# blocking-write-and-flush takes at most this many bytes at once (wasi:io).
WRITE_MAX = 4096
# Bytes asked for per read of a body.
READ_MAX = 65536
# The largest end offset: "to the end of the object".
TO_THE_END = 2**64 - 1
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG color type -> channels.
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


class Failed(Exception):
    """Why a task could not be processed (logged, and recorded on the task)."""


# --- PNG, 8 bits per channel ---------------------------------------------------------------


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(data):
    """(width, height, channels, rows of bytes) of an 8-bit, non-interlaced PNG."""
    if not data.startswith(PNG_SIGNATURE):
        raise Failed("the image is not a PNG (this port reads PNG only)")
    at, idat, header = len(PNG_SIGNATURE), [], None
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        body = data[at + 8 : at + 8 + length]
        at += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise Failed("the PNG has no IHDR chunk")
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or color not in CHANNELS or interlace != 0:
        raise Failed(f"unsupported PNG (bit depth {depth}, color type {color}, interlace {interlace})")
    channels = CHANNELS[color]
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            up_left = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                line[x] = (line[x] + paeth(left, up, up_left)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, channels, rows


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def encode_png(width, height, channels, rows):
    color = {v: k for k, v in CHANNELS.items()}[channels]
    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def grayscale(image):
    width, height, channels, rows = image
    if channels <= 2:
        return image
    out = []
    for row in rows:
        line = bytearray()
        for x in range(0, len(row), channels):
            r, g, b = row[x], row[x + 1], row[x + 2]
            line.append((299 * r + 587 * g + 114 * b) // 1000)
            if channels == 4:
                line.append(row[x + 3])
        out.append(bytes(line))
    return width, height, channels - 2, out


def resize(image, width_px, height_px):
    width, height, channels, rows = image
    if width_px <= 0 or height_px <= 0:
        raise Failed(f"cannot resize to {width_px}x{height_px}")
    out = []
    for y in range(height_px):
        row = rows[y * height // height_px]
        line = bytearray()
        for x in range(width_px):
            at = (x * width // width_px) * channels
            line += row[at : at + channels]
        out.append(bytes(line))
    return width_px, height_px, channels, out


def default_image():
    """The built-in image: a 64x64 RGB gradient (the original ships wasmCloud's logo, a JPEG)."""
    size = 64
    rows = [bytes(v for x in range(size) for v in (x * 4, y * 4, 128)) for y in range(size)]
    return encode_png(size, size, 3, rows)


# --- where images come from and go ---------------------------------------------------------


def read_object(bucket, key):
    try:
        container = blobstore.get_container(bucket)
        value = container.get_data(key, 0, TO_THE_END)
        return blob_types.IncomingValue.incoming_value_consume_sync(value)
    except Err as e:
        raise Failed(f"reading {bucket}/{key}: {e.value}")


def write_object(bucket, key, data):
    try:
        if blobstore.container_exists(bucket):
            container = blobstore.get_container(bucket)
        else:
            container = blobstore.create_container(bucket)
        value = blob_types.OutgoingValue.new_outgoing_value()
        with value.outgoing_value_write_body() as stream:
            for at in range(0, len(data), WRITE_MAX):
                stream.blocking_write_and_flush(data[at : at + WRITE_MAX])
        container.write_data(key, value)
        blob_types.OutgoingValue.finish(value)
    except Err as e:
        raise Failed(f"writing {bucket}/{key}: {e.value}")


def fetch_https(url):
    """The body of a GET of `url` through wasi:http (the component's http-client link)."""
    scheme, _, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    request = http.OutgoingRequest(http.Fields())
    request.set_scheme(http.Scheme_Https() if scheme == "https" else http.Scheme_Http())
    request.set_authority(authority)
    request.set_path_with_query(slash + path)
    http.OutgoingBody.finish(request.body(), None)
    future = outgoing_handler.handle(request, None)
    while (answer := future.get()) is None:
        poll([future.subscribe()])
    if isinstance(answer, Err):
        raise Failed(f"GET {url}: the response was taken already")
    if isinstance(answer.value, Err):
        raise Failed(f"GET {url}: {answer.value.value}")
    response = answer.value.value
    if response.status() != 200:
        raise Failed(f"GET {url}: status {response.status()}")
    body = response.consume()
    stream = body.stream()
    data = bytearray()
    while True:
        try:
            data += stream.blocking_read(READ_MAX)
        except Err as e:
            if isinstance(e.value, StreamError_Closed):
                break
            raise
    return bytes(data)


def fetch_image(source):
    kind = source.get("type", "default-image")
    if kind == "default-image":
        return default_image()
    if kind == "blobstore":
        path = source["path"]
        return read_object(path["bucket"], path["key"])
    if kind == "remote-https":
        return fetch_https(source["url"])
    raise Failed(f"source type {kind} is not supported")


def transform(data, operations):
    image = decode_png(data)
    for op in operations:
        kind = op.get("type", "no-op")
        if kind == "grayscale":
            image = grayscale(image)
        elif kind == "resize":
            image = resize(image, int(op["width_px"]), int(op["height_px"]))
        elif kind != "no-op":
            raise Failed(f"unknown operation {kind}")
    return encode_png(*image)


# --- the handler ---------------------------------------------------------------------------


def task_error(e):
    value = e.value
    return getattr(value, "value", None) or type(value).__name__


def process(task_id):
    try:
        tasks.lease_task(task_id, WORKER_ID)
    except Err as e:
        raise Failed(f"failed to lease task: {task_error(e)}")
    try:
        task = tasks.get_task(task_id)
    except Err as e:
        raise Failed(f"failed to retrieve task: {task_error(e)}")
    if task.data_json is None:
        raise Failed("task missing data")
    try:
        request = json.loads(task.data_json)
        output = transform(fetch_image(request.get("source", {})), request.get("operations", []))
        destination = request.get("destination", {})
        if destination.get("type") == "blobstore":
            path = destination["path"]
            log(Level.INFO, LOG_CONTEXT, f"writing to [{path['bucket']}/{path['key']}]")
            write_object(path["bucket"], path["key"], output)
    except (Failed, KeyError, ValueError, TypeError, zlib.error) as e:
        # The original passes the lease id here; the task manager's query takes the task's.
        try:
            tasks.mark_task_failed(task_id, WORKER_ID, str(e))
        except Err:
            pass
        raise
    try:
        tasks.mark_task_completed(task_id, WORKER_ID)
    except Err as e:
        raise Failed(f"failed to mark the task completed: {task_error(e)}")


class Handler(exports.Handler):
    def handle_message(self, msg):
        try:
            job = json.loads(msg.body)
            task_id = job.get("task_id") or job["job_id"]
        except (ValueError, KeyError, AttributeError) as e:
            log(Level.ERROR, LOG_CONTEXT, f"failed to parse job message: {e}")
            raise Err("failed to parse image processing request")
        try:
            process(task_id)
        except (Failed, KeyError, ValueError, TypeError, zlib.error) as e:
            log(Level.ERROR, LOG_CONTEXT, f"task {task_id}: {e}")
            raise Err(f"task {task_id}: {e}")
        log(Level.INFO, LOG_CONTEXT, f"task {task_id} completed")
