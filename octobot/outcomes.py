"""The counts every stats sample carries (stats.proto QueueSample), named once."""

#: Task outcomes, counted per interval.
OUTCOMES = ("succeeded", "failed", "retried", "dead_lettered", "rejected")
#: Tasks whose enqueued_at could not be believed, left out of wait and end-to-end times.
IMPLAUSIBLE = "implausible_times"
#: Every count of a sample: what adds up when samples merge.
SAMPLE_COUNTS = (*OUTCOMES, IMPLAUSIBLE)
IMPLAUSIBLE_HELP = ("Tasks whose enqueued_at was too far before or after their start to believe,"
                    " left out of wait and end-to-end times")
