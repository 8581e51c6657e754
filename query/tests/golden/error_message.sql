-- A typo: the error names the column and where it is.
SELECT service, duraton_ns
FROM spans
