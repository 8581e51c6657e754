"""Sends one trace with known timings, and a few plain ones, through the
real OpenTelemetry SDK (OTLP/gRPC), one TracerProvider per service.

The timed trace, in milliseconds from its start:

  gateway  SERVER   GET /order      0-100  (root)
    gateway  CLIENT   GET /orders     2-98
      orders   SERVER   GET /orders     4-96
        orders   CLIENT   GET /stock     10-30
          inventory SERVER GET /stock   12-28  (error: out of stock)
        orders   CLIENT   SELECT orders 15-90  (db.system postgresql at orders-db)
        orders   INTERNAL render        91-95
    gateway  INTERNAL audit         20-50

Its critical path: gateway 0-2, GET /orders (client) 2-4, orders 4-15,
SELECT 15-90, orders 90-91, render 91-95, orders 95-96, client 96-98,
gateway 98-100. The plain traces are gateway -> orders calls of 10 ms.

Usage: timed_trace.py GRPC_ENDPOINT PLAIN_TRACES
Prints {"trace_id", "start_unix_nanos", "spans": {name: span_id}} as JSON.
"""

import json
import sys
import time

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

MS = 1_000_000


def provider(service, endpoint):
    tp = TracerProvider(resource=Resource.create({"service.name": service}))
    tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
    return tp


def main():
    endpoint, plain = sys.argv[1], int(sys.argv[2])
    providers = {name: provider(name, endpoint) for name in ("gateway", "orders", "inventory")}
    tracers = {name: tp.get_tracer(name) for name, tp in providers.items()}
    t0 = time.time_ns() - 5_000 * MS
    ids = {}

    def span(service, name, kind, start_ms, end_ms, parent=None, attributes=None, error=None, record=True):
        context = trace.set_span_in_context(parent) if parent is not None else None
        s = tracers[service].start_span(
            name, context=context, kind=kind, start_time=t0 + start_ms * MS, attributes=attributes
        )
        if error:
            s.set_status(Status(StatusCode.ERROR, error))
        s.end(end_time=t0 + end_ms * MS)
        if record:
            ids[f"{service} {name} {kind.name.lower()}"] = format(s.get_span_context().span_id, "016x")
        return s

    # Parents are ended after their children are created; ending a span
    # early does not matter to its children's context.
    root = tracers["gateway"].start_span("GET /order", kind=SpanKind.SERVER, start_time=t0)
    call = tracers["gateway"].start_span(
        "GET /orders", context=trace.set_span_in_context(root), kind=SpanKind.CLIENT, start_time=t0 + 2 * MS
    )
    orders = tracers["orders"].start_span(
        "GET /orders", context=trace.set_span_in_context(call), kind=SpanKind.SERVER, start_time=t0 + 4 * MS
    )
    stock = tracers["orders"].start_span(
        "GET /stock", context=trace.set_span_in_context(orders), kind=SpanKind.CLIENT, start_time=t0 + 10 * MS
    )
    span("inventory", "GET /stock", SpanKind.SERVER, 12, 28, parent=stock, error="out of stock")
    stock.end(end_time=t0 + 30 * MS)
    ids["orders GET /stock client"] = format(stock.get_span_context().span_id, "016x")
    span(
        "orders",
        "SELECT orders",
        SpanKind.CLIENT,
        15,
        90,
        parent=orders,
        attributes={"db.system": "postgresql", "server.address": "orders-db"},
    )
    span("orders", "render", SpanKind.INTERNAL, 91, 95, parent=orders)
    orders.end(end_time=t0 + 96 * MS)
    call.end(end_time=t0 + 98 * MS)
    span("gateway", "audit", SpanKind.INTERNAL, 20, 50, parent=root)
    root.end(end_time=t0 + 100 * MS)
    for s, key in ((orders, "orders GET /orders server"), (call, "gateway GET /orders client"), (root, "gateway GET /order server")):
        ids[key] = format(s.get_span_context().span_id, "016x")
    trace_id = format(root.get_span_context().trace_id, "032x")

    for i in range(plain):
        start = 1_000 + i * 100
        r = tracers["gateway"].start_span("GET /order", kind=SpanKind.SERVER, start_time=t0 + start * MS)
        c = span("gateway", "GET /orders", SpanKind.CLIENT, start + 1, start + 9, parent=r, record=False)
        span("orders", "GET /orders", SpanKind.SERVER, start + 2, start + 8, parent=c, record=False)
        r.end(end_time=t0 + (start + 10) * MS)

    for tp in providers.values():
        if not tp.force_flush(timeout_millis=15000):
            print("force_flush timed out", file=sys.stderr)
            sys.exit(1)
        tp.shutdown()
    print(json.dumps({"trace_id": trace_id, "start_unix_nanos": t0, "spans": ids}))


if __name__ == "__main__":
    main()
