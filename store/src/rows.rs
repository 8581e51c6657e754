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

/// Span attributes with columns of their own (the rest go to `attributes`).
const PROMOTED: [&str; 4] = [
    "server.address",
    "http.response.status_code",
    "rpc.grpc.status_code",
    "error.type",
];

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

fn find<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Option<AnyValue>> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| &kv.value)
}

fn int(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match find(attributes, key)?.as_ref()?.value.as_ref()? {
        Value::IntValue(i) => Some(*i),
        Value::StringValue(s) => s.parse().ok(),
        _ => None,
    }
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

impl Default for SpanRows {
    fn default() -> Self {
        Self {
            strings: (0..14).map(|_| StringBuilder::new()).collect(),
            start: TimestampNanosecondBuilder::new().with_timezone("UTC"),
            end: TimestampNanosecondBuilder::new().with_timezone("UTC"),
            duration: Int64Builder::new(),
            error: BooleanBuilder::new(),
            http_status: Int64Builder::new(),
            grpc_status: Int64Builder::new(),
            attributes: MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()),
            len: 0,
            max_end: 0,
        }
    }
}

impl SpanRows {
    pub(crate) fn push(&mut self, reporter: &Reporter, span: &Span) {
        let s = &mut self.strings;
        s[TRACE].append_value(hex(&span.trace_id));
        s[SPAN].append_value(hex(&span.span_id));
        s[PARENT]
            .append_option((!span.parent_span_id.is_empty()).then(|| hex(&span.parent_span_id)));
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
        s[PEER].append_option(
            text(&span.attributes, "peer.service")
                .or_else(|| text(&span.attributes, "server.address")),
        );
        s[ERROR_TYPE].append_option(text(&span.attributes, "error.type"));
        let (start, end) = (span.start_time_unix_nano, span.end_time_unix_nano);
        self.start.append_value(start as i64);
        self.end.append_value(end as i64);
        self.duration.append_value(end.saturating_sub(start) as i64);
        self.error.append_value(code == StatusCode::Error as i32);
        self.http_status
            .append_option(int(&span.attributes, "http.response.status_code"));
        self.grpc_status
            .append_option(int(&span.attributes, "rpc.grpc.status_code"));
        for kv in span
            .attributes
            .iter()
            .filter(|kv| !PROMOTED.contains(&kv.key.as_str()))
        {
            self.attributes.keys().append_value(&kv.key);
            self.attributes.values().append_option(as_text(&kv.value));
        }
        self.attributes
            .append(true)
            .expect("keys and values in step");
        self.len += 1;
        self.max_end = self.max_end.max(end);
    }

    /// The rows as a batch; the builder starts empty again.
    pub(crate) fn finish(&mut self) -> Result<RecordBatch, arrow_schema::ArrowError> {
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
        RecordBatch::try_new(SCHEMA.clone(), columns)
    }
}
