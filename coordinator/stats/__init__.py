"""The coordinator's stats: reports checked (report_checks) and taken in (report_intake), held per
second and minute (cluster, series, bucket, bucket_sums) with live gauges (gauges)."""
