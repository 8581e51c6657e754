-- Calls, errors and p99 per service pair, from the caller's side: the
-- benchmark query of BENCHMARKS.md, over the whole case.
SELECT service, peer,
       count(*) AS calls,
       sum(CASE WHEN error THEN 1 ELSE 0 END) AS errors,
       round(approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ns) / 1e6, 1) AS p99_ms
FROM spans
WHERE kind = 'client'
GROUP BY service, peer
ORDER BY calls DESC, service, peer
LIMIT 12
