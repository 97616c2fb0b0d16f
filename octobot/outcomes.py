"""The figures every stats sample carries (stats.proto QueueSample), and their
Prometheus names, shared by the coordinator's and a standalone node's /metrics."""

#: Task outcomes, counted per interval.
OUTCOMES = ("succeeded", "failed", "retried", "dead_lettered", "rejected")
#: Tasks whose enqueued_at could not be believed, left out of wait and end-to-end times.
IMPLAUSIBLE = "implausible_times"
#: Every count of a sample: what adds up when samples merge.
SAMPLE_COUNTS = (*OUTCOMES, IMPLAUSIBLE)
IMPLAUSIBLE_HELP = ("Tasks whose enqueued_at was too far before or after their start to believe,"
                    " left out of wait and end-to-end times")

#: A sample's latency histograms (QueueSample fields), their Prometheus histogram names and help.
LATENCIES = ("run_time", "wait_time", "end_to_end")
LATENCY_METRICS = ("octobot_task_run_seconds", "octobot_task_wait_seconds", "octobot_task_end_to_end_seconds")
LATENCY_HELP = ("Task run time (start to end)", "Time from enqueue to task start", "Time from enqueue to task end")
#: Upper bounds (seconds) of the exposed latency buckets.
PROMETHEUS_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
