from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HistogramColumns(_message.Message):
    __slots__ = ("relative_accuracy", "indexes", "counts", "zero_count", "sum")
    RELATIVE_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    INDEXES_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    ZERO_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUM_FIELD_NUMBER: _ClassVar[int]
    relative_accuracy: _containers.RepeatedScalarFieldContainer[float]
    indexes: _containers.RepeatedScalarFieldContainer[int]
    counts: _containers.RepeatedScalarFieldContainer[int]
    zero_count: _containers.RepeatedScalarFieldContainer[int]
    sum: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, relative_accuracy: _Optional[_Iterable[float]] = ..., indexes: _Optional[_Iterable[int]] = ..., counts: _Optional[_Iterable[int]] = ..., zero_count: _Optional[_Iterable[int]] = ..., sum: _Optional[_Iterable[float]] = ...) -> None: ...

class SampleColumns(_message.Message):
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
    queue: _containers.RepeatedScalarFieldContainer[str]
    succeeded: _containers.RepeatedScalarFieldContainer[int]
    failed: _containers.RepeatedScalarFieldContainer[int]
    retried: _containers.RepeatedScalarFieldContainer[int]
    dead_lettered: _containers.RepeatedScalarFieldContainer[int]
    rejected: _containers.RepeatedScalarFieldContainer[int]
    in_flight: _containers.RepeatedScalarFieldContainer[int]
    busy_slots: _containers.RepeatedScalarFieldContainer[int]
    backlog: _containers.RepeatedScalarFieldContainer[int]
    run_time: HistogramColumns
    end_to_end: HistogramColumns
    wait_time: HistogramColumns
    implausible_times: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, queue: _Optional[_Iterable[str]] = ..., succeeded: _Optional[_Iterable[int]] = ..., failed: _Optional[_Iterable[int]] = ..., retried: _Optional[_Iterable[int]] = ..., dead_lettered: _Optional[_Iterable[int]] = ..., rejected: _Optional[_Iterable[int]] = ..., in_flight: _Optional[_Iterable[int]] = ..., busy_slots: _Optional[_Iterable[int]] = ..., backlog: _Optional[_Iterable[int]] = ..., run_time: _Optional[_Union[HistogramColumns, _Mapping]] = ..., end_to_end: _Optional[_Union[HistogramColumns, _Mapping]] = ..., wait_time: _Optional[_Union[HistogramColumns, _Mapping]] = ..., implausible_times: _Optional[_Iterable[int]] = ...) -> None: ...
