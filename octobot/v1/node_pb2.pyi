import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from octobot.v1 import auth_pb2 as _auth_pb2
from octobot.v1 import queue_pb2 as _queue_pb2
from octobot.v1 import stats_pb2 as _stats_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JoinRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class JoinResponse(_message.Message):
    __slots__ = ("credential",)
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    credential: str
    def __init__(self, credential: _Optional[str] = ...) -> None: ...

class ConnectRequest(_message.Message):
    __slots__ = ("hello", "heartbeat", "stats", "applied")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    heartbeat: Heartbeat
    stats: StatsReport
    applied: Applied
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., stats: _Optional[_Union[StatsReport, _Mapping]] = ..., applied: _Optional[_Union[Applied, _Mapping]] = ...) -> None: ...

class ConnectResponse(_message.Message):
    __slots__ = ("assignment",)
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    assignment: _queue_pb2.Assignment
    def __init__(self, assignment: _Optional[_Union[_queue_pb2.Assignment, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("node_id", "hostname", "labels", "version", "tasks", "applied_generation", "pid")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    hostname: str
    labels: _containers.ScalarMap[str, str]
    version: str
    tasks: _containers.RepeatedScalarFieldContainer[str]
    applied_generation: int
    pid: int
    def __init__(self, node_id: _Optional[str] = ..., hostname: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., version: _Optional[str] = ..., tasks: _Optional[_Iterable[str]] = ..., applied_generation: _Optional[int] = ..., pid: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("queues", "drained")
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    DRAINED_FIELD_NUMBER: _ClassVar[int]
    queues: _containers.RepeatedCompositeFieldContainer[QueueStatus]
    drained: bool
    def __init__(self, queues: _Optional[_Iterable[_Union[QueueStatus, _Mapping]]] = ..., drained: _Optional[bool] = ...) -> None: ...

class QueueStatus(_message.Message):
    __slots__ = ("queue", "workers", "in_flight", "connected", "paused", "error", "handed_back", "missing_tasks")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    HANDED_BACK_FIELD_NUMBER: _ClassVar[int]
    MISSING_TASKS_FIELD_NUMBER: _ClassVar[int]
    queue: str
    workers: int
    in_flight: int
    connected: bool
    paused: bool
    error: str
    handed_back: int
    missing_tasks: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, queue: _Optional[str] = ..., workers: _Optional[int] = ..., in_flight: _Optional[int] = ..., connected: _Optional[bool] = ..., paused: _Optional[bool] = ..., error: _Optional[str] = ..., handed_back: _Optional[int] = ..., missing_tasks: _Optional[_Iterable[str]] = ...) -> None: ...

class StatsReport(_message.Message):
    __slots__ = ("at", "samples")
    AT_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    samples: _containers.RepeatedCompositeFieldContainer[_stats_pb2.QueueSample]
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., samples: _Optional[_Iterable[_Union[_stats_pb2.QueueSample, _Mapping]]] = ...) -> None: ...

class Applied(_message.Message):
    __slots__ = ("generation",)
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    generation: int
    def __init__(self, generation: _Optional[int] = ...) -> None: ...
