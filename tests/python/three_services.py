"""Sends traces across three services with the real OpenTelemetry SDK.

checkout --(CLIENT/SERVER)--> payments --(CLIENT/SERVER)--> ledger

Each service has its own TracerProvider, resource and exporter, as three
processes would: checkout and ledger export over OTLP/gRPC, payments over
OTLP/HTTP (protobuf). Trace context crosses service boundaries through W3C
traceparent headers, injected and extracted as real instrumentation does.
The first ledger span of the run is marked as an error.

Usage: three_services.py GRPC_ENDPOINT HTTP_ENDPOINT TRACES
"""

import json
import sys

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator


def provider(service, exporter):
    tp = TracerProvider(resource=Resource.create({"service.name": service, "service.version": "1.0.0"}))
    tp.add_span_processor(BatchSpanProcessor(exporter))
    return tp


def main():
    grpc_endpoint, http_endpoint, traces = sys.argv[1], sys.argv[2], int(sys.argv[3])
    checkout = provider("checkout", GrpcExporter(endpoint=grpc_endpoint, insecure=True))
    payments = provider("payments", HttpExporter(endpoint=f"{http_endpoint}/v1/traces"))
    ledger = provider("ledger", GrpcExporter(endpoint=grpc_endpoint, insecure=True))
    propagator = TraceContextTextMapPropagator()

    def handoff():
        """What an HTTP client and server do: inject headers, extract them."""
        headers = {}
        propagator.inject(headers)
        return propagator.extract(headers)

    t_checkout = checkout.get_tracer("checkout")
    t_payments = payments.get_tracer("payments")
    t_ledger = ledger.get_tracer("ledger")
    for i in range(traces):
        with t_checkout.start_as_current_span("POST /checkout", kind=SpanKind.SERVER):
            with t_checkout.start_as_current_span("POST /payments", kind=SpanKind.CLIENT) as call:
                call.set_attribute("http.request.method", "POST")
                with t_payments.start_as_current_span("POST /payments", context=handoff(), kind=SpanKind.SERVER):
                    with t_payments.start_as_current_span("POST /entries", kind=SpanKind.CLIENT):
                        with t_ledger.start_as_current_span(
                            "POST /entries", context=handoff(), kind=SpanKind.SERVER
                        ) as entry:
                            if i == 0:
                                entry.set_status(Status(StatusCode.ERROR, "insufficient funds"))

    for tp in (checkout, payments, ledger):
        if not tp.force_flush(timeout_millis=15000):
            print("force_flush timed out", file=sys.stderr)
            sys.exit(1)
        tp.shutdown()
    print(json.dumps({"traces": traces}))


if __name__ == "__main__":
    main()
