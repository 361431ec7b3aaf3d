//! Query parameters: each `pg-value` is sent in PostgreSQL's text format, which the server
//! parses with the input function of the type the statement gives the parameter (`$1` of an
//! `int4` column is read as an `int4`). One text form per variant covers every type the WIT
//! names, and a value that does not fit the parameter's type is refused by the server with its
//! own message (`invalid input syntax for type integer: "abc"`).

use std::error::Error;
use std::fmt::Write as _;

use bytes::BytesMut;
use tokio_postgres::types::{Format, IsNull, ToSql, Type};

use super::floats;
use super::pg::{
    Date, Interval, Lexeme, LexemeWeight, MacAddressEui48, MacAddressEui64, Offset, PgValue, Time,
    TimeTz, Timestamp, TimestampTz,
};

/// A parameter in text format (`None`: SQL `NULL`).
#[derive(Debug)]
pub struct TextParam(pub Option<String>);

impl ToSql for TextParam {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match &self.0 {
            Some(text) => {
                out.extend_from_slice(text.as_bytes());
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    tokio_postgres::types::to_sql_checked!();
}

/// `value` as a parameter.
pub fn param(value: &PgValue) -> TextParam {
    TextParam(text(value))
}

/// PostgreSQL's text form of `value`; `None` for `null`.
pub fn text(value: &PgValue) -> Option<String> {
    use PgValue as V;
    Some(match value {
        V::Null => return None,
        V::BigInt(n) | V::Int8(n) | V::BigSerial(n) | V::Serial8(n) | V::TxidSnapshot(n) => {
            n.to_string()
        }
        V::Int8Array(list) => array(list, |n| n.to_string()),
        V::Bool(b) | V::Boolean(b) => b.to_string(),
        V::BoolArray(list) => array(list, |b| b.to_string()),
        V::Double(f) | V::Float8(f) | V::Real(f) | V::Float4(f) => float(*f),
        V::Float8Array(list) | V::Float4Array(list) => array(list, |f| float(*f)),
        V::Integer(n) | V::Int(n) | V::Int4(n) => n.to_string(),
        V::Int4Array(list) => array(list, |n| n.to_string()),
        V::Numeric(s) | V::Decimal(s) | V::Money(s) => s.clone(),
        V::NumericArray(list) | V::MoneyArray(list) => array(list, Clone::clone),
        V::Serial(n) | V::Serial4(n) => n.to_string(),
        V::SmallInt(n) | V::Int2(n) | V::SmallSerial(n) | V::Serial2(n) => n.to_string(),
        V::Int2Array(list) => array(list, |n| n.to_string()),
        V::Int2Vector(list) => int2vector(list),
        V::Int2VectorArray(list) => array(list, |v| int2vector(v)),
        V::Bit((len, bytes)) => bits(Some(*len), bytes),
        V::BitArray(list) => array(list, |(len, bytes)| bits(Some(*len), bytes)),
        V::BitVarying((len, bytes)) | V::Varbit((len, bytes)) => bits(*len, bytes),
        V::VarbitArray(list) => array(list, |(len, bytes)| bits(*len, bytes)),
        V::Bytea(bytes) => bytea(bytes),
        V::ByteaArray(list) => array(list, |b| bytea(b)),
        // The declared length is the column's business: the server pads or refuses.
        V::Char((_, bytes)) | V::Varchar((_, bytes)) => lossy(bytes),
        V::CharArray(list) => array(list, |(_, b)| lossy(b)),
        V::VarcharArray(list) => array(list, |(_, b)| lossy(b)),
        V::Cidr(s) | V::Inet(s) => s.clone(),
        V::CidrArray(list) | V::InetArray(list) => array(list, Clone::clone),
        V::Macaddr(m) => macaddr(m),
        V::MacaddrArray(list) => array(list, macaddr),
        V::Macaddr8(m) => macaddr8(m),
        V::Macaddr8Array(list) => array(list, macaddr8),
        V::Box((low, high)) => format!("({},{})", point(low), point(high)),
        // A box's text form has commas: arrays of boxes separate elements with `;`.
        V::BoxArray(list) => array_with(list, ';', |(low, high)| {
            format!("({},{})", point(low), point(high))
        }),
        V::Circle((center, radius)) => circle(center, *radius),
        V::CircleArray(list) => array(list, |(c, r)| circle(c, *r)),
        V::Line((a, b)) | V::Lseg((a, b)) => format!("[{},{}]", point(a), point(b)),
        V::LineArray(list) | V::LsegArray(list) => {
            array(list, |(a, b)| format!("[{},{}]", point(a), point(b)))
        }
        V::Path(points) => path(points),
        V::PathArray(list) => array(list, |p| path(p)),
        V::Point(p) => point(p),
        V::PointArray(list) => array(list, point),
        V::Polygon(points) => polygon(points),
        V::PolygonArray(list) => array(list, |p| polygon(p)),
        V::Date(d) => date(d),
        V::DateArray(list) => array(list, date),
        V::Interval(i) => date_range(i),
        V::IntervalArray(list) => array(list, date_range),
        V::Time(t) => time(t),
        V::TimeArray(list) => array(list, time),
        V::TimeTz(t) => time_tz(t),
        V::TimeTzArray(list) => array(list, time_tz),
        V::Timestamp(t) => timestamp(t),
        V::TimestampArray(list) => array(list, timestamp),
        V::TimestampTz(t) => timestamp_tz(t),
        V::TimestampTzArray(list) => array(list, timestamp_tz),
        V::Json(s) | V::Jsonb(s) => s.clone(),
        V::JsonArray(list) | V::JsonbArray(list) => array(list, Clone::clone),
        V::PgLsn(lsn) => pg_lsn(*lsn),
        V::PgLsnArray(list) => array(list, |l| pg_lsn(*l)),
        V::PgSnapshot((xmin, xmax, xips)) => {
            let xips: Vec<String> = xips.iter().map(ToString::to_string).collect();
            format!("{xmin}:{xmax}:{}", xips.join(","))
        }
        V::Name(s) | V::Text(s) | V::Xml(s) | V::TsQuery(s) | V::Uuid(s) => s.clone(),
        V::NameArray(list) | V::TextArray(list) | V::XmlArray(list) | V::UuidArray(list) => {
            array(list, Clone::clone)
        }
        V::TsVector(lexemes) => ts_vector(lexemes),
        V::Hstore(pairs) => hstore(pairs),
    })
}

/// `{"a","b"}`: every element quoted, so commas, braces and spaces inside stay in it.
fn array<T>(list: &[T], element: impl Fn(&T) -> String) -> String {
    array_with(list, ',', element)
}

fn array_with<T>(list: &[T], delimiter: char, element: impl Fn(&T) -> String) -> String {
    let mut out = String::from("{");
    for (i, item) in list.iter().enumerate() {
        if i > 0 {
            out.push(delimiter);
        }
        out.push('"');
        for c in element(item).chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn float(f: floats::Hashable) -> String {
    let v = floats::to_f64(f);
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else {
        v.to_string()
    }
}

fn int2vector(list: &[i16]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `len` bits of `bytes`, the first bit the high bit of the first byte (`bit-vec`'s order);
/// every bit of `bytes` when no length is given.
fn bits(len: Option<u32>, bytes: &[u8]) -> String {
    let available = bytes.len() * 8;
    let len = len.map_or(available, |l| (l as usize).min(available));
    (0..len)
        .map(|i| {
            if bytes[i / 8] & (0x80 >> (i % 8)) != 0 {
                '1'
            } else {
                '0'
            }
        })
        .collect()
}

fn bytea(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 + bytes.len() * 2);
    out.push_str("\\x");
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn macaddr(m: &MacAddressEui48) -> String {
    let (a, b, c, d, e, f) = m.bytes;
    hex_octets(&[a, b, c, d, e, f])
}

fn macaddr8(m: &MacAddressEui64) -> String {
    let (a, b, c, d, e, f, g, h) = m.bytes;
    hex_octets(&[a, b, c, d, e, f, g, h])
}

fn hex_octets(octets: &[u8]) -> String {
    octets
        .iter()
        .map(|o| format!("{o:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

type Point = (floats::Hashable, floats::Hashable);

fn point((x, y): &Point) -> String {
    format!("({},{})", float(*x), float(*y))
}

fn circle(center: &Point, radius: floats::Hashable) -> String {
    format!("<{},{}>", point(center), float(radius))
}

/// An open path (`[…]`).
fn path(points: &[Point]) -> String {
    let points: Vec<String> = points.iter().map(point).collect();
    format!("[{}]", points.join(","))
}

fn polygon(points: &[Point]) -> String {
    let points: Vec<String> = points.iter().map(point).collect();
    format!("({})", points.join(","))
}

/// `YYYY-MM-DD`, years before 1 as `… BC` (year 0 is 1 BC), or `infinity`.
fn date(d: &Date) -> String {
    match d {
        Date::PositiveInfinity => "infinity".to_string(),
        Date::NegativeInfinity => "-infinity".to_string(),
        Date::Ymd((year, month, day)) if *year <= 0 => {
            format!("{:04}-{month:02}-{day:02} BC", 1 - i64::from(*year))
        }
        Date::Ymd((year, month, day)) => format!("{year:04}-{month:02}-{day:02}"),
    }
}

/// The WIT's `interval` is a range of dates: a `daterange`.
fn date_range(i: &Interval) -> String {
    format!(
        "{}{},{}{}",
        if i.start_inclusive { '[' } else { '(' },
        date(&i.start),
        date(&i.end),
        if i.end_inclusive { ']' } else { ')' },
    )
}

fn time(t: &Time) -> String {
    format!("{:02}:{:02}:{:02}.{:06}", t.hour, t.min, t.sec, t.micro)
}

/// The zone is written after the time as given (`+02:00`, `-0530`).
fn time_tz(t: &TimeTz) -> String {
    format!("{}{}", time(&t.time), t.timesonze)
}

fn timestamp(t: &Timestamp) -> String {
    match t.date {
        Date::PositiveInfinity | Date::NegativeInfinity => date(&t.date),
        Date::Ymd((year, month, day)) => {
            let bc = if year <= 0 { " BC" } else { "" };
            let year = if year <= 0 {
                1 - i64::from(year)
            } else {
                i64::from(year)
            };
            format!("{year:04}-{month:02}-{day:02} {}{bc}", time(&t.time))
        }
    }
}

fn timestamp_tz(t: &TimestampTz) -> String {
    if !matches!(t.timestamp.date, Date::Ymd(_)) {
        return timestamp(&t.timestamp);
    }
    let (sign, seconds) = match t.offset {
        Offset::EasternHemisphereSecs(s) => ('+', s),
        Offset::WesternHemisphereSecs(s) => ('-', s),
    };
    let seconds = seconds.unsigned_abs();
    let zone = format!(
        "{sign}{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    // The zone goes right after the time, before a ` BC`.
    let text = timestamp(&t.timestamp);
    match text.strip_suffix(" BC") {
        Some(head) => format!("{head}{zone} BC"),
        None => format!("{text}{zone}"),
    }
}

fn pg_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

/// `'word':3A 'other'`: each lexeme quoted, with its position and weight when it has one.
fn ts_vector(lexemes: &[Lexeme]) -> String {
    lexemes
        .iter()
        .map(|l| {
            let mut out = format!("'{}'", l.data.replace('\\', "\\\\").replace('\'', "''"));
            if let Some(position) = l.position {
                let _ = write!(out, ":{position}");
                match l.weight {
                    Some(LexemeWeight::A) => out.push('A'),
                    Some(LexemeWeight::B) => out.push('B'),
                    Some(LexemeWeight::C) => out.push('C'),
                    Some(LexemeWeight::D) | None => {}
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `"k"=>"v", "n"=>NULL`.
fn hstore(pairs: &[(String, Option<String>)]) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    pairs
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{}=>{}", quote(k), quote(v)),
            None => format!("{}=>NULL", quote(k)),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_are_postgres_input() {
        let one = floats::from_f64(1.0);
        let two = floats::from_f64(2.5);
        assert_eq!(text(&PgValue::Null), None);
        assert_eq!(
            text(&PgValue::TextArray(vec!["a,b".into(), "say \"hi\"".into()])).unwrap(),
            r#"{"a,b","say \"hi\""}"#
        );
        assert_eq!(
            text(&PgValue::Bit((5, vec![0b1011_0000]))).unwrap(),
            "10110"
        );
        assert_eq!(text(&PgValue::Bytea(vec![0, 255])).unwrap(), "\\x00ff");
        assert_eq!(
            text(&PgValue::BoxArray(vec![((one, one), (two, two))])).unwrap(),
            r#"{"((1,1),(2.5,2.5))"}"#
        );
        assert_eq!(
            text(&PgValue::Date(Date::Ymd((0, 3, 1)))).unwrap(),
            "0001-03-01 BC"
        );
        assert_eq!(
            text(&PgValue::TimestampTz(TimestampTz {
                timestamp: Timestamp {
                    date: Date::Ymd((2024, 2, 29)),
                    time: Time {
                        hour: 23,
                        min: 5,
                        sec: 1,
                        micro: 250
                    },
                },
                offset: Offset::WesternHemisphereSecs(5 * 3600 + 30 * 60),
            }))
            .unwrap(),
            "2024-02-29 23:05:01.000250-05:30:00"
        );
        assert_eq!(text(&PgValue::PgLsn(0x1_0000_00ff)).unwrap(), "1/FF");
        assert_eq!(
            text(&PgValue::Hstore(vec![
                ("a".into(), Some("x\"y".into())),
                ("b".into(), None)
            ]))
            .unwrap(),
            r#""a"=>"x\"y", "b"=>NULL"#
        );
    }
}
