//! OTLP metrics → rows of the `metrics` table, one per data point: the
//! reporter, the metric's name, unit and kind, the value (gauges and sums)
//! or count, sum, min and max (histograms and summaries), and the point's
//! attributes as a map.

use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    Float64Builder, Int64Builder, MapBuilder, StringBuilder, TimestampNanosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;

use crate::rows::{Reporter, as_text, attribute_map_field, timestamp};

/// The `metrics` table's schema.
pub static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
    let number = |name: &str| Field::new(name, DataType::Float64, true);
    Arc::new(Schema::new(vec![
        Field::new("time", timestamp(), false),
        text("service", false),
        text("namespace", true),
        text("instance", true),
        text("region", true),
        text("name", false),
        text("unit", true),
        text("kind", false),
        number("value"),
        Field::new("count", DataType::Int64, true),
        number("sum"),
        number("min"),
        number("max"),
        attribute_map_field(),
    ]))
});

/// One data point's numbers.
#[derive(Default)]
struct Point {
    value: Option<f64>,
    count: Option<i64>,
    sum: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
}

#[derive(Default)]
struct MetricRows {
    time: TimestampNanosecondBuilder,
    text: [StringBuilder; 7],
    numbers: [Float64Builder; 4],
    count: Int64Builder,
    attributes: Option<MapBuilder<StringBuilder, StringBuilder>>,
}

impl MetricRows {
    fn push(
        &mut self,
        reporter: &Reporter,
        metric: &Metric,
        kind: &str,
        time: u64,
        point: Point,
        attributes: &[KeyValue],
    ) {
        let (name, unit) = (metric.name.as_str(), metric.unit.as_str());
        self.time.append_value(time as i64);
        let [
            service,
            namespace,
            instance,
            region,
            metric,
            unit_col,
            kind_col,
        ] = &mut self.text;
        service.append_value(&reporter.service);
        namespace.append_option(reporter.namespace.as_deref());
        instance.append_option(reporter.instance.as_deref());
        region.append_option(reporter.region.as_deref());
        metric.append_value(name);
        unit_col.append_option((!unit.is_empty()).then_some(unit));
        kind_col.append_value(kind);
        let [value, sum, min, max] = &mut self.numbers;
        value.append_option(point.value);
        sum.append_option(point.sum);
        min.append_option(point.min);
        max.append_option(point.max);
        self.count.append_option(point.count);
        let map = self.attributes.get_or_insert_with(|| {
            MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
        });
        for kv in attributes {
            map.keys().append_value(&kv.key);
            map.values().append_option(as_text(&kv.value));
        }
        map.append(true).expect("keys and values in step");
    }

    fn finish(mut self) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let time = self.time.with_timezone("UTC").finish();
        let [service, namespace, instance, region, name, unit, kind] =
            self.text.map(|mut b| Arc::new(b.finish()) as ArrayRef);
        let [value, sum, min, max] = self.numbers.map(|mut b| Arc::new(b.finish()) as ArrayRef);
        let attributes = self
            .attributes
            .get_or_insert_with(|| {
                MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
            })
            .finish();
        RecordBatch::try_new(
            SCHEMA.clone(),
            vec![
                Arc::new(time),
                service,
                namespace,
                instance,
                region,
                name,
                unit,
                kind,
                value,
                Arc::new(self.count.finish()),
                sum,
                min,
                max,
                Arc::new(attributes),
            ],
        )
    }
}

fn number(value: Option<&Number>) -> Option<f64> {
    match value? {
        Number::AsDouble(d) => Some(*d),
        Number::AsInt(i) => Some(*i as f64),
    }
}

fn distribution(count: u64, sum: Option<f64>, min: Option<f64>, max: Option<f64>) -> Point {
    Point {
        value: None,
        count: Some(count as i64),
        sum,
        min,
        max,
    }
}

/// Every data point of `request` as a row of `metrics`.
pub fn metric_rows(
    request: &ExportMetricsServiceRequest,
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut rows = MetricRows::default();
    for resource_metrics in &request.resource_metrics {
        let resource = resource_metrics
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        let reporter = Reporter::from_resource(resource);
        for metric in resource_metrics
            .scope_metrics
            .iter()
            .flat_map(|s| &s.metrics)
        {
            let mut push = |kind, time, point, attributes: &[KeyValue]| {
                rows.push(&reporter, metric, kind, time, point, attributes);
            };
            match &metric.data {
                Some(Data::Gauge(gauge)) => {
                    for p in &gauge.data_points {
                        let point = Point {
                            value: number(p.value.as_ref()),
                            ..Point::default()
                        };
                        push("gauge", p.time_unix_nano, point, &p.attributes);
                    }
                }
                Some(Data::Sum(sum)) => {
                    for p in &sum.data_points {
                        let point = Point {
                            value: number(p.value.as_ref()),
                            ..Point::default()
                        };
                        push("sum", p.time_unix_nano, point, &p.attributes);
                    }
                }
                Some(Data::Histogram(histogram)) => {
                    for p in &histogram.data_points {
                        let point = distribution(p.count, p.sum, p.min, p.max);
                        push("histogram", p.time_unix_nano, point, &p.attributes);
                    }
                }
                Some(Data::ExponentialHistogram(histogram)) => {
                    for p in &histogram.data_points {
                        let point = distribution(p.count, p.sum, p.min, p.max);
                        push(
                            "exponential_histogram",
                            p.time_unix_nano,
                            point,
                            &p.attributes,
                        );
                    }
                }
                Some(Data::Summary(summary)) => {
                    for p in &summary.data_points {
                        let point = Point {
                            count: Some(p.count as i64),
                            sum: Some(p.sum),
                            ..Point::default()
                        };
                        push("summary", p.time_unix_nano, point, &p.attributes);
                    }
                }
                None => {}
            }
        }
    }
    rows.finish()
}
