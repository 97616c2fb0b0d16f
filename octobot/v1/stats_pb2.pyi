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
    __slots__ = ("queue", "succeeded", "failed", "retried", "dead_lettered", "rejected", "in_flight", "busy_slots", "backlog", "run_time", "end_to_end", "wait_time")
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
    def __init__(self, queue: _Optional[str] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ..., retried: _Optional[int] = ..., dead_lettered: _Optional[int] = ..., rejected: _Optional[int] = ..., in_flight: _Optional[int] = ..., busy_slots: _Optional[int] = ..., backlog: _Optional[int] = ..., run_time: _Optional[_Union[Histogram, _Mapping]] = ..., end_to_end: _Optional[_Union[Histogram, _Mapping]] = ..., wait_time: _Optional[_Union[Histogram, _Mapping]] = ...) -> None: ...

class QueueReport(_message.Message):
    __slots__ = ("queue", "group", "succeeded", "failed", "retried", "dead_lettered", "rejected", "rate", "in_flight", "busy_slots", "backlog", "run_p50", "run_p90", "run_p99", "run_p999", "e2e_p50", "e2e_p90", "e2e_p99", "e2e_p999")
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
    RUN_P50_FIELD_NUMBER: _ClassVar[int]
    RUN_P90_FIELD_NUMBER: _ClassVar[int]
    RUN_P99_FIELD_NUMBER: _ClassVar[int]
    RUN_P999_FIELD_NUMBER: _ClassVar[int]
    E2E_P50_FIELD_NUMBER: _ClassVar[int]
    E2E_P90_FIELD_NUMBER: _ClassVar[int]
    E2E_P99_FIELD_NUMBER: _ClassVar[int]
    E2E_P999_FIELD_NUMBER: _ClassVar[int]
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
    run_p50: float
    run_p90: float
    run_p99: float
    run_p999: float
    e2e_p50: float
    e2e_p90: float
    e2e_p99: float
    e2e_p999: float
    def __init__(self, queue: _Optional[str] = ..., group: _Optional[str] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ..., retried: _Optional[int] = ..., dead_lettered: _Optional[int] = ..., rejected: _Optional[int] = ..., rate: _Optional[float] = ..., in_flight: _Optional[int] = ..., busy_slots: _Optional[int] = ..., backlog: _Optional[int] = ..., run_p50: _Optional[float] = ..., run_p90: _Optional[float] = ..., run_p99: _Optional[float] = ..., run_p999: _Optional[float] = ..., e2e_p50: _Optional[float] = ..., e2e_p90: _Optional[float] = ..., e2e_p99: _Optional[float] = ..., e2e_p999: _Optional[float] = ...) -> None: ...

class GetClusterRequest(_message.Message):
    __slots__ = ("window", "by")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    window: str
    by: str
    def __init__(self, window: _Optional[str] = ..., by: _Optional[str] = ...) -> None: ...

class GetClusterResponse(_message.Message):
    __slots__ = ("queues", "window_seconds")
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    queues: _containers.RepeatedCompositeFieldContainer[QueueReport]
    window_seconds: float
    def __init__(self, queues: _Optional[_Iterable[_Union[QueueReport, _Mapping]]] = ..., window_seconds: _Optional[float] = ...) -> None: ...

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
    __slots__ = ("rows", "window_seconds")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[QueueReport]
    window_seconds: float
    def __init__(self, rows: _Optional[_Iterable[_Union[QueueReport, _Mapping]]] = ..., window_seconds: _Optional[float] = ...) -> None: ...

class GetNodeStatsRequest(_message.Message):
    __slots__ = ("node_id", "window")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    window: str
    def __init__(self, node_id: _Optional[str] = ..., window: _Optional[str] = ...) -> None: ...

class GetNodeStatsResponse(_message.Message):
    __slots__ = ("queues", "window_seconds")
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    queues: _containers.RepeatedCompositeFieldContainer[QueueReport]
    window_seconds: float
    def __init__(self, queues: _Optional[_Iterable[_Union[QueueReport, _Mapping]]] = ..., window_seconds: _Optional[float] = ...) -> None: ...
