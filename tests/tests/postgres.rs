//! `wasmcloud:postgres` against a real PostgreSQL (Debian's, started by the test): every
//! `pg-value` variant goes in as a parameter and comes back from a column of its type through
//! the host's conversions; PostgreSQL's refusals come back as the interface's error variants;
//! a wrong password is an error that does not carry it.

use std::collections::BTreeMap;

use flotilla_tests::harness::{http_json, put_default_postgres, POSTGRES_PASSWORD, POSTGRES_USER};
use flotilla_tests::{Server, ServerKind};
use runtime::capabilities::postgres::connection::Settings;
use runtime::capabilities::postgres::floats::{from_f32, from_f64};
use runtime::capabilities::postgres::pg::{
    Date, Interval, Lexeme, LexemeWeight, MacAddressEui48, MacAddressEui64, Offset, PgValue,
    QueryError, Time, TimeTz, Timestamp, TimestampTz,
};
use runtime::capabilities::postgres::Databases;

fn settings(server: &Server, password: &str) -> Settings {
    let (host, port) = server.host_and_port();
    let map: BTreeMap<&str, String> = [
        ("POSTGRES_HOST", host),
        ("POSTGRES_PORT", port.to_string()),
        ("POSTGRES_USERNAME", POSTGRES_USER.to_string()),
        ("POSTGRES_PASSWORD", password.to_string()),
        ("POSTGRES_DATABASE", "postgres".to_string()),
    ]
    .into_iter()
    .collect();
    Settings::from_link(|k| map.get(k).cloned()).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn point(x: f64, y: f64) -> ((u64, i16, i8), (u64, i16, i8)) {
    (from_f64(x), from_f64(y))
}

fn time(hour: u32, min: u32, sec: u32, micro: u32) -> Time {
    Time {
        hour,
        min,
        sec,
        micro,
    }
}

fn timestamp(ymd: (i32, u32, u32), t: Time) -> Timestamp {
    Timestamp {
        date: Date::Ymd(ymd),
        time: t,
    }
}

/// `(value, SQL type, what comes back when it is not the same value)`: the variants that are
/// aliases of one type come back as that type's variant.
fn cases() -> Vec<(PgValue, &'static str, Option<PgValue>)> {
    use PgValue as V;
    let same = |v: PgValue, ty: &'static str| (v, ty, None);
    let as_ = |v: PgValue, ty: &'static str, back: PgValue| (v, ty, Some(back));
    let mac = MacAddressEui48 {
        bytes: (0x08, 0x00, 0x2b, 0x01, 0x02, 0x03),
    };
    let mac8 = MacAddressEui64 {
        bytes: (0x08, 0x00, 0x2b, 0x01, 0x02, 0x03, 0x04, 0x05),
    };
    let noon_plus_two = TimeTz {
        timesonze: "+02:00".into(),
        time: time(12, 0, 0, 0),
    };
    let leap = timestamp((2024, 2, 29), time(23, 59, 59, 500_000));
    let january = Interval {
        start: Date::Ymd((2024, 1, 1)),
        start_inclusive: true,
        end: Date::Ymd((2024, 2, 1)),
        end_inclusive: false,
    };
    let utc = |ts: Timestamp| TimestampTz {
        timestamp: ts,
        offset: Offset::EasternHemisphereSecs(0),
    };
    let mut all = vec![
        same(V::Null, "int4"),
        same(V::Int8(i64::MIN), "int8"),
        as_(V::BigInt(-5), "bigint", V::Int8(-5)),
        as_(V::BigSerial(7), "int8", V::Int8(7)),
        as_(V::Serial8(8), "int8", V::Int8(8)),
        same(V::Int8Array(vec![1, -2]), "int8[]"),
        same(V::Bool(true), "bool"),
        as_(V::Boolean(false), "boolean", V::Bool(false)),
        same(V::BoolArray(vec![true, false]), "bool[]"),
        same(V::Float8(from_f64(1.5e300)), "float8"),
        as_(
            V::Double(from_f64(-0.25)),
            "float8",
            V::Float8(from_f64(-0.25)),
        ),
        same(V::Float8(from_f64(f64::INFINITY)), "float8"),
        same(
            V::Float8Array(vec![from_f64(1.0), from_f64(2.5)]),
            "float8[]",
        ),
        same(V::Float4(from_f32(0.1)), "float4"),
        as_(V::Real(from_f32(3.5)), "real", V::Float4(from_f32(3.5))),
        same(V::Float4Array(vec![from_f32(0.5)]), "float4[]"),
        same(V::Int4(i32::MAX), "int4"),
        as_(V::Integer(-1), "integer", V::Int4(-1)),
        as_(V::Int(2), "int", V::Int4(2)),
        as_(V::Serial(3), "int4", V::Int4(3)),
        as_(V::Serial4(4), "int4", V::Int4(4)),
        same(V::Int4Array(vec![1, 2, 3]), "int4[]"),
        same(V::Numeric("12345.678".into()), "numeric"),
        same(V::Numeric("-0.00012".into()), "numeric"),
        as_(
            V::Decimal("100000".into()),
            "decimal",
            V::Numeric("100000".into()),
        ),
        same(
            V::NumericArray(vec!["1.5".into(), "NaN".into()]),
            "numeric[]",
        ),
        same(V::Int2(i16::MIN), "int2"),
        as_(V::SmallInt(5), "smallint", V::Int2(5)),
        as_(V::SmallSerial(6), "int2", V::Int2(6)),
        as_(V::Serial2(7), "int2", V::Int2(7)),
        same(V::Int2Array(vec![1, -1]), "int2[]"),
        same(V::Int2Vector(vec![1, 2, 3]), "int2vector"),
        same(
            V::Int2VectorArray(vec![vec![1, 2], vec![3]]),
            "int2vector[]",
        ),
        same(V::Bit((5, vec![0b1011_0000])), "bit(5)"),
        same(
            V::BitArray(vec![(3, vec![0b1010_0000]), (3, vec![0b0100_0000])]),
            "bit(3)[]",
        ),
        as_(
            V::BitVarying((Some(4), vec![0xf0])),
            "varbit",
            V::Varbit((Some(4), vec![0xf0])),
        ),
        as_(
            V::Varbit((None, vec![0xff, 0x01])),
            "varbit",
            V::Varbit((Some(16), vec![0xff, 0x01])),
        ),
        same(
            V::VarbitArray(vec![(Some(2), vec![0b0100_0000])]),
            "varbit[]",
        ),
        same(V::Bytea(vec![0, 1, 255]), "bytea"),
        same(V::ByteaArray(vec![vec![1], vec![]]), "bytea[]"),
        same(V::Char((3, b"abc".to_vec())), "char(3)"),
        same(V::CharArray(vec![(2, b"ab".to_vec())]), "char(2)[]"),
        same(V::Varchar((Some(5), b"hello".to_vec())), "varchar(5)"),
        same(
            V::VarcharArray(vec![(Some(2), b"hi".to_vec()), (Some(3), b"a,b".to_vec())]),
            "varchar[]",
        ),
        same(V::Cidr("10.0.0.0/8".into()), "cidr"),
        same(V::CidrArray(vec!["2001:db8::/32".into()]), "cidr[]"),
        same(V::Inet("192.168.1.5".into()), "inet"),
        same(V::Inet("10.1.2.3/16".into()), "inet"),
        same(V::InetArray(vec!["::1".into()]), "inet[]"),
        same(V::Macaddr(mac), "macaddr"),
        same(V::MacaddrArray(vec![mac]), "macaddr[]"),
        same(V::Macaddr8(mac8), "macaddr8"),
        same(V::Macaddr8Array(vec![mac8]), "macaddr8[]"),
        same(V::Box((point(1.0, 2.0), point(3.0, 4.0))), "box"),
        same(
            V::BoxArray(vec![
                (point(0.0, 0.0), point(1.0, 1.0)),
                (point(1.0, 2.0), point(3.0, 4.0)),
            ]),
            "box[]",
        ),
        same(V::Circle((point(1.0, 2.0), from_f64(3.0))), "circle"),
        same(
            V::CircleArray(vec![(point(0.0, 0.0), from_f64(1.0))]),
            "circle[]",
        ),
        same(V::Line((point(0.0, 1.0), point(1.0, 3.0))), "line"),
        same(
            V::LineArray(vec![(point(0.0, 1.0), point(1.0, 3.0))]),
            "line[]",
        ),
        same(V::Lseg((point(0.0, 0.0), point(1.0, 1.0))), "lseg"),
        same(
            V::LsegArray(vec![(point(0.0, 0.0), point(2.0, 2.0))]),
            "lseg[]",
        ),
        same(
            V::Path(vec![point(0.0, 0.0), point(1.0, 1.0), point(2.0, 0.0)]),
            "path",
        ),
        same(
            V::PathArray(vec![vec![point(0.0, 0.0), point(1.0, 1.0)]]),
            "path[]",
        ),
        same(V::Point(point(-1.5, 2.0)), "point"),
        same(V::PointArray(vec![point(1.0, 1.0)]), "point[]"),
        same(
            V::Polygon(vec![point(0.0, 0.0), point(1.0, 0.0), point(0.0, 1.0)]),
            "polygon",
        ),
        same(
            V::PolygonArray(vec![vec![point(0.0, 0.0), point(1.0, 1.0)]]),
            "polygon[]",
        ),
        same(V::Date(Date::Ymd((2024, 2, 29))), "date"),
        same(V::Date(Date::Ymd((0, 3, 1))), "date"),
        same(V::Date(Date::PositiveInfinity), "date"),
        same(
            V::DateArray(vec![Date::Ymd((1999, 12, 31)), Date::NegativeInfinity]),
            "date[]",
        ),
        same(V::Interval(january), "daterange"),
        same(V::IntervalArray(vec![january]), "daterange[]"),
        same(V::Time(time(12, 34, 56, 789_012)), "time"),
        same(V::TimeArray(vec![time(0, 0, 0, 1)]), "time[]"),
        same(V::TimeTz(noon_plus_two.clone()), "timetz"),
        same(V::TimeTzArray(vec![noon_plus_two]), "timetz[]"),
        same(V::Timestamp(leap), "timestamp"),
        same(
            V::Timestamp(Timestamp {
                date: Date::PositiveInfinity,
                time: time(0, 0, 0, 0),
            }),
            "timestamp",
        ),
        same(V::TimestampArray(vec![leap]), "timestamp[]"),
        same(V::TimestampTz(utc(leap)), "timestamptz"),
        as_(
            V::TimestampTz(TimestampTz {
                timestamp: timestamp((2024, 3, 1), time(1, 0, 0, 0)),
                offset: Offset::WesternHemisphereSecs(5 * 3600),
            }),
            "timestamptz",
            V::TimestampTz(utc(timestamp((2024, 3, 1), time(6, 0, 0, 0)))),
        ),
        same(V::TimestampTzArray(vec![utc(leap)]), "timestamptz[]"),
        same(V::Json(r#"{"a":1, "b":[true]}"#.into()), "json"),
        same(V::JsonArray(vec!["1".into(), r#""x""#.into()]), "json[]"),
        same(V::Jsonb(r#"{"a": 1}"#.into()), "jsonb"),
        same(V::JsonbArray(vec![r#"[1, 2]"#.into()]), "jsonb[]"),
        same(V::Money("12.34".into()), "money"),
        same(V::Money("-0.05".into()), "money"),
        same(V::MoneyArray(vec!["1.00".into()]), "money[]"),
        same(V::PgLsn(0x1_0000_00ff), "pg_lsn"),
        same(V::PgLsnArray(vec![16]), "pg_lsn[]"),
        same(V::PgSnapshot((10, 20, vec![12, 15])), "pg_snapshot"),
        as_(V::TxidSnapshot(5), "int8", V::Int8(5)),
        same(V::Name("relname".into()), "name"),
        same(V::NameArray(vec!["a".into()]), "name[]"),
        same(V::Text("it's \"quoted\", with commas".into()), "text"),
        same(
            V::TextArray(vec!["a,b".into(), "{braces}".into(), "back\\slash".into()]),
            "text[]",
        ),
        same(V::Xml("<a>1</a>".into()), "xml"),
        same(V::XmlArray(vec!["<b/>".into()]), "xml[]"),
        same(V::TsQuery("'fat' & ( 'rat' | !'cat' )".into()), "tsquery"),
        same(V::TsQuery("'super':*AB <-> 'cat'".into()), "tsquery"),
        same(
            V::TsVector(vec![
                Lexeme {
                    position: Some(1),
                    weight: Some(LexemeWeight::A),
                    data: "fat".into(),
                },
                Lexeme {
                    position: Some(2),
                    weight: Some(LexemeWeight::D),
                    data: "rat".into(),
                },
            ]),
            "tsvector",
        ),
        same(
            V::Uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into()),
            "uuid",
        ),
        same(
            V::UuidArray(vec!["00000000-0000-0000-0000-000000000001".into()]),
            "uuid[]",
        ),
        same(
            V::Hstore(vec![("a".into(), Some("1".into())), ("b".into(), None)]),
            "hstore",
        ),
    ];
    all.push(same(V::Bytea(Vec::new()), "bytea"));
    all
}

#[test]
fn every_pg_value_goes_in_as_a_parameter_and_comes_back_from_its_column() {
    let server = Server::start(ServerKind::Postgres);
    let db = Databases::default();
    let s = settings(&server, POSTGRES_PASSWORD);
    let rt = runtime();
    rt.block_on(db.query_batch(&s, "CREATE EXTENSION IF NOT EXISTS hstore"))
        .unwrap();
    let mut wrong = Vec::new();
    for (value, ty, back) in cases() {
        let sql = format!("SELECT $1::{ty} AS v");
        let expected = format!("{:?}", back.as_ref().unwrap_or(&value));
        match rt.block_on(db.query(&s, &sql, std::slice::from_ref(&value))) {
            Ok(rows) => {
                let got = format!("{:?}", rows[0][0].value);
                if got != expected || rows[0][0].column_name != "v" {
                    wrong.push(format!(
                        "{ty}: sent {value:?}\n  got  {got}\n  want {expected}"
                    ));
                }
            }
            Err(e) => wrong.push(format!("{ty}: sent {value:?}: {e:?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_table_is_created_written_and_read_and_refusals_are_the_interfaces_errors() {
    let server = Server::start(ServerKind::Postgres);
    let db = Databases::default();
    let s = settings(&server, POSTGRES_PASSWORD);
    let rt = runtime();
    rt.block_on(db.query_batch(
        &s,
        "CREATE TABLE items (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, \
         name text NOT NULL, price numeric(8,2), seen interval); \
         CREATE TABLE other (n int4range)",
    ))
    .unwrap();
    let inserted = rt
        .block_on(db.execute(
            &s,
            "INSERT INTO items (name, price, seen) VALUES ($1, $2, '1 day 02:00:03.5'), ($3, NULL, NULL)",
            &[
                PgValue::Text("tea".into()),
                PgValue::Numeric("3.5".into()),
                PgValue::Text("cake".into()),
            ],
        ))
        .unwrap();
    assert_eq!(inserted, 2);
    let rows = rt
        .block_on(db.query(
            &s,
            "SELECT id, name, price, seen FROM items ORDER BY id",
            &[],
        ))
        .unwrap();
    assert_eq!(rows.len(), 2);
    let columns: Vec<&str> = rows[0].iter().map(|e| e.column_name.as_str()).collect();
    assert_eq!(columns, ["id", "name", "price", "seen"]);
    assert_eq!(
        format!("{:?}", rows[0][2].value),
        r#"PgValue::Numeric("3.50")"#
    );
    assert_eq!(
        format!("{:?}", rows[0][3].value),
        r#"PgValue::Text("P0Y0M1DT2H0M3.500000S")"#
    );
    assert_eq!(format!("{:?}", rows[1][2].value), "PgValue::Null");

    let invalid_params = |r: Result<Vec<_>, QueryError>| match r {
        Err(QueryError::InvalidParams(why)) => why,
        other => panic!("not invalid-params: {other:?}"),
    };
    let why = invalid_params(rt.block_on(db.query(
        &s,
        "SELECT $1::int4",
        &[PgValue::Text("abc".into())],
    )));
    assert!(
        why.contains("invalid input syntax for type integer"),
        "{why}"
    );
    let why = invalid_params(rt.block_on(db.query(&s, "SELECT $1::int4", &[])));
    assert!(why.contains("takes 1 parameter"), "{why}");
    match rt.block_on(db.query(&s, "SELEC 1", &[])) {
        Err(QueryError::InvalidQuery(why)) => assert!(why.contains("syntax error"), "{why}"),
        other => panic!("not invalid-query: {other:?}"),
    }
    match rt.block_on(db.query(&s, "SELECT int4range(1, 5) AS r", &[])) {
        Err(QueryError::Unexpected(why)) => {
            assert!(why.contains("\"r\"") && why.contains("int4range"), "{why}")
        }
        other => panic!("not unexpected: {other:?}"),
    }
}

#[test]
fn a_wrong_password_is_an_error_that_does_not_carry_it() {
    let server = Server::start(ServerKind::Postgres);
    let db = Databases::default();
    let wrong = "not-the-password-Xq7";
    let s = settings(&server, wrong);
    assert!(!format!("{s:?}").contains(wrong));
    match runtime().block_on(db.query(&s, "SELECT 1", &[])) {
        Err(QueryError::Unexpected(why)) => {
            assert!(why.contains("password authentication failed"), "{why}");
            assert!(!why.contains(wrong), "{why}");
        }
        other => panic!("not unexpected: {other:?}"),
    }
}

fn cli(node: &flotilla_tests::Node, args: &[&str]) -> (bool, String) {
    let out = node.cli(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// wasmCloud's sqldb-postgres-query manifest, unchanged but for the image, with its component
/// in Python (componentize-py): the externally made config `default-postgres` it references is
/// `flotilla config put`, and `flotilla call` runs its export. With a wrong password the call
/// answers the interface's error; the password is in no log, status or answer.
#[test]
fn wasmclouds_sqldb_postgres_query_runs_with_a_named_config_and_flotilla_call() {
    use flotilla_tests::harness::toolchains::{build_python_postgres, wasm_or_skip};
    let Some(wasm) = wasm_or_skip(build_python_postgres()) else {
        return;
    };
    let server = Server::start(ServerKind::Postgres);
    let c = flotilla_tests::Cluster::start(&[]);
    let node = &c.nodes[0];
    let put_config = |password: &str| put_default_postgres(node, &server, password);
    put_config(POSTGRES_PASSWORD);
    let digest = node.upload(&wasm);
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/python-postgres/wadm.yaml"
    ))
    .unwrap()
    .replace("file://./app.wasm", &digest);
    node.deploy(&manifest).unwrap();
    let app = "rust-sqldb-postgres-query";
    let call = || {
        cli(
            node,
            &["call", app, "querier", "wasmcloud:examples/invoke.call"],
        )
    };
    let answer = flotilla_tests::wait_for(
        "the component to answer",
        std::time::Duration::from_secs(120),
        || {
            let (ok, text) = call();
            ok.then_some(text)
        },
    );
    assert!(
        answer.contains("SUCCESS") && answer.contains("inserted example row!"),
        "{answer}"
    );
    let (_, again) = call();
    assert!(again.contains("(id 2)"), "a second row: {again}");

    // A wrong password: the config change rolls out, and the call answers the error.
    let wrong = "wrong-pg-password-Zt9";
    put_config(wrong);
    let failed = flotilla_tests::wait_for(
        "the new config to reach the component",
        std::time::Duration::from_secs(60),
        || {
            let (_, text) = call();
            text.contains("password authentication failed")
                .then_some(text)
        },
    );
    assert!(failed.contains("ERROR"), "{failed}");
    let status = cli(node, &["app", "status", app]).1;
    assert!(
        status.contains("password authentication failed"),
        "the link's failure is in the status: {status}"
    );
    let logs = cli(node, &["app", "logs", app]).1;
    for (what, text) in [
        ("answer", &failed),
        ("status", &status),
        ("app log", &logs),
        ("node log", &node.log_text()),
    ] {
        assert!(
            !text.contains(wrong),
            "the password is in the {what}: {text}"
        );
    }
}

/// An HTTP request to `addr`: status and the answer as JSON (Null when it is not JSON).
/// wasmCloud's http-task-manager (ported to Python; its manifest unchanged but for the image and
/// the address) keeps tasks in PostgreSQL: migrations, submit, list by group, lease, release,
/// complete, with the original's answers and errors; its exported `tasks` interface answers
/// `flotilla call` from the same rows.
#[test]
fn wasmclouds_http_task_manager_keeps_tasks_in_postgres() {
    use flotilla_tests::harness::toolchains::{build_python_task_manager, wasm_or_skip};
    use serde_json::json;
    let Some(wasm) = wasm_or_skip(build_python_task_manager()) else {
        return;
    };
    let server = Server::start(ServerKind::Postgres);
    let c = flotilla_tests::Cluster::start(&[]);
    let node = &c.nodes[0];
    put_default_postgres(node, &server, POSTGRES_PASSWORD);
    let digest = node.upload(&wasm);
    let addr = flotilla_tests::free_addr();
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/python-task-manager/wadm.yaml"
    ))
    .unwrap()
    .replace("image: file://./app.wasm", &format!("image: {digest}"))
    .replace("0.0.0.0:8000", &addr);
    node.deploy(&manifest).unwrap();
    let url = |path: &str| format!("http://{addr}{path}");
    flotilla_tests::wait_for(
        "the task manager to be ready",
        std::time::Duration::from_secs(120),
        || (http_json("GET", &url("/ready"), None).0 == 200).then_some(()),
    );
    for _ in 0..2 {
        let (status, answer) = http_json("POST", &url("/admin/v1/db/migrate"), None);
        assert_eq!((status, &answer), (200, &json!({"status": "success"})));
    }

    // A submission that is not JSON is refused as the original refuses it.
    let plain = flotilla_tests::client()
        .post(url("/api/v1/tasks"))
        .body("group_id=x")
        .send()
        .unwrap();
    assert_eq!(plain.status().as_u16(), 400);
    let refused: serde_json::Value = plain.json().unwrap();
    assert_eq!(refused["error"]["code"], "invalid-content-type");

    let submit = json!({"group_id": "images", "task_data": {"image": "ferris.png", "scale": 2}});
    let (status, submitted) = http_json("POST", &url("/api/v1/tasks"), Some(submit));
    assert_eq!(status, 200, "{submitted}");
    let task = &submitted["data"];
    let id = task["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(task["status"], "Pending");
    let data: serde_json::Value =
        serde_json::from_str(task["data_json"].as_str().unwrap()).unwrap();
    assert_eq!(
        data,
        json!({"image": "ferris.png", "scale": 2}),
        "jsonb both ways"
    );
    assert!(
        task["submitted_at"]["timestamp"]["date"]["Ymd"][0]
            .as_i64()
            .unwrap()
            >= 2024,
        "a timestamptz: {task}"
    );
    assert!(task["leased_at"].is_null());

    let (_, listed) = http_json("GET", &url("/api/v1/tasks?group_id=images"), None);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    let (_, other) = http_json("GET", &url("/api/v1/tasks?group_id=other"), None);
    assert_eq!(other["data"], json!([]), "{other}");

    // Lease, a second lease refused, release with the wrong lease refused, then the right one.
    let task_url = |action: &str| url(&format!("/api/v1/tasks/{id}/{action}"));
    let (status, leased) = http_json("POST", &task_url("lease"), Some(json!({"worker_id": "w1"})));
    assert_eq!(status, 200, "{leased}");
    let lease = leased["data"].as_str().unwrap().to_string();
    let (status, again) = http_json("POST", &task_url("lease"), Some(json!({"worker_id": "w2"})));
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (500, Some("task-lease-err"))
    );
    let wrong = json!({"worker_id": "w1", "lease_id": "00000000-0000-0000-0000-000000000000"});
    let (status, _) = http_json("POST", &task_url("release"), Some(wrong));
    assert_eq!(status, 500);
    let right = json!({"worker_id": "w1", "lease_id": lease});
    let (status, released) = http_json("POST", &task_url("release"), Some(right));
    assert_eq!(status, 200, "{released}");
    let (status, _) = http_json("POST", &task_url("lease"), Some(json!({"worker_id": "w2"})));
    assert_eq!(status, 200);
    let (status, done) = http_json(
        "POST",
        &task_url("complete"),
        Some(json!({"worker_id": "w2"})),
    );
    assert_eq!(status, 200, "{done}");
    let (_, fetched) = http_json("GET", &url(&format!("/api/v1/tasks/{id}")), None);
    assert_eq!(fetched["data"]["status"], "Completed", "{fetched}");
    assert_eq!(fetched["data"]["lease_worker_id"], "w2");
    assert!(!fetched["data"]["completed_at"].is_null());
    let (status, missing) = http_json("GET", &url("/nowhere"), None);
    assert_eq!(
        (status, missing["error"]["code"].as_str()),
        (404, Some("invalid-endpoint"))
    );

    // The exported interface, from the same rows.
    let (ok, called) = cli(
        node,
        &[
            "call",
            "http-task-manager",
            "http-task-mgr",
            "wasmcloud:task-manager/tasks.get-task",
            &id,
        ],
    );
    assert!(ok, "{called}");
    assert!(
        called.contains(&id) && called.contains("completed"),
        "{called}"
    );
}

/// A database that cannot be reached fails calls at once for a moment instead of each waiting
/// out the connect timeout, and is used again as soon as it is back.
#[test]
fn a_down_database_fails_calls_at_once_and_is_used_again_when_back() {
    let mut server = Server::start(ServerKind::Postgres);
    let s = settings(&server, POSTGRES_PASSWORD);
    let db = Databases::default();
    let rt = runtime();
    rt.block_on(db.query(&s, "SELECT 1", &[])).unwrap();
    server.stop();
    // The pooled connection fails first (the server went away under it), then connecting does.
    let first = flotilla_tests::wait_for(
        "a call to fail connecting",
        std::time::Duration::from_secs(30),
        || match rt.block_on(db.query(&s, "SELECT 1", &[])) {
            Err(QueryError::Unexpected(why)) if why.contains("connecting to") => Some(why),
            _ => None,
        },
    );
    assert!(!first.contains("not tried again"), "{first}");
    let second = rt.block_on(db.query(&s, "SELECT 1", &[]));
    let Err(QueryError::Unexpected(second)) = second else {
        panic!("not unexpected: {second:?}")
    };
    assert!(second.contains("not tried again"), "{second}");
    server.resume();
    flotilla_tests::wait_for(
        "the database to be used again",
        std::time::Duration::from_secs(30),
        || rt.block_on(db.query(&s, "SELECT 1", &[])).ok(),
    );
}
