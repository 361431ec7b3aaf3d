"""wasmCloud's http-task-manager example (examples/rust/components/http-task-manager), in Python.

Tasks kept in PostgreSQL through `wasmcloud:postgres/query`, served over HTTP with the
original's routes and JSON answers, and through the exported `wasmcloud:task-manager/tasks`
interface (which `flotilla call` can invoke):

    GET  /ready                             {"status": "success"}
    POST /admin/v1/db/migrate               runs sql/migrations (idempotent)
    GET  /api/v1/tasks[?group_id&offset&page_size]
    POST /api/v1/tasks                      {"group_id": …, "task_data": {…}} (application/json)
    GET  /api/v1/tasks/ID
    POST /api/v1/tasks/ID/lease             {"worker_id": …} → the lease id
    POST /api/v1/tasks/ID/release           {"worker_id": …, "lease_id": …}
    POST /api/v1/tasks/ID/complete          {"worker_id": …}
    POST /api/v1/tasks/ID/fail              {"worker_id": …, "reason": …}

Errors answer {"status": "error", "error": {"code", "message"}} with the original's codes and
statuses. Built with componentize-py 0.25.1 against wit/world.wit (README.md next to this file).
"""

import json
from urllib.parse import parse_qs

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.exports import tasks as tasks_types
from wit_world.imports.logging import Level, log
from wit_world.imports.query import query, query_batch
from wit_world.imports import wasmcloud_postgres_types as pg
from wit_world.imports import wasmcloud_task_manager_types as types
from wit_world.imports.wasi_http_types import (
    Fields,
    IncomingRequest,
    Method_Get,
    Method_Post,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)
from wit_world.imports.streams import StreamError_Closed

LOG_CONTEXT = "http-task-manager"
DEFAULT_PAGINATION_PAGE_SIZE = 20
DEFAULT_PAGINATION_OFFSET = 0
# blocking-write-and-flush takes at most this many bytes at once (wasi:io).
MAX_WRITE_BYTES = 4096
MAX_READ_BYTES = 2048

# The SQL of the migrations folder, in order (componentize-py bundles only Python modules).
MIGRATIONS = [
    (
        "0-init.sql",
        """-- Enable the uuid-ossp extension
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";

BEGIN;

-- Basic table implementing tasks
CREATE TABLE IF NOT EXISTS tasks (
    id uuid NOT NULL DEFAULT uuid_generate_v1mc(),
    group_id text NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    data_json jsonb NOT NULL,
    last_failed_at timestamptz,
    last_failure_reason text,
    lease_id uuid NOT NULL DEFAULT uuid_generate_v1mc(),
    leased_at timestamptz,
    lease_worker_id text,
    completed_at timestamptz,
    submitted_at timestamptz NOT NULL DEFAULT NOW(),
    last_updated_at timestamptz NOT NULL DEFAULT NOW(),
    CONSTRAINT check_status_enum CHECK (status IN ('pending', 'leased', 'completed', 'failed'))
);

COMMIT;
""",
    )
]

GET_TASKS = "SELECT * FROM tasks OFFSET $1 LIMIT $2;"
GET_TASKS_BY_GROUP_ID = "SELECT * FROM tasks WHERE group_id = $1 OFFSET $2 LIMIT $3;"
GET_TASK_BY_ID = "SELECT * FROM tasks WHERE id = $1;"
LEASE_TASK = """
WITH existing AS (
  SELECT id FROM tasks
  WHERE id = $1 AND status = 'pending' AND lease_worker_id IS NULL
  FOR UPDATE SKIP LOCKED
)
UPDATE tasks
SET status = 'leased', leased_at = NOW(), lease_worker_id = $2, last_updated_at = NOW()
WHERE (SELECT id FROM existing) IS NOT NULL AND id = (SELECT id FROM existing)
RETURNING *
"""
RELEASE_TASK = """
WITH existing AS (
  SELECT id FROM tasks
  WHERE id = $1 AND lease_id = $2 AND lease_worker_id = $3 AND status = 'leased'
)
UPDATE tasks
SET status = 'pending', lease_id = uuid_generate_v1mc(), lease_worker_id = NULL,
    leased_at = NULL, last_updated_at = NOW()
WHERE (SELECT id FROM existing) IS NOT NULL AND id = (SELECT id FROM existing)
RETURNING *
"""
INSERT_TASK = "INSERT INTO tasks (group_id, data_json) VALUES ($1, $2::jsonb) RETURNING *;"
MARK_TASK_COMPLETE = """
WITH existing AS (
  SELECT id FROM tasks
  WHERE id = $1 AND lease_worker_id = $2 AND status != 'completed'
)
UPDATE tasks
SET status = 'completed', completed_at = NOW(), last_updated_at = NOW()
WHERE (SELECT id FROM existing) IS NOT NULL AND id = (SELECT id FROM existing)
RETURNING *
"""
MARK_TASK_FAILED = """
WITH existing AS (
  SELECT id FROM tasks WHERE id = $1 AND lease_worker_id = $2
)
UPDATE tasks
SET status = 'failed', last_failure_reason = $3, last_failed_at = NOW(), last_updated_at = NOW()
WHERE (SELECT id FROM existing) IS NOT NULL AND id = (SELECT id FROM existing)
RETURNING *
"""

STATUSES = {
    "pending": types.TaskStatus.PENDING,
    "leased": types.TaskStatus.LEASED,
    "completed": types.TaskStatus.COMPLETED,
    "failed": types.TaskStatus.FAILED,
}


class Unexpected(Exception):
    pass


def column(row, name, *kinds):
    """The value of column `name` when it is one of `kinds` (not null), else None."""
    for entry in row:
        if entry.column_name == name and isinstance(entry.value, kinds):
            return entry.value.value
    return None


def required(row, name, *kinds):
    value = column(row, name, *kinds)
    if value is None:
        raise Unexpected(f"required column [{name}] is missing/null")
    return value


def task_from_row(row):
    status = required(row, "status", pg.PgValue_Text)
    if status not in STATUSES:
        raise Unexpected(f"Invalid status [{status}], failed to convert to TaskStatus")
    return types.Task(
        id=required(row, "id", pg.PgValue_Uuid),
        group_id=required(row, "group_id", pg.PgValue_Text),
        status=STATUSES[status],
        data_json=required(row, "data_json", pg.PgValue_Json, pg.PgValue_Jsonb),
        last_failed_at=column(row, "last_failed_at", pg.PgValue_TimestampTz),
        last_failure_reason=column(row, "last_failure_reason", pg.PgValue_Text),
        leased_at=column(row, "leased_at", pg.PgValue_TimestampTz),
        lease_worker_id=column(row, "lease_worker_id", pg.PgValue_Text),
        completed_at=column(row, "completed_at", pg.PgValue_TimestampTz),
        submitted_at=required(row, "submitted_at", pg.PgValue_TimestampTz),
        last_updated_at=required(row, "last_updated_at", pg.PgValue_TimestampTz),
    )


def query_error(e):
    """The text of a query-error carried by an Err."""
    value = e.value
    inner = getattr(value, "value", value)
    return f"{type(value).__name__.split('_')[-1].lower()}: {inner}"


def run(sql, params):
    try:
        return query(sql, params)
    except Err as e:
        raise Unexpected(query_error(e))


def exactly_one(rows, what):
    if len(rows) != 1:
        raise Unexpected(f"unexpected number of tasks while {what} (expected only one)")
    return rows[0]


class Tasks(exports.Tasks):
    def get_tasks(self, options):
        p = options.pagination
        try:
            if options.group_id is not None:
                rows = run(
                    GET_TASKS_BY_GROUP_ID,
                    [pg.PgValue_Text(options.group_id), pg.PgValue_BigInt(p.offset), pg.PgValue_BigInt(p.page_size)],
                )
            else:
                rows = run(GET_TASKS, [pg.PgValue_BigInt(p.offset), pg.PgValue_BigInt(p.page_size)])
            return [task_from_row(r) for r in rows]
        except Unexpected as e:
            log(Level.ERROR, LOG_CONTEXT, f"error querying tasks: {e}")
            raise Err(tasks_types.GetTasksError_Unexpected(f"failed to query tasks: {e}"))

    def get_task(self, task_id):
        try:
            rows = run(GET_TASK_BY_ID, [pg.PgValue_Uuid(task_id)])
            return task_from_row(exactly_one(rows, "getting a task by ID"))
        except Unexpected as e:
            log(Level.ERROR, LOG_CONTEXT, f"error querying task by ID: {e}")
            raise Err(tasks_types.GetTaskError_Unexpected(f"failed to query task by ID: {e}"))

    def submit_task(self, group_id, data):
        try:
            parsed = json.loads(data)
        except ValueError as e:
            raise Err(tasks_types.SubmitTaskError_InvalidTaskData(str(e)))
        if not isinstance(parsed, dict):
            raise Err(tasks_types.SubmitTaskError_InvalidTaskData("task data must be a JSON object"))
        try:
            rows = run(INSERT_TASK, [pg.PgValue_Text(group_id), pg.PgValue_Jsonb(data)])
            if not rows:
                raise Unexpected("no rows returned from task creation")
            return task_from_row(rows[0])
        except Unexpected as e:
            log(Level.ERROR, LOG_CONTEXT, f"error inserting task: {e}")
            raise Err(tasks_types.SubmitTaskError_Unexpected(f"failed to insert task: {e}"))

    def lease_task(self, task_id, worker_id):
        try:
            rows = run(LEASE_TASK, [pg.PgValue_Uuid(task_id), pg.PgValue_Text(worker_id)])
            if not rows:
                raise Unexpected("lease failed, no tasks updated")
            return required(exactly_one(rows, "leasing task"), "lease_id", pg.PgValue_Uuid)
        except Unexpected as e:
            raise Err(tasks_types.UpdateTaskError_Unexpected(f"failed to lease task: {e}"))

    def release_task(self, task_id, worker_id, lease_id):
        try:
            rows = run(
                RELEASE_TASK,
                [pg.PgValue_Uuid(task_id), pg.PgValue_Uuid(lease_id), pg.PgValue_Text(worker_id)],
            )
            exactly_one(rows, "releasing task")
        except Unexpected as e:
            raise Err(tasks_types.UpdateTaskError_Unexpected(f"failed to release task: {e}"))

    def mark_task_completed(self, lease_id, worker_id):
        # As the original, the first argument is the task's id.
        try:
            rows = run(MARK_TASK_COMPLETE, [pg.PgValue_Uuid(lease_id), pg.PgValue_Text(worker_id)])
            exactly_one(rows, "marking completion")
        except Unexpected as e:
            raise Err(tasks_types.UpdateTaskError_Unexpected(f"failed to mark task completed: {e}"))

    def mark_task_failed(self, lease_id, worker_id, reason):
        try:
            rows = run(
                MARK_TASK_FAILED,
                [pg.PgValue_Uuid(lease_id), pg.PgValue_Text(worker_id), pg.PgValue_Text(reason)],
            )
            exactly_one(rows, "marking failure")
        except Unexpected as e:
            raise Err(tasks_types.UpdateTaskError_Unexpected(f"failed to mark task failed: {e}"))


def perform_migrations():
    for name, sql in MIGRATIONS:
        log(Level.DEBUG, LOG_CONTEXT, f"executing migration in file [{name}]")
        try:
            query_batch(sql)
        except Err as e:
            log(Level.ERROR, LOG_CONTEXT, f"failed to execute migration [{name}]: {query_error(e)}")
            raise Unexpected(f"failed to execute migration [{name}]: {query_error(e)}")
        log(Level.INFO, LOG_CONTEXT, f"successfully completed migration [{name}]")


# JSON as the original's serde gives it.
def timestamp_json(ts):
    if ts is None:
        return None
    date = ts.timestamp.date
    if isinstance(date, pg.Date_Ymd):
        date_json = {"Ymd": list(date.value)}
    elif isinstance(date, pg.Date_PositiveInfinity):
        date_json = "PositiveInfinity"
    else:
        date_json = "NegativeInfinity"
    t = ts.timestamp.time
    if isinstance(ts.offset, pg.Offset_EasternHemisphereSecs):
        offset = {"EasternHemisphereSecs": ts.offset.value}
    else:
        offset = {"WesternHemisphereSecs": ts.offset.value}
    return {
        "timestamp": {"date": date_json, "time": {"hour": t.hour, "min": t.min, "sec": t.sec, "micro": t.micro}},
        "offset": offset,
    }


def task_json(task):
    return {
        "id": task.id,
        "status": task.status.name.capitalize(),
        "group_id": task.group_id,
        "data_json": task.data_json,
        "last_failed_at": timestamp_json(task.last_failed_at),
        "last_failure_reason": task.last_failure_reason,
        "leased_at": timestamp_json(task.leased_at),
        "lease_worker_id": task.lease_worker_id,
        "completed_at": timestamp_json(task.completed_at),
        "submitted_at": timestamp_json(task.submitted_at),
        "last_updated_at": timestamp_json(task.last_updated_at),
    }


def error_text(e):
    """An Err of the tasks interface as the original's Display prints it."""
    value = e.value
    inner = getattr(value, "value", None)
    return f"{type(value).__name__}({inner})" if inner is not None else type(value).__name__


def send_json(response_out, body, status):
    data = json.dumps(body, separators=(",", ":")).encode()
    response = OutgoingResponse(Fields.from_list([("Content-Type", b"application/json;charset=utf8")]))
    response.set_status_code(status)
    out = response.body()
    ResponseOutparam.set(response_out, Ok(response))
    with out.write() as stream:
        for at in range(0, len(data), MAX_WRITE_BYTES):
            stream.blocking_write_and_flush(data[at : at + MAX_WRITE_BYTES])
    OutgoingBody.finish(out, None)


def send_error(response_out, status, code, message):
    send_json(response_out, {"status": "error", "error": {"code": code, "message": message}}, status)


def read_body(request):
    body = request.consume()
    chunks = []
    with body.stream() as stream:
        while True:
            try:
                chunk = stream.blocking_read(MAX_READ_BYTES)
            except Err as e:
                if isinstance(e.value, StreamError_Closed):
                    break
                raise
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def is_json(request):
    return any(
        k.lower() == "content-type" and b"application/json" in v for k, v in request.headers().entries()
    )


def task_id_of(path, segments):
    parts = path.split("/")
    return parts[4] if len(parts) == segments else None


# Each task action: path suffix → (request fields, the call, error code, message prefix,
# whether the answer carries the result).
ACTIONS = {
    "/complete": (["worker_id"], "mark_task_completed", "task-completion-err", "marking task completed failed", "task complete"),
    "/fail": (["worker_id", "reason"], "mark_task_failed", "task-failure-err", "marking task failed failed", "task failure"),
    "/lease": (["worker_id"], "lease_task", "task-lease-err", "leasing task failed", "task lease"),
    "/release": (["worker_id", "lease_id"], "release_task", "task-release-err", "releasing task failed", "task lease"),
}


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        method = request.method()
        path, _, query_string = (request.path_with_query() or "/").partition("?")
        params = {k: v[0] for k, v in parse_qs(query_string).items()}
        json_request = is_json(request)
        try:
            body = read_body(request)
        except Err as e:
            return send_error(response_out, 500, "invalid-body", f"failed to receive incoming body: {e.value}")
        tasks = Tasks()

        if isinstance(method, Method_Get) and path == "/ready":
            return send_json(response_out, {"status": "success"}, 200)

        if isinstance(method, Method_Post) and path == "/admin/v1/db/migrate":
            try:
                perform_migrations()
            except Unexpected as e:
                return send_error(response_out, 500, "db-migration-failure", f"failed to perform migrations: {e}")
            return send_json(response_out, {"status": "success"}, 200)

        if isinstance(method, Method_Get) and path == "/api/v1/tasks":
            def number(key, default):
                try:
                    return int(params[key])
                except (KeyError, ValueError):
                    return default

            options = tasks_types.GetTasksQueryOptions(
                group_id=params.get("group_id"),
                pagination=types.OffsetPagination(
                    offset=number("offset", DEFAULT_PAGINATION_OFFSET),
                    page_size=number("page_size", DEFAULT_PAGINATION_PAGE_SIZE),
                ),
            )
            try:
                found = tasks.get_tasks(options)
            except Err as e:
                return send_error(response_out, 500, "task-retrieval-failure", f"failed to retrieve tasks: {error_text(e)}")
            return send_json(response_out, {"status": "success", "data": [task_json(t) for t in found]}, 200)

        if isinstance(method, Method_Post) and path == "/api/v1/tasks":
            if not json_request:
                return send_error(response_out, 400, "invalid-content-type", "Invalid content type, must be application/json")
            try:
                submitted = json.loads(body)
                group_id, task_data = submitted["group_id"], submitted["task_data"]
            except (ValueError, KeyError, TypeError) as e:
                return send_error(response_out, 400, "invalid-req-body", f"failed to parse task submit data from request body: {e}")
            if not isinstance(task_data, dict):
                return send_error(response_out, 400, "invalid-req-body", "task data must be a JSON object")
            try:
                task = tasks.submit_task(group_id, json.dumps(task_data, separators=(",", ":")))
            except Err as e:
                return send_error(response_out, 500, "task-submission-failed", f"task submission failed: {error_text(e)}")
            return send_json(response_out, {"status": "success", "data": task_json(task)}, 200)

        if isinstance(method, Method_Post) and path.startswith("/api/v1/tasks/"):
            for suffix, (fields, call, code, failed, what) in ACTIONS.items():
                if not path.endswith(suffix):
                    continue
                task_id = task_id_of(path, 6)
                if task_id is None:
                    return send_error(response_out, 500, "invalid-url", "unexpected URL pattern: missing task_id segment")
                try:
                    given = json.loads(body)
                    args = [given[f] for f in fields]
                except (ValueError, KeyError, TypeError) as e:
                    return send_error(response_out, 500, "invalid-req-body", f"failed to parse {what} data from request body: {e}")
                try:
                    result = getattr(tasks, call)(task_id, *args)
                except Err as e:
                    return send_error(response_out, 500, code, f"{failed}: {error_text(e)}")
                answer = {"status": "success"}
                if result is not None:
                    answer["data"] = result
                return send_json(response_out, answer, 200)

        if isinstance(method, Method_Get) and path.startswith("/api/v1/tasks/"):
            task_id = task_id_of(path, 5)
            if task_id is None:
                return send_error(response_out, 500, "invalid-url", "unexpected URL pattern: missing task_id segment")
            try:
                task = tasks.get_task(task_id)
            except Err as e:
                return send_error(response_out, 500, "task-submit-err", f"task submission failed: {error_text(e)}")
            return send_json(response_out, {"status": "success", "data": task_json(task)}, 200)

        return send_json(
            response_out,
            {"status": "error", "error": {"code": "invalid-endpoint", "message": f"no such endpoint [{path}]"}},
            404,
        )
