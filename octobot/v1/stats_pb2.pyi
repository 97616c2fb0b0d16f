import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from octobot.v1 import auth_pb2 as _auth_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Histogram(_message.Message):
    __slots__ = ("relative_accuracy", "indexes", "counts", "zero_count", "sum")
    RELATIVE_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    INDEXES_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    ZERO_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUM_FIELD_NUMBER: _ClassVar[int]
    relative_accuracy: float
    indexes: _containers.RepeatedScalarFieldContainer[int]
    counts: _containers.RepeatedScalarFieldContainer[int]
    zero_count: int
    sum: float
    def __init__(self, relative_accuracy: _Optional[float] = ..., indexes: _Optional[_Iterable[int]] = ..., counts: _Optional[_Iterable[int]] = ..., zero_count: _Optional[int] = ..., sum: _Optional[float] = ...) -> None: ...

class QueueSample(_message.Message):
    __slots__ = ("queue", "succeeded", "failed", "retried", "dead_lettered", "rejected", "in_flight", "busy_slots", "backlog", "run_time", "end_to_end", "wait_time", "implausible_times")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    RETRIED_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    BUSY_SLOTS_FIELD_NUMBER: _ClassVar[int]
    BACKLOG_FIELD_NUMBER: _ClassVar[int]
    RUN_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TO_END_FIELD_NUMBER: _ClassVar[int]
    WAIT_TIME_FIELD_NUMBER: _ClassVar[int]
    IMPLAUSIBLE_TIMES_FIELD_NUMBER: _ClassVar[int]
    queue: str
    succeeded: int
    failed: int
    retried: int
    dead_lettered: int
    rejected: int
    in_flight: int
    busy_slots: int
    backlog: int
    run_time: Histogram
    end_to_end: Histogram
    wait_time: Histogram
    implausible_times: int
    def __init__(self, queue: _Optional[str] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ..., retried: _Optional[int] = ..., dead_lettered: _Optional[int] = ..., rejected: _Optional[int] = ..., in_flight: _Optional[int] = ..., busy_slots: _Optional[int] = ..., backlog: _Optional[int] = ..., run_time: _Optional[_Union[Histogram, _Mapping]] = ..., end_to_end: _Optional[_Union[Histogram, _Mapping]] = ..., wait_time: _Optional[_Union[Histogram, _Mapping]] = ..., implausible_times: _Optional[int] = ...) -> None: ...

class Percentiles(_message.Message):
    __slots__ = ("p50", "p90", "p99", "p999", "mean", "count")
    P50_FIELD_NUMBER: _ClassVar[int]
    P90_FIELD_NUMBER: _ClassVar[int]
    P99_FIELD_NUMBER: _ClassVar[int]
    P999_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    p50: float
    p90: float
    p99: float
    p999: float
    mean: float
    count: int
    def __init__(self, p50: _Optional[float] = ..., p90: _Optional[float] = ..., p99: _Optional[float] = ..., p999: _Optional[float] = ..., mean: _Optional[float] = ..., count: _Optional[int] = ...) -> None: ...

class QueueReport(_message.Message):
    __slots__ = ("queue", "group", "succeeded", "failed", "retried", "dead_lettered", "rejected", "rate", "in_flight", "busy_slots", "backlog", "run_time", "wait_time", "end_to_end", "nodes")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    RETRIED_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    BUSY_SLOTS_FIELD_NUMBER: _ClassVar[int]
    BACKLOG_FIELD_NUMBER: _ClassVar[int]
    RUN_TIME_FIELD_NUMBER: _ClassVar[int]
    WAIT_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TO_END_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    queue: str
    group: str
    succeeded: int
    failed: int
    retried: int
    dead_lettered: int
    rejected: int
    rate: float
    in_flight: int
    busy_slots: int
    backlog: int
    run_time: Percentiles
    wait_time: Percentiles
    end_to_end: Percentiles
    nodes: int
    def __init__(self, queue: _Optional[str] = ..., group: _Optional[str] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ..., retried: _Optional[int] = ..., dead_lettered: _Optional[int] = ..., rejected: _Optional[int] = ..., rate: _Optional[float] = ..., in_flight: _Optional[int] = ..., busy_slots: _Optional[int] = ..., backlog: _Optional[int] = ..., run_time: _Optional[_Union[Percentiles, _Mapping]] = ..., wait_time: _Optional[_Union[Percentiles, _Mapping]] = ..., end_to_end: _Optional[_Union[Percentiles, _Mapping]] = ..., nodes: _Optional[int] = ...) -> None: ...

class GetClusterRequest(_message.Message):
    __slots__ = ("window", "by")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    window: str
    by: str
    def __init__(self, window: _Optional[str] = ..., by: _Optional[str] = ...) -> None: ...

class GetClusterResponse(_message.Message):
    __slots__ = ("queues", "window_seconds", "groups", "totals", "covered_seconds")
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    COVERED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    queues: _containers.RepeatedCompositeFieldContainer[QueueReport]
    window_seconds: float
    groups: _containers.RepeatedCompositeFieldContainer[QueueReport]
    totals: _containers.RepeatedCompositeFieldContainer[QueueReport]
    covered_seconds: float
    def __init__(self, queues: _Optional[_Iterable[_Union[QueueReport, _Mapping]]] = ..., window_seconds: _Optional[float] = ..., groups: _Optional[_Iterable[_Union[QueueReport, _Mapping]]] = ..., totals: _Optional[_Iterable[_Union[QueueReport, _Mapping]]] = ..., covered_seconds: _Optional[float] = ...) -> None: ...

class GetQueueStatsRequest(_message.Message):
    __slots__ = ("queue", "window", "by")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    queue: str
    window: str
    by: str
    def __init__(self, queue: _Optional[str] = ..., window: _Optional[str] = ..., by: _Optional[str] = ...) -> None: ...

class GetQueueStatsResponse(_message.Message):
    __slots__ = ("total", "window_seconds", "groups", "covered_seconds")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    COVERED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    total: QueueReport
    window_seconds: float
    groups: _containers.RepeatedCompositeFieldContainer[QueueReport]
    covered_seconds: float
    def __init__(self, total: _Optional[_Union[QueueReport, _Mapping]] = ..., window_seconds: _Optional[float] = ..., groups: _Optional[_Iterable[_Union[QueueReport, _Mapping]]] = ..., covered_seconds: _Optional[float] = ...) -> None: ...

class GetNodeStatsRequest(_message.Message):
    __slots__ = ("node_id", "window")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    window: str
    def __init__(self, node_id: _Optional[str] = ..., window: _Optional[str] = ...) -> None: ...

class GetNodeStatsResponse(_message.Message):
    __slots__ = ("queues", "window_seconds", "total", "covered_seconds")
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    COVERED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    queues: _containers.RepeatedCompositeFieldContainer[QueueReport]
    window_seconds: float
    total: QueueReport
    covered_seconds: float
    def __init__(self, queues: _Optional[_Iterable[_Union[QueueReport, _Mapping]]] = ..., window_seconds: _Optional[float] = ..., total: _Optional[_Union[QueueReport, _Mapping]] = ..., covered_seconds: _Optional[float] = ...) -> None: ...

class QueryRangeRequest(_message.Message):
    __slots__ = ("queue", "by", "range", "step")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    queue: str
    by: str
    range: str
    step: str
    def __init__(self, queue: _Optional[str] = ..., by: _Optional[str] = ..., range: _Optional[str] = ..., step: _Optional[str] = ...) -> None: ...

class Point(_message.Message):
    __slots__ = ("at", "succeeded", "failed", "retried", "dead_lettered", "rejected", "rate", "backlog", "run_time", "wait_time", "end_to_end")
    AT_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    RETRIED_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    BACKLOG_FIELD_NUMBER: _ClassVar[int]
    RUN_TIME_FIELD_NUMBER: _ClassVar[int]
    WAIT_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TO_END_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    succeeded: int
    failed: int
    retried: int
    dead_lettered: int
    rejected: int
    rate: float
    backlog: int
    run_time: Percentiles
    wait_time: Percentiles
    end_to_end: Percentiles
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ..., retried: _Optional[int] = ..., dead_lettered: _Optional[int] = ..., rejected: _Optional[int] = ..., rate: _Optional[float] = ..., backlog: _Optional[int] = ..., run_time: _Optional[_Union[Percentiles, _Mapping]] = ..., wait_time: _Optional[_Union[Percentiles, _Mapping]] = ..., end_to_end: _Optional[_Union[Percentiles, _Mapping]] = ...) -> None: ...

class Series(_message.Message):
    __slots__ = ("queue", "group", "points")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    queue: str
    group: str
    points: _containers.RepeatedCompositeFieldContainer[Point]
    def __init__(self, queue: _Optional[str] = ..., group: _Optional[str] = ..., points: _Optional[_Iterable[_Union[Point, _Mapping]]] = ...) -> None: ...

class QueryRangeResponse(_message.Message):
    __slots__ = ("series", "step_seconds")
    SERIES_FIELD_NUMBER: _ClassVar[int]
    STEP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    series: _containers.RepeatedCompositeFieldContainer[Series]
    step_seconds: float
    def __init__(self, series: _Optional[_Iterable[_Union[Series, _Mapping]]] = ..., step_seconds: _Optional[float] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("window", "by", "interval_seconds", "recent")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RECENT_FIELD_NUMBER: _ClassVar[int]
    window: str
    by: str
    interval_seconds: float
    recent: str
    def __init__(self, window: _Optional[str] = ..., by: _Optional[str] = ..., interval_seconds: _Optional[float] = ..., recent: _Optional[str] = ...) -> None: ...

class WatchResponse(_message.Message):
    __slots__ = ("snapshot", "recent", "at")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    RECENT_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    snapshot: GetClusterResponse
    recent: _containers.RepeatedCompositeFieldContainer[Series]
    at: _timestamp_pb2.Timestamp
    def __init__(self, snapshot: _Optional[_Union[GetClusterResponse, _Mapping]] = ..., recent: _Optional[_Iterable[_Union[Series, _Mapping]]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
