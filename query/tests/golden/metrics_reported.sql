-- The metrics table: what each service reported, and how often.
SELECT name, kind, unit, count(DISTINCT service) AS services, count(*) AS points
FROM metrics
GROUP BY name, kind, unit
ORDER BY name
