"""Sends metrics with the real OpenTelemetry SDK over OTLP/gRPC.

One service, `payments`, records a counter (`payments.processed`, 7 in
total, by currency) and a histogram (`payments.amount`, three values),
then exports once.

Usage: payments_metrics.py GRPC_ENDPOINT
"""

import sys

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource


def main():
    endpoint = sys.argv[1]
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=endpoint, insecure=True), export_interval_millis=3_600_000
    )
    provider = MeterProvider(
        resource=Resource.create({"service.name": "payments", "cloud.region": "eu-west-1"}),
        metric_readers=[reader],
        # One export: the flush below; none again at exit.
        shutdown_on_exit=False,
    )
    meter = provider.get_meter("payments")
    processed = meter.create_counter("payments.processed", unit="1")
    processed.add(5, {"currency": "EUR"})
    processed.add(2, {"currency": "GBP"})
    amount = meter.create_histogram("payments.amount", unit="EUR")
    for value in (10.0, 20.0, 60.0):
        amount.record(value)
    if not provider.force_flush(timeout_millis=15000):
        print("force_flush timed out", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
