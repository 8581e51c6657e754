-- The slowest trace's spans, root first, with the attributes map.
WITH slowest AS (
  SELECT trace_id FROM spans WHERE parent_span_id IS NULL
  ORDER BY duration_ns DESC, trace_id LIMIT 1
)
SELECT service, name, kind, duration_ns / 1000 AS duration_us, status_code,
       http_status, grpc_status, attributes['rpc.system'] AS rpc_system
FROM spans JOIN slowest USING (trace_id)
ORDER BY start_time, span_id
