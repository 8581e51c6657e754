//! OTLP spans → rows of the `spans` table (Arrow), one per span: typed
//! columns for the attributes most queries need, a map for the rest.

use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    BooleanBuilder, Int64Builder, MapBuilder, StringBuilder, TimestampNanosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

pub(crate) fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// The `spans` table's schema.
pub static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("trace_id", false),
        text("span_id", false),
        text("parent_span_id", true),
        text("service", false),
        text("namespace", true),
        text("instance", true),
        text("version", true),
        text("region", true),
        text("name", false),
        text("kind", false),
        Field::new("start_time", timestamp(), false),
        Field::new("end_time", timestamp(), false),
        Field::new("duration_ns", DataType::Int64, false),
        text("status_code", false),
        Field::new("error", DataType::Boolean, false),
        text("status_message", true),
        text("peer", true),
        Field::new("http_status", DataType::Int64, true),
        Field::new("grpc_status", DataType::Int64, true),
        text("error_type", true),
        attribute_map_field(),
    ]))
});

/// `attributes`: the attributes without a column of their own, as text.
pub(crate) fn attribute_map_field() -> Field {
    let entries = Field::new(
        "entries",
        DataType::Struct(
            vec![
                Field::new("keys", DataType::Utf8, false),
                Field::new("values", DataType::Utf8, true),
            ]
            .into(),
        ),
        false,
    );
    Field::new("attributes", DataType::Map(Arc::new(entries), false), false)
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

pub(crate) fn as_text(value: &Option<AnyValue>) -> Option<String> {
    match value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::DoubleValue(d) => Some(d.to_string()),
        Value::BoolValue(b) => Some(b.to_string()),
        Value::BytesValue(b) => Some(hex(b)),
        other => Some(format!("{other:?}")),
    }
}

/// Appends `value` as text without an intermediate `String` (null when
/// absent or unset).
fn append_text(builder: &mut StringBuilder, value: Option<&Option<AnyValue>>) {
    use std::fmt::Write as _;
    let Some(value) = value.and_then(|v| v.as_ref()?.value.as_ref()) else {
        builder.append_null();
        return;
    };
    // Writing to a StringBuilder cannot fail.
    let _ = match value {
        Value::StringValue(s) => builder.write_str(s),
        Value::IntValue(i) => write!(builder, "{i}"),
        Value::DoubleValue(d) => write!(builder, "{d}"),
        Value::BoolValue(b) => write!(builder, "{b}"),
        Value::BytesValue(b) => {
            append_hex(builder, b);
            return;
        }
        other => write!(builder, "{other:?}"),
    };
    builder.append_value("");
}

/// Appends `bytes` in lower-case hex (ids: 8 or 16 bytes, on the stack).
fn append_hex(builder: &mut StringBuilder, bytes: &[u8]) {
    let mut buffer = [0u8; 64];
    match buffer.get_mut(..bytes.len() * 2) {
        Some(out) => {
            hex::encode_to_slice(bytes, out).expect("twice the length");
            builder.append_value(std::str::from_utf8(out).expect("hex is ASCII"));
        }
        None => builder.append_value(hex(bytes)),
    }
}

fn as_int(value: &Option<AnyValue>) -> Option<i64> {
    match value.as_ref()?.value.as_ref()? {
        Value::IntValue(i) => Some(*i),
        Value::StringValue(s) => s.parse().ok(),
        _ => None,
    }
}

/// The attributes of a span that have columns of their own.
#[derive(Default)]
struct Promoted<'a> {
    peer_service: Option<&'a Option<AnyValue>>,
    server_address: Option<&'a Option<AnyValue>>,
    http_status: Option<&'a Option<AnyValue>>,
    grpc_status: Option<&'a Option<AnyValue>>,
    error_type: Option<&'a Option<AnyValue>>,
}

fn find<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Option<AnyValue>> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| &kv.value)
}

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    find(attributes, key).and_then(as_text)
}

/// Who reported a group of spans (the resource's attributes).
pub(crate) struct Reporter {
    pub(crate) service: String,
    pub(crate) namespace: Option<String>,
    pub(crate) instance: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) region: Option<String>,
}

impl Reporter {
    pub(crate) fn from_resource(attributes: &[KeyValue]) -> Self {
        Self {
            service: text(attributes, "service.name").unwrap_or_else(|| "unknown_service".into()),
            namespace: text(attributes, "service.namespace"),
            instance: text(attributes, "service.instance.id"),
            version: text(attributes, "service.version"),
            region: text(attributes, "cloud.region"),
        }
    }
}

/// Rows being gathered for one segment.
pub(crate) struct SpanRows {
    strings: Vec<StringBuilder>,
    start: TimestampNanosecondBuilder,
    end: TimestampNanosecondBuilder,
    duration: Int64Builder,
    error: BooleanBuilder,
    http_status: Int64Builder,
    grpc_status: Int64Builder,
    attributes: MapBuilder<StringBuilder, StringBuilder>,
    pub(crate) len: usize,
    pub(crate) max_end: u64,
}

/// Columns of `strings`, in schema order where they are interleaved.
const TRACE: usize = 0;
const SPAN: usize = 1;
const PARENT: usize = 2;
const SERVICE: usize = 3;
const NAMESPACE: usize = 4;
const INSTANCE: usize = 5;
const VERSION: usize = 6;
const REGION: usize = 7;
const NAME: usize = 8;
const KIND: usize = 9;
const STATUS: usize = 10;
const MESSAGE: usize = 11;
const PEER: usize = 12;
const ERROR_TYPE: usize = 13;

/// Text bytes per row the builders held: sizes the next builders, so
/// they never grow (growing copies, and touches fresh pages).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TextPerRow {
    columns: [f64; TEXT_COLUMNS],
    entries: f64,
    keys: f64,
    values: f64,
}

const TEXT_COLUMNS: usize = 14;

impl Default for SpanRows {
    fn default() -> Self {
        Self::with_capacity(0, &TextPerRow::default())
    }
}

impl SpanRows {
    /// Builders with room for `rows` rows like the ones `text` measured.
    pub(crate) fn with_capacity(rows: usize, text: &TextPerRow) -> Self {
        let bytes = |per_row: f64| (per_row * rows as f64 * 1.1) as usize;
        let entries = bytes(text.entries);
        Self {
            strings: text
                .columns
                .iter()
                .map(|&per_row| StringBuilder::with_capacity(rows, bytes(per_row)))
                .collect(),
            start: TimestampNanosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            end: TimestampNanosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            duration: Int64Builder::with_capacity(rows),
            error: BooleanBuilder::with_capacity(rows),
            http_status: Int64Builder::with_capacity(rows),
            grpc_status: Int64Builder::with_capacity(rows),
            attributes: MapBuilder::with_capacity(
                None,
                StringBuilder::with_capacity(entries, bytes(text.keys)),
                StringBuilder::with_capacity(entries, bytes(text.values)),
                rows,
            ),
            len: 0,
            max_end: 0,
        }
    }

    /// What the rows so far hold, per row.
    pub(crate) fn text_per_row(&mut self) -> TextPerRow {
        use arrow_array::builder::ArrayBuilder as _;
        let rows = self.len.max(1) as f64;
        let mut columns = [0.0; TEXT_COLUMNS];
        for (column, builder) in columns.iter_mut().zip(&self.strings) {
            *column = builder.values_slice().len() as f64 / rows;
        }
        TextPerRow {
            columns,
            entries: self.attributes.keys().len() as f64 / rows,
            keys: self.attributes.keys().values_slice().len() as f64 / rows,
            values: self.attributes.values().values_slice().len() as f64 / rows,
        }
    }

    pub(crate) fn push(&mut self, reporter: &Reporter, span: &Span) {
        let s = &mut self.strings;
        append_hex(&mut s[TRACE], &span.trace_id);
        append_hex(&mut s[SPAN], &span.span_id);
        if span.parent_span_id.is_empty() {
            s[PARENT].append_null();
        } else {
            append_hex(&mut s[PARENT], &span.parent_span_id);
        }
        s[SERVICE].append_value(&reporter.service);
        s[NAMESPACE].append_option(reporter.namespace.as_deref());
        s[INSTANCE].append_option(reporter.instance.as_deref());
        s[VERSION].append_option(reporter.version.as_deref());
        s[REGION].append_option(reporter.region.as_deref());
        s[NAME].append_value(&span.name);
        s[KIND].append_value(
            match SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified) {
                SpanKind::Server => "server",
                SpanKind::Client => "client",
                SpanKind::Producer => "producer",
                SpanKind::Consumer => "consumer",
                SpanKind::Internal => "internal",
                SpanKind::Unspecified => "unspecified",
            },
        );
        let code = span.status.as_ref().map_or(0, |s| s.code);
        s[STATUS].append_value(
            match StatusCode::try_from(code).unwrap_or(StatusCode::Unset) {
                StatusCode::Ok => "ok",
                StatusCode::Error => "error",
                StatusCode::Unset => "unset",
            },
        );
        let message = span
            .status
            .as_ref()
            .map(|s| s.message.as_str())
            .filter(|m| !m.is_empty());
        s[MESSAGE].append_option(message);
        let promoted = self.push_attributes(&span.attributes);
        let s = &mut self.strings;
        append_text(
            &mut s[PEER],
            promoted.peer_service.or(promoted.server_address),
        );
        append_text(&mut s[ERROR_TYPE], promoted.error_type);
        let (start, end) = (span.start_time_unix_nano, span.end_time_unix_nano);
        self.start.append_value(start as i64);
        self.end.append_value(end as i64);
        self.duration.append_value(end.saturating_sub(start) as i64);
        self.error.append_value(code == StatusCode::Error as i32);
        self.http_status
            .append_option(promoted.http_status.and_then(as_int));
        self.grpc_status
            .append_option(promoted.grpc_status.and_then(as_int));
        self.len += 1;
        self.max_end = self.max_end.max(end);
    }

    /// One pass over a span's attributes: the promoted ones are returned
    /// (the first of each key wins), the rest go to the `attributes` map.
    fn push_attributes<'a>(&mut self, attributes: &'a [KeyValue]) -> Promoted<'a> {
        let mut promoted = Promoted::default();
        for kv in attributes {
            let slot = match kv.key.as_str() {
                "server.address" => &mut promoted.server_address,
                "http.response.status_code" => &mut promoted.http_status,
                "rpc.grpc.status_code" => &mut promoted.grpc_status,
                "error.type" => &mut promoted.error_type,
                key => {
                    let has_value = kv.value.as_ref().is_some_and(|v| v.value.is_some());
                    if key == "peer.service" && has_value && promoted.peer_service.is_none() {
                        promoted.peer_service = Some(&kv.value);
                    }
                    self.attributes.keys().append_value(key);
                    append_text(self.attributes.values(), Some(&kv.value));
                    continue;
                }
            };
            slot.get_or_insert(&kv.value);
        }
        self.attributes
            .append(true)
            .expect("keys and values in step");
        promoted
    }

    /// The rows as a batch; the builder starts empty again.
    pub(crate) fn finish(&mut self) -> RecordBatch {
        let mut s: Vec<ArrayRef> = self
            .strings
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let take = |s: &mut Vec<ArrayRef>, i: usize| s[i].clone();
        let columns: Vec<ArrayRef> = vec![
            take(&mut s, TRACE),
            take(&mut s, SPAN),
            take(&mut s, PARENT),
            take(&mut s, SERVICE),
            take(&mut s, NAMESPACE),
            take(&mut s, INSTANCE),
            take(&mut s, VERSION),
            take(&mut s, REGION),
            take(&mut s, NAME),
            take(&mut s, KIND),
            Arc::new(self.start.finish()),
            Arc::new(self.end.finish()),
            Arc::new(self.duration.finish()),
            take(&mut s, STATUS),
            Arc::new(self.error.finish()),
            take(&mut s, MESSAGE),
            take(&mut s, PEER),
            Arc::new(self.http_status.finish()),
            Arc::new(self.grpc_status.finish()),
            take(&mut s, ERROR_TYPE),
            Arc::new(self.attributes.finish()),
        ];
        self.len = 0;
        self.max_end = 0;
        RecordBatch::try_new(SCHEMA.clone(), columns).expect("the columns follow SCHEMA")
    }
}
