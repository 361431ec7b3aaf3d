//! Result columns: each value arrives in PostgreSQL's binary format and becomes the `pg-value`
//! of its column's type. Types the WIT has no variant for are told by name in the error
//! (`column "c" has type int4range, which has no pg-value`), except `interval`, `oid`, `xid`
//! and the like, which come as `text` (ISO 8601 `P1Y2M3DT4H5M6S`) and `int8`.
//! `money` is read with two decimal places (the `C` locale's `lc_monetary`).

use std::error::Error;

use postgres_protocol::types as wire;
use tokio_postgres::types::{FromSql, Kind, Type};

use super::floats;
use super::pg::{
    Date, Interval, Lexeme, LexemeWeight, MacAddressEui48, MacAddressEui64, Offset, PgValue, Time,
    TimeTz, Timestamp, TimestampTz,
};

type Failure = Box<dyn Error + Sync + Send>;

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400_000_000;
/// PostgreSQL counts days and timestamps from 2000-01-01.
const EPOCH_YEAR: i32 = 2000;
/// Cents in a unit of `money` (two decimal places).
const MONEY_SCALE: i64 = 100;

/// One column of a row as it came over the wire: its bytes, or `None` for `NULL`.
pub struct Raw<'a>(pub Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Self, Failure> {
        Ok(Raw(Some(raw)))
    }

    fn from_sql_null(_ty: &Type) -> Result<Self, Failure> {
        Ok(Raw(None))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// The `pg-value` of a column of type `ty` holding `raw`.
pub fn value(ty: &Type, raw: Option<&[u8]>) -> Result<PgValue, String> {
    let Some(raw) = raw else {
        return Ok(PgValue::Null);
    };
    decode(ty, raw).map_err(|e| e.to_string())
}

fn decode(ty: &Type, raw: &[u8]) -> Result<PgValue, Failure> {
    use PgValue as V;
    // `int2vector` is an array on the wire but a type of its own.
    if let (Kind::Array(element), false) = (ty.kind(), *ty == Type::INT2_VECTOR) {
        return decode_array(ty, element, raw);
    }
    Ok(match *ty {
        Type::BOOL => V::Bool(wire::bool_from_sql(raw)?),
        Type::INT2 => V::Int2(wire::int2_from_sql(raw)?),
        Type::INT4 => V::Int4(wire::int4_from_sql(raw)?),
        Type::INT8 => V::Int8(wire::int8_from_sql(raw)?),
        Type::OID | Type::XID | Type::CID | Type::REGPROC | Type::REGTYPE | Type::REGCLASS => {
            V::Int8(i64::from(wire::oid_from_sql(raw)?))
        }
        Type::XID8 => V::Int8(wire::int8_from_sql(raw)?),
        Type::INT2_VECTOR => V::Int2Vector(int2vector(raw)?),
        Type::FLOAT4 => V::Float4(floats::from_f32(wire::float4_from_sql(raw)?)),
        Type::FLOAT8 => V::Float8(floats::from_f64(wire::float8_from_sql(raw)?)),
        Type::NUMERIC => V::Numeric(numeric(raw)?),
        Type::MONEY => V::Money(money(raw)?),
        Type::BIT => V::Bit(bit(raw)?),
        Type::VARBIT => V::Varbit(varbit(raw)?),
        Type::BYTEA => V::Bytea(raw.to_vec()),
        Type::CHAR => V::Char((1, raw.to_vec())),
        Type::BPCHAR => V::Char((char_count(raw)?, raw.to_vec())),
        Type::VARCHAR => V::Varchar((Some(char_count(raw)?), raw.to_vec())),
        Type::TEXT | Type::UNKNOWN => V::Text(text(raw)?),
        Type::NAME => V::Name(text(raw)?),
        Type::XML => V::Xml(text(raw)?),
        Type::JSON => V::Json(text(raw)?),
        Type::JSONB => V::Jsonb(jsonb(raw)?),
        Type::CIDR => V::Cidr(inet(raw, true)?),
        Type::INET => V::Inet(inet(raw, false)?),
        Type::MACADDR => V::Macaddr(macaddr(raw)?),
        Type::MACADDR8 => V::Macaddr8(macaddr8(raw)?),
        Type::POINT => V::Point(point(raw)?),
        Type::BOX => V::Box(geo_box(raw)?),
        Type::CIRCLE => V::Circle(circle(raw)?),
        Type::LINE => V::Line(line(raw)?),
        Type::LSEG => V::Lseg(lseg(raw)?),
        Type::PATH => V::Path(path(raw)?),
        Type::POLYGON => V::Polygon(polygon(raw)?),
        Type::DATE => V::Date(date(wire::date_from_sql(raw)?)?),
        Type::DATE_RANGE => V::Interval(date_range(raw)?),
        Type::TIME => V::Time(time(wire::time_from_sql(raw)?)),
        Type::TIMETZ => V::TimeTz(time_tz(raw)?),
        Type::TIMESTAMP => V::Timestamp(timestamp(wire::timestamp_from_sql(raw)?)?),
        Type::TIMESTAMPTZ => V::TimestampTz(TimestampTz {
            timestamp: timestamp(wire::timestamp_from_sql(raw)?)?,
            offset: Offset::EasternHemisphereSecs(0),
        }),
        Type::INTERVAL => V::Text(interval(raw)?),
        Type::PG_LSN => V::PgLsn(wire::lsn_from_sql(raw)?),
        Type::PG_SNAPSHOT | Type::TXID_SNAPSHOT => V::PgSnapshot(snapshot(raw)?),
        Type::TS_VECTOR => V::TsVector(ts_vector(raw)?),
        Type::TSQUERY => V::TsQuery(ts_query(raw)?),
        Type::UUID => V::Uuid(uuid(raw)?),
        _ if ty.name() == "hstore" => V::Hstore(hstore(raw)?),
        _ if ty.name() == "citext" => V::Text(text(raw)?),
        _ => return Err(no_variant(ty)),
    })
}

fn no_variant(ty: &Type) -> Failure {
    format!("type {}, which has no pg-value", ty.name()).into()
}

/// Arrays of the element types the WIT has list variants for.
fn decode_array(ty: &Type, element: &Type, raw: &[u8]) -> Result<PgValue, Failure> {
    use PgValue as V;
    let array = wire::array_from_sql(raw)?;
    let mut items: Vec<&[u8]> = Vec::new();
    let mut values = array.values();
    while let Some(v) = fallible_iterator::FallibleIterator::next(&mut values)? {
        items.push(v.ok_or("an array with a NULL element has no pg-value")?);
    }
    fn each<T>(
        items: &[&[u8]],
        f: impl Fn(&[u8]) -> Result<T, Failure>,
    ) -> Result<Vec<T>, Failure> {
        items.iter().map(|raw| f(raw)).collect()
    }
    Ok(match *element {
        Type::BOOL => V::BoolArray(each(&items, wire::bool_from_sql)?),
        Type::INT2 => V::Int2Array(each(&items, wire::int2_from_sql)?),
        Type::INT4 => V::Int4Array(each(&items, wire::int4_from_sql)?),
        Type::INT8 => V::Int8Array(each(&items, wire::int8_from_sql)?),
        Type::INT2_VECTOR => V::Int2VectorArray(each(&items, int2vector)?),
        Type::FLOAT4 => V::Float4Array(each(&items, |r| {
            Ok(floats::from_f32(wire::float4_from_sql(r)?))
        })?),
        Type::FLOAT8 => V::Float8Array(each(&items, |r| {
            Ok(floats::from_f64(wire::float8_from_sql(r)?))
        })?),
        Type::NUMERIC => V::NumericArray(each(&items, numeric)?),
        Type::MONEY => V::MoneyArray(each(&items, money)?),
        Type::BIT => V::BitArray(each(&items, bit)?),
        Type::VARBIT => V::VarbitArray(each(&items, varbit)?),
        Type::BYTEA => V::ByteaArray(each(&items, |r| Ok(r.to_vec()))?),
        Type::CHAR => V::CharArray(each(&items, |r| Ok((1, r.to_vec())))?),
        Type::BPCHAR => V::CharArray(each(&items, |r| Ok((char_count(r)?, r.to_vec())))?),
        Type::VARCHAR => V::VarcharArray(each(&items, |r| Ok((Some(char_count(r)?), r.to_vec())))?),
        Type::TEXT => V::TextArray(each(&items, text)?),
        Type::NAME => V::NameArray(each(&items, text)?),
        Type::XML => V::XmlArray(each(&items, text)?),
        Type::JSON => V::JsonArray(each(&items, text)?),
        Type::JSONB => V::JsonbArray(each(&items, jsonb)?),
        Type::CIDR => V::CidrArray(each(&items, |r| inet(r, true))?),
        Type::INET => V::InetArray(each(&items, |r| inet(r, false))?),
        Type::MACADDR => V::MacaddrArray(each(&items, macaddr)?),
        Type::MACADDR8 => V::Macaddr8Array(each(&items, macaddr8)?),
        Type::POINT => V::PointArray(each(&items, point)?),
        Type::BOX => V::BoxArray(each(&items, geo_box)?),
        Type::CIRCLE => V::CircleArray(each(&items, circle)?),
        Type::LINE => V::LineArray(each(&items, line)?),
        Type::LSEG => V::LsegArray(each(&items, lseg)?),
        Type::PATH => V::PathArray(each(&items, path)?),
        Type::POLYGON => V::PolygonArray(each(&items, polygon)?),
        Type::DATE => V::DateArray(each(&items, |r| date(wire::date_from_sql(r)?))?),
        Type::DATE_RANGE => V::IntervalArray(each(&items, date_range)?),
        Type::TIME => V::TimeArray(each(&items, |r| Ok(time(wire::time_from_sql(r)?)))?),
        Type::TIMETZ => V::TimeTzArray(each(&items, time_tz)?),
        Type::TIMESTAMP => {
            V::TimestampArray(each(&items, |r| timestamp(wire::timestamp_from_sql(r)?))?)
        }
        Type::TIMESTAMPTZ => V::TimestampTzArray(each(&items, |r| {
            Ok(TimestampTz {
                timestamp: timestamp(wire::timestamp_from_sql(r)?)?,
                offset: Offset::EasternHemisphereSecs(0),
            })
        })?),
        Type::PG_LSN => V::PgLsnArray(each(&items, wire::lsn_from_sql)?),
        Type::UUID => V::UuidArray(each(&items, uuid)?),
        _ => return Err(no_variant(ty)),
    })
}

fn text(raw: &[u8]) -> Result<String, Failure> {
    Ok(wire::text_from_sql(raw)?.to_string())
}

/// Characters of a `char(n)` or `varchar` value.
fn char_count(raw: &[u8]) -> Result<u32, Failure> {
    Ok(u32::try_from(wire::text_from_sql(raw)?.chars().count())?)
}

/// `jsonb` is a version byte (1) and the text.
fn jsonb(raw: &[u8]) -> Result<String, Failure> {
    match raw.split_first() {
        Some((1, rest)) => text(rest),
        _ => Err("jsonb in an unknown binary version".into()),
    }
}

fn int2vector(raw: &[u8]) -> Result<Vec<i16>, Failure> {
    let array = wire::array_from_sql(raw)?;
    let mut out = Vec::new();
    let mut values = array.values();
    while let Some(v) = fallible_iterator::FallibleIterator::next(&mut values)? {
        out.push(wire::int2_from_sql(v.ok_or("NULL in an int2vector")?)?);
    }
    Ok(out)
}

/// Big-endian reads of fixed-size fields.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], Failure> {
        if self.0.len() < N {
            return Err("a value shorter than its type".into());
        }
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        Ok(head.try_into().expect("N bytes"))
    }
    fn i16(&mut self) -> Result<i16, Failure> {
        Ok(i16::from_be_bytes(self.take()?))
    }
    fn u16(&mut self) -> Result<u16, Failure> {
        Ok(u16::from_be_bytes(self.take()?))
    }
    fn i32(&mut self) -> Result<i32, Failure> {
        Ok(i32::from_be_bytes(self.take()?))
    }
    fn i64(&mut self) -> Result<i64, Failure> {
        Ok(i64::from_be_bytes(self.take()?))
    }
    fn u8(&mut self) -> Result<u8, Failure> {
        Ok(self.take::<1>()?[0])
    }
    fn f64(&mut self) -> Result<floats::Hashable, Failure> {
        Ok(floats::from_f64(f64::from_be_bytes(self.take()?)))
    }
    fn point(&mut self) -> Result<(floats::Hashable, floats::Hashable), Failure> {
        Ok((self.f64()?, self.f64()?))
    }
    /// A NUL-terminated string.
    fn cstring(&mut self) -> Result<String, Failure> {
        let end = self
            .0
            .iter()
            .position(|b| *b == 0)
            .ok_or("an unterminated string")?;
        let s = std::str::from_utf8(&self.0[..end])?.to_string();
        self.0 = &self.0[end + 1..];
        Ok(s)
    }
}

/// `numeric`: digit count, weight (of the first base-10000 digit), sign, display scale, digits.
fn numeric(raw: &[u8]) -> Result<String, Failure> {
    const NEGATIVE: u16 = 0x4000;
    const NAN: u16 = 0xC000;
    const POSITIVE_INFINITY: u16 = 0xD000;
    const NEGATIVE_INFINITY: u16 = 0xF000;
    let mut r = Reader(raw);
    let count = usize::try_from(r.i16()?)?;
    let weight = i32::from(r.i16()?);
    let sign = r.u16()?;
    let scale = usize::from(r.u16()?);
    match sign {
        NAN => return Ok("NaN".into()),
        POSITIVE_INFINITY => return Ok("Infinity".into()),
        NEGATIVE_INFINITY => return Ok("-Infinity".into()),
        _ => {}
    }
    let digits: Vec<i16> = (0..count).map(|_| r.i16()).collect::<Result<_, _>>()?;
    let digit = |i: i32| -> i16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i))
            .copied()
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == NEGATIVE {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        out.push_str(&digit(0).to_string());
        for i in 1..=weight {
            out.push_str(&format!("{:04}", digit(i)));
        }
    }
    if scale > 0 {
        let mut fraction = String::new();
        let mut i = weight + 1;
        while fraction.len() < scale {
            fraction.push_str(&format!("{:04}", digit(i)));
            i += 1;
        }
        fraction.truncate(scale);
        out.push('.');
        out.push_str(&fraction);
    }
    Ok(out)
}

fn money(raw: &[u8]) -> Result<String, Failure> {
    let cents = wire::int8_from_sql(raw)?;
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    let scale = MONEY_SCALE.unsigned_abs();
    Ok(format!("{sign}{}.{:02}", cents / scale, cents % scale))
}

fn bit(raw: &[u8]) -> Result<(u32, Vec<u8>), Failure> {
    let v = wire::varbit_from_sql(raw)?;
    Ok((u32::try_from(v.len())?, v.bytes().to_vec()))
}

fn varbit(raw: &[u8]) -> Result<(Option<u32>, Vec<u8>), Failure> {
    let (len, bytes) = bit(raw)?;
    Ok((Some(len), bytes))
}

/// `10.0.0.0/8` for a `cidr`; an `inet` drops the netmask when it covers the whole address.
fn inet(raw: &[u8], cidr: bool) -> Result<String, Failure> {
    let v = wire::inet_from_sql(raw)?;
    let full = if v.addr().is_ipv4() { 32 } else { 128 };
    Ok(if cidr || v.netmask() != full {
        format!("{}/{}", v.addr(), v.netmask())
    } else {
        v.addr().to_string()
    })
}

fn macaddr(raw: &[u8]) -> Result<MacAddressEui48, Failure> {
    let [a, b, c, d, e, f] = wire::macaddr_from_sql(raw)?;
    Ok(MacAddressEui48 {
        bytes: (a, b, c, d, e, f),
    })
}

fn macaddr8(raw: &[u8]) -> Result<MacAddressEui64, Failure> {
    let [a, b, c, d, e, f, g, h] = Reader(raw).take::<8>()?;
    Ok(MacAddressEui64 {
        bytes: (a, b, c, d, e, f, g, h),
    })
}

type Point = (floats::Hashable, floats::Hashable);

fn point(raw: &[u8]) -> Result<Point, Failure> {
    Reader(raw).point()
}

/// A box comes upper-right corner first; the WIT's is lower-left first.
fn geo_box(raw: &[u8]) -> Result<(Point, Point), Failure> {
    let mut r = Reader(raw);
    let high = r.point()?;
    let low = r.point()?;
    Ok((low, high))
}

fn circle(raw: &[u8]) -> Result<(Point, floats::Hashable), Failure> {
    let mut r = Reader(raw);
    Ok((r.point()?, r.f64()?))
}

fn lseg(raw: &[u8]) -> Result<(Point, Point), Failure> {
    let mut r = Reader(raw);
    Ok((r.point()?, r.point()?))
}

/// A line is stored as `Ax + By + C = 0`; the WIT's is two of its points.
fn line(raw: &[u8]) -> Result<(Point, Point), Failure> {
    let mut r = Reader(raw);
    let [a, b, c] = [r.f64()?, r.f64()?, r.f64()?].map(floats::to_f64);
    let ((x1, y1), (x2, y2)) = if b != 0.0 {
        ((0.0, -c / b), (1.0, -(a + c) / b))
    } else {
        ((-c / a, 0.0), (-c / a, 1.0))
    };
    let p = |x: f64, y: f64| (floats::from_f64(x), floats::from_f64(y));
    Ok((p(x1, y1), p(x2, y2)))
}

fn path(raw: &[u8]) -> Result<Vec<Point>, Failure> {
    let mut r = Reader(raw);
    let _closed = r.u8()?;
    points(&mut r)
}

fn polygon(raw: &[u8]) -> Result<Vec<Point>, Failure> {
    points(&mut Reader(raw))
}

fn points(r: &mut Reader) -> Result<Vec<Point>, Failure> {
    let count = usize::try_from(r.i32()?)?;
    (0..count).map(|_| r.point()).collect()
}

/// Days since 2000-01-01, or infinity.
fn date(days: i32) -> Result<Date, Failure> {
    use chrono::Datelike;
    Ok(match days {
        i32::MAX => Date::PositiveInfinity,
        i32::MIN => Date::NegativeInfinity,
        days => {
            let epoch = chrono::NaiveDate::from_ymd_opt(EPOCH_YEAR, 1, 1).expect("a date");
            let d = epoch
                .checked_add_signed(chrono::TimeDelta::days(i64::from(days)))
                .ok_or("a date beyond ±262,000 years")?;
            Date::Ymd((d.year(), d.month(), d.day()))
        }
    })
}

fn time(micros: i64) -> Time {
    let micros = micros.rem_euclid(DAY_MICROS);
    let seconds = micros / 1_000_000;
    Time {
        hour: (seconds / 3600) as u32,
        min: (seconds / 60 % 60) as u32,
        sec: (seconds % 60) as u32,
        micro: (micros % 1_000_000) as u32,
    }
}

fn timestamp(micros: i64) -> Result<Timestamp, Failure> {
    let midnight = Time {
        hour: 0,
        min: 0,
        sec: 0,
        micro: 0,
    };
    Ok(match micros {
        i64::MAX => Timestamp {
            date: Date::PositiveInfinity,
            time: midnight,
        },
        i64::MIN => Timestamp {
            date: Date::NegativeInfinity,
            time: midnight,
        },
        micros => Timestamp {
            date: date(i32::try_from(micros.div_euclid(DAY_MICROS))?)?,
            time: time(micros.rem_euclid(DAY_MICROS)),
        },
    })
}

/// `timetz`: the time, then the zone in seconds *west* of UTC.
fn time_tz(raw: &[u8]) -> Result<TimeTz, Failure> {
    let mut r = Reader(raw);
    let t = time(r.i64()?);
    let east = -r.i32()?;
    let sign = if east < 0 { '-' } else { '+' };
    let east = east.unsigned_abs();
    let mut zone = format!("{sign}{:02}:{:02}", east / 3600, east / 60 % 60);
    if east % 60 != 0 {
        zone.push_str(&format!(":{:02}", east % 60));
    }
    Ok(TimeTz {
        timesonze: zone,
        time: t,
    })
}

/// `interval`: microseconds, days, months, as ISO 8601 (which PostgreSQL also reads).
fn interval(raw: &[u8]) -> Result<String, Failure> {
    let mut r = Reader(raw);
    let micros = r.i64()?;
    let days = r.i32()?;
    let months = r.i32()?;
    let mut out = format!("P{}Y{}M{}D", months / 12, months % 12, days);
    let sign = if micros < 0 { "-" } else { "" };
    let micros = micros.unsigned_abs();
    let seconds = micros / 1_000_000;
    out.push_str(&format!(
        "T{sign}{}H{sign}{}M{sign}{}.{:06}S",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        micros % 1_000_000
    ));
    Ok(out)
}

/// A `daterange` (the WIT's `interval`); an unbounded end is an infinite date, and the empty
/// range is `(-infinity,-infinity)`.
fn date_range(raw: &[u8]) -> Result<Interval, Failure> {
    use wire::{Range, RangeBound};
    let bound = |b: RangeBound<Option<&[u8]>>, unbounded: Date| -> Result<(Date, bool), Failure> {
        Ok(match b {
            RangeBound::Inclusive(Some(v)) => (date(wire::date_from_sql(v)?)?, true),
            RangeBound::Exclusive(Some(v)) => (date(wire::date_from_sql(v)?)?, false),
            _ => (unbounded, false),
        })
    };
    match wire::range_from_sql(raw)? {
        Range::Empty => Ok(Interval {
            start: Date::NegativeInfinity,
            start_inclusive: false,
            end: Date::NegativeInfinity,
            end_inclusive: false,
        }),
        Range::Nonempty(low, high) => {
            let (start, start_inclusive) = bound(low, Date::NegativeInfinity)?;
            let (end, end_inclusive) = bound(high, Date::PositiveInfinity)?;
            Ok(Interval {
                start,
                start_inclusive,
                end,
                end_inclusive,
            })
        }
    }
}

/// `pg_snapshot` and `txid_snapshot`: count of in-progress ids, xmin, xmax, the ids.
fn snapshot(raw: &[u8]) -> Result<(i64, i64, Vec<i64>), Failure> {
    let mut r = Reader(raw);
    let count = usize::try_from(r.i32()?)?;
    let xmin = r.i64()?;
    let xmax = r.i64()?;
    let ids = (0..count).map(|_| r.i64()).collect::<Result<_, _>>()?;
    Ok((xmin, xmax, ids))
}

/// `tsvector`: lexemes, each with its positions (weight in the top two bits); one WIT lexeme
/// per position.
fn ts_vector(raw: &[u8]) -> Result<Vec<Lexeme>, Failure> {
    const POSITION_BITS: u16 = 0x3fff;
    let mut r = Reader(raw);
    let count = r.i32()?;
    let mut out = Vec::new();
    for _ in 0..count {
        let data = r.cstring()?;
        let positions = r.u16()?;
        if positions == 0 {
            out.push(Lexeme {
                position: None,
                weight: None,
                data: data.clone(),
            });
        }
        for _ in 0..positions {
            let p = r.u16()?;
            let weight = match p >> 14 {
                3 => LexemeWeight::A,
                2 => LexemeWeight::B,
                1 => LexemeWeight::C,
                _ => LexemeWeight::D,
            };
            out.push(Lexeme {
                position: Some(p & POSITION_BITS),
                weight: Some(weight),
                data: data.clone(),
            });
        }
    }
    Ok(out)
}

/// One node of a `tsquery`.
enum Query {
    Word {
        text: String,
        weights: u8,
        prefix: bool,
    },
    Not(Box<Query>),
    Binary {
        op: String,
        left: Box<Query>,
        right: Box<Query>,
    },
}

/// `tsquery`: its items in prefix order (an operator, then its right operand, then its left),
/// written back in PostgreSQL's own text form.
fn ts_query(raw: &[u8]) -> Result<String, Failure> {
    let mut r = Reader(raw);
    let count = r.i32()?;
    if count == 0 {
        return Ok(String::new());
    }
    let query = ts_query_item(&mut r)?;
    Ok(ts_query_text(&query, true))
}

fn ts_query_item(r: &mut Reader) -> Result<Query, Failure> {
    const VALUE: u8 = 1;
    const NOT: u8 = 1;
    const AND: u8 = 2;
    const OR: u8 = 3;
    const PHRASE: u8 = 4;
    if r.u8()? == VALUE {
        let weights = r.u8()?;
        let prefix = r.u8()? != 0;
        let text = r.cstring()?;
        return Ok(Query::Word {
            text,
            weights,
            prefix,
        });
    }
    let op = r.u8()?;
    if op == NOT {
        return Ok(Query::Not(Box::new(ts_query_item(r)?)));
    }
    let op = match op {
        AND => "&".to_string(),
        OR => "|".to_string(),
        PHRASE => match r.i16()? {
            1 => "<->".to_string(),
            distance => format!("<{distance}>"),
        },
        _ => return Err("a tsquery with an unknown operator".into()),
    };
    let right = Box::new(ts_query_item(r)?);
    let left = Box::new(ts_query_item(r)?);
    Ok(Query::Binary { op, left, right })
}

fn ts_query_text(q: &Query, top: bool) -> String {
    match q {
        Query::Word {
            text,
            weights,
            prefix,
        } => {
            let mut out = format!("'{}'", text.replace('\'', "''"));
            if *prefix || *weights != 0 {
                out.push(':');
                if *prefix {
                    out.push('*');
                }
                for (bit, letter) in [(8, 'A'), (4, 'B'), (2, 'C'), (1, 'D')] {
                    if weights & bit != 0 {
                        out.push(letter);
                    }
                }
            }
            out
        }
        Query::Not(inner) => format!("!{}", ts_query_text(inner, false)),
        Query::Binary { op, left, right } => {
            let inner = format!(
                "{} {op} {}",
                ts_query_text(left, false),
                ts_query_text(right, false)
            );
            if top {
                inner
            } else {
                format!("( {inner} )")
            }
        }
    }
}

fn uuid(raw: &[u8]) -> Result<String, Failure> {
    let b = wire::uuid_from_sql(raw)?;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

fn hstore(raw: &[u8]) -> Result<Vec<(String, Option<String>)>, Failure> {
    let mut entries = wire::hstore_from_sql(raw)?;
    let mut out = Vec::new();
    while let Some((k, v)) = fallible_iterator::FallibleIterator::next(&mut entries)? {
        out.push((k.to_string(), v.map(ToString::to_string)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_wire(weight: i16, sign: u16, scale: u16, digits: &[i16]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend((digits.len() as i16).to_be_bytes());
        out.extend(weight.to_be_bytes());
        out.extend(sign.to_be_bytes());
        out.extend(scale.to_be_bytes());
        for d in digits {
            out.extend(d.to_be_bytes());
        }
        out
    }

    #[test]
    fn numerics_read_as_postgres_writes_them() {
        // 12345.678 = [1, 2345, 6780] with weight 1, scale 3.
        assert_eq!(
            numeric(&numeric_wire(1, 0, 3, &[1, 2345, 6780])).unwrap(),
            "12345.678"
        );
        // -0.00012 = [1, 2000] with weight -1... as 0.0001|2000.
        assert_eq!(
            numeric(&numeric_wire(-1, 0x4000, 5, &[1, 2000])).unwrap(),
            "-0.00012"
        );
        // 10000 = [1] with weight 1 (trailing zero digits omitted).
        assert_eq!(numeric(&numeric_wire(1, 0, 0, &[1])).unwrap(), "10000");
        assert_eq!(numeric(&numeric_wire(0, 0xC000, 0, &[])).unwrap(), "NaN");
        assert_eq!(money(&(-1234i64).to_be_bytes()).unwrap(), "-12.34");
    }

    #[test]
    fn dates_count_from_2000() {
        // The generated types have Debug only.
        let same = |a: Date, b: Date| assert_eq!(format!("{a:?}"), format!("{b:?}"));
        same(date(0).unwrap(), Date::Ymd((2000, 1, 1)));
        same(date(-1).unwrap(), Date::Ymd((1999, 12, 31)));
        same(date(i32::MAX).unwrap(), Date::PositiveInfinity);
        let t = timestamp(-1).unwrap();
        same(t.date, Date::Ymd((1999, 12, 31)));
        assert_eq!((t.time.hour, t.time.sec, t.time.micro), (23, 59, 999_999));
    }
}
