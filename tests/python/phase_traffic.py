"""Sends one phase of a changing mesh through the real OpenTelemetry SDK
(OTLP/gRPC), with explicit timestamps, so the twin's history has a
"before" and an "after" to compare.

  before: gateway -> orders (10 ms, no errors), orders -> legacy (5 ms)
  after:  gateway -> orders (80 ms, every other call a 500),
          orders -> payments (5 ms); legacy is no longer called

CALLS calls of each edge, spread over 20 s from START_UNIX_NANOS.

Usage: phase_traffic.py GRPC_ENDPOINT START_UNIX_NANOS before|after CALLS
"""

import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

MS = 1_000_000


def main():
    endpoint, start, phase, calls = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    services = ("gateway", "orders", "legacy", "payments")
    providers = {}
    for name in services:
        tp = TracerProvider(resource=Resource.create({"service.name": name}))
        tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
        providers[name] = tp
    tracers = {name: tp.get_tracer(name) for name, tp in providers.items()}

    def call(caller, callee, parent, at, failed):
        """A CLIENT span of the caller and the SERVER span it caused."""
        context = trace.set_span_in_context(parent) if parent is not None else None
        client = tracers[caller].start_span(f"GET /{callee}", context=context, kind=SpanKind.CLIENT, start_time=at)
        server = tracers[callee].start_span(
            f"GET /{callee}", context=trace.set_span_in_context(client), kind=SpanKind.SERVER, start_time=at + MS
        )
        for span in (client, server):
            span.set_attribute("http.response.status_code", 500 if failed else 200)
            if failed:
                span.set_status(Status(StatusCode.ERROR, "internal error"))
        return client, server

    step = 20_000 * MS // calls
    for i in range(calls):
        at = start + i * step
        root = tracers["gateway"].start_span("GET /", kind=SpanKind.SERVER, start_time=at)
        # before: orders calls legacy, 10 ms; after: payments, 80 ms, every other call a 500.
        callee, took, failed = ("legacy", 10, False) if phase == "before" else ("payments", 80, i % 2 == 0)
        client, server = call("gateway", "orders", root, at + MS, failed)
        c2, s2 = call("orders", callee, server, at + 3 * MS, False)
        s2.end(end_time=at + 7 * MS)
        c2.end(end_time=at + 8 * MS)
        server.end(end_time=at + took * MS)
        client.end(end_time=at + (took + 1) * MS)
        root.end(end_time=at + (took + 2) * MS)

    for tp in providers.values():
        if not tp.force_flush(timeout_millis=15000):
            print("force_flush timed out", file=sys.stderr)
            sys.exit(1)
        tp.shutdown()


if __name__ == "__main__":
    main()
