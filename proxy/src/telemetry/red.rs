//! RED metrics as OTLP: a request count and a duration histogram per
//! direction, route (destination service) and status code, cumulative
//! since the proxy started. The data path adds to a cell under a short
//! lock; the exporter turns a snapshot into OTLP metrics on an interval.

use std::collections::HashMap;
use std::sync::Mutex;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Histogram, HistogramDataPoint, Metric, NumberDataPoint, Sum, metric,
    number_data_point,
};

use super::{int_attribute, string_attribute, unix_nanos};

pub struct RedMetrics {
    bounds: &'static [f64],
    start_ns: u64,
    cells: Mutex<HashMap<Key, Cell>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    /// `inbound` or `outbound`.
    direction: &'static str,
    route: String,
    status: u16,
}

struct Cell {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    /// One more than the bounds: the last counts values above them all.
    buckets: Vec<u64>,
}

impl RedMetrics {
    /// Histograms with these upper bounds, in seconds.
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            start_ns: unix_nanos(),
            cells: Mutex::new(HashMap::new()),
        }
    }

    pub fn record(&self, direction: &'static str, route: &str, status: u16, seconds: f64) {
        let bucket = self.bounds.partition_point(|bound| *bound < seconds);
        let key = Key {
            direction,
            route: route.to_owned(),
            status,
        };
        let mut cells = self.cells.lock().expect("red lock");
        let cell = cells.entry(key).or_insert_with(|| Cell {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            buckets: vec![0; self.bounds.len() + 1],
        });
        cell.count += 1;
        cell.sum += seconds;
        cell.min = cell.min.min(seconds);
        cell.max = cell.max.max(seconds);
        cell.buckets[bucket] += 1;
    }

    /// Every series so far as OTLP metrics stamped `now_ns`; empty before
    /// the first request.
    pub fn snapshot(&self, now_ns: u64) -> Vec<Metric> {
        let cells = self.cells.lock().expect("red lock");
        if cells.is_empty() {
            return Vec::new();
        }
        let mut counts = Vec::new();
        let (mut client, mut server) = (Vec::new(), Vec::new());
        for (key, cell) in cells.iter() {
            let attributes = key.attributes();
            counts.push(NumberDataPoint {
                attributes: attributes.clone(),
                start_time_unix_nano: self.start_ns,
                time_unix_nano: now_ns,
                value: Some(number_data_point::Value::AsInt(cell.count as i64)),
                ..Default::default()
            });
            let point = HistogramDataPoint {
                attributes,
                start_time_unix_nano: self.start_ns,
                time_unix_nano: now_ns,
                count: cell.count,
                sum: Some(cell.sum),
                bucket_counts: cell.buckets.clone(),
                explicit_bounds: self.bounds.to_vec(),
                min: Some(cell.min),
                max: Some(cell.max),
                ..Default::default()
            };
            if key.direction == "outbound" {
                client.push(point);
            } else {
                server.push(point);
            }
        }
        let cumulative = AggregationTemporality::Cumulative as i32;
        let mut metrics = vec![Metric {
            name: "meshtwin.proxy.requests".to_owned(),
            description: "HTTP requests by direction, route and status code".to_owned(),
            unit: "{request}".to_owned(),
            data: Some(metric::Data::Sum(Sum {
                data_points: counts,
                aggregation_temporality: cumulative,
                is_monotonic: true,
            })),
            ..Default::default()
        }];
        for (name, points) in [
            ("http.client.request.duration", client),
            ("http.server.request.duration", server),
        ] {
            if !points.is_empty() {
                metrics.push(Metric {
                    name: name.to_owned(),
                    description: "Time to response headers".to_owned(),
                    unit: "s".to_owned(),
                    data: Some(metric::Data::Histogram(Histogram {
                        data_points: points,
                        aggregation_temporality: cumulative,
                    })),
                    ..Default::default()
                });
            }
        }
        metrics
    }
}

impl Key {
    fn attributes(&self) -> Vec<KeyValue> {
        vec![
            string_attribute("mesh.direction", self.direction),
            string_attribute("mesh.route", &self.route),
            int_attribute("http.response.status_code", i64::from(self.status)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_buckets_add_up_per_series() {
        let red = RedMetrics::new(&[0.001, 0.01, 0.1]);
        red.record("outbound", "ledger", 200, 0.0005);
        red.record("outbound", "ledger", 200, 0.05);
        red.record("outbound", "ledger", 200, 5.0);
        red.record("outbound", "ledger", 503, 0.002);
        red.record("inbound", "payments", 200, 0.01);
        let metrics = red.snapshot(unix_nanos());
        let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "meshtwin.proxy.requests",
                "http.client.request.duration",
                "http.server.request.duration"
            ]
        );
        let Some(metric::Data::Sum(sum)) = &metrics[0].data else {
            panic!("a sum")
        };
        assert_eq!(sum.data_points.len(), 3);
        let Some(metric::Data::Histogram(client)) = &metrics[1].data else {
            panic!("a histogram")
        };
        let ok = client
            .data_points
            .iter()
            .find(|p| p.count == 3)
            .expect("the 200 series");
        assert_eq!(ok.bucket_counts, [1, 0, 1, 1]);
        assert_eq!(ok.max, Some(5.0));
        let Some(metric::Data::Histogram(server)) = &metrics[2].data else {
            panic!("a histogram")
        };
        // A value on a bound belongs to that bound's bucket.
        assert_eq!(server.data_points[0].bucket_counts, [0, 1, 0, 0]);
    }

    #[test]
    fn nothing_is_exported_before_the_first_request() {
        assert!(RedMetrics::new(&[1.0]).snapshot(unix_nanos()).is_empty());
    }
}
