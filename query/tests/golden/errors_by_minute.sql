-- Where errors originate, by minute: SERVER spans in error, per service.
SELECT date_trunc('minute', start_time) AS minute, service, count(*) AS errors
FROM spans
WHERE kind = 'server' AND error
GROUP BY 1, 2
ORDER BY 1, 3 DESC, 2
