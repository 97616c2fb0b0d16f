import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from octobot.v1 import auth_pb2 as _auth_pb2
from octobot.v1 import queue_pb2 as _queue_pb2
from octobot.v1 import node_pb2 as _node_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodeState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NODE_STATE_UNSPECIFIED: _ClassVar[NodeState]
    NODE_STATE_UP: _ClassVar[NodeState]
    NODE_STATE_SUSPECT: _ClassVar[NodeState]
    NODE_STATE_DOWN: _ClassVar[NodeState]

class QueueState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUEUE_STATE_UNSPECIFIED: _ClassVar[QueueState]
    QUEUE_STATE_SERVING: _ClassVar[QueueState]
    QUEUE_STATE_UNSERVED: _ClassVar[QueueState]
    QUEUE_STATE_PAUSED: _ClassVar[QueueState]
    QUEUE_STATE_BROKER_ERROR: _ClassVar[QueueState]

class QueueChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUEUE_CHANGE_KIND_UNSPECIFIED: _ClassVar[QueueChangeKind]
    QUEUE_CHANGE_KIND_CREATE: _ClassVar[QueueChangeKind]
    QUEUE_CHANGE_KIND_UPDATE: _ClassVar[QueueChangeKind]
    QUEUE_CHANGE_KIND_DELETE: _ClassVar[QueueChangeKind]
NODE_STATE_UNSPECIFIED: NodeState
NODE_STATE_UP: NodeState
NODE_STATE_SUSPECT: NodeState
NODE_STATE_DOWN: NodeState
QUEUE_STATE_UNSPECIFIED: QueueState
QUEUE_STATE_SERVING: QueueState
QUEUE_STATE_UNSERVED: QueueState
QUEUE_STATE_PAUSED: QueueState
QUEUE_STATE_BROKER_ERROR: QueueState
QUEUE_CHANGE_KIND_UNSPECIFIED: QueueChangeKind
QUEUE_CHANGE_KIND_CREATE: QueueChangeKind
QUEUE_CHANGE_KIND_UPDATE: QueueChangeKind
QUEUE_CHANGE_KIND_DELETE: QueueChangeKind

class NodeInfo(_message.Message):
    __slots__ = ("node_id", "hostname", "labels", "version", "tasks", "state", "last_seen", "assigned_generation", "applied_generation", "draining", "drained", "queues", "registered_at", "cordoned", "cordoned_queues")
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
    STATE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    DRAINED_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    CORDONED_FIELD_NUMBER: _ClassVar[int]
    CORDONED_QUEUES_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    hostname: str
    labels: _containers.ScalarMap[str, str]
    version: str
    tasks: _containers.RepeatedScalarFieldContainer[str]
    state: NodeState
    last_seen: _timestamp_pb2.Timestamp
    assigned_generation: int
    applied_generation: int
    draining: bool
    drained: bool
    queues: _containers.RepeatedCompositeFieldContainer[_node_pb2.QueueStatus]
    registered_at: _timestamp_pb2.Timestamp
    cordoned: bool
    cordoned_queues: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, node_id: _Optional[str] = ..., hostname: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., version: _Optional[str] = ..., tasks: _Optional[_Iterable[str]] = ..., state: _Optional[_Union[NodeState, str]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., assigned_generation: _Optional[int] = ..., applied_generation: _Optional[int] = ..., draining: _Optional[bool] = ..., drained: _Optional[bool] = ..., queues: _Optional[_Iterable[_Union[_node_pb2.QueueStatus, _Mapping]]] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cordoned: _Optional[bool] = ..., cordoned_queues: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateQueueRequest(_message.Message):
    __slots__ = ("queue",)
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: _queue_pb2.QueueSpec
    def __init__(self, queue: _Optional[_Union[_queue_pb2.QueueSpec, _Mapping]] = ...) -> None: ...

class CreateQueueResponse(_message.Message):
    __slots__ = ("queue", "health")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    queue: _queue_pb2.QueueSpec
    health: QueueHealth
    def __init__(self, queue: _Optional[_Union[_queue_pb2.QueueSpec, _Mapping]] = ..., health: _Optional[_Union[QueueHealth, _Mapping]] = ...) -> None: ...

class UpdateQueueRequest(_message.Message):
    __slots__ = ("queue", "update_mask")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    queue: _queue_pb2.QueueSpec
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, queue: _Optional[_Union[_queue_pb2.QueueSpec, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateQueueResponse(_message.Message):
    __slots__ = ("queue", "health")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    queue: _queue_pb2.QueueSpec
    health: QueueHealth
    def __init__(self, queue: _Optional[_Union[_queue_pb2.QueueSpec, _Mapping]] = ..., health: _Optional[_Union[QueueHealth, _Mapping]] = ...) -> None: ...

class DeleteQueueRequest(_message.Message):
    __slots__ = ("name", "purge_broker")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PURGE_BROKER_FIELD_NUMBER: _ClassVar[int]
    name: str
    purge_broker: bool
    def __init__(self, name: _Optional[str] = ..., purge_broker: _Optional[bool] = ...) -> None: ...

class DeleteQueueResponse(_message.Message):
    __slots__ = ("purged", "dead_purged")
    PURGED_FIELD_NUMBER: _ClassVar[int]
    DEAD_PURGED_FIELD_NUMBER: _ClassVar[int]
    purged: int
    dead_purged: int
    def __init__(self, purged: _Optional[int] = ..., dead_purged: _Optional[int] = ...) -> None: ...

class GetQueueRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetQueueResponse(_message.Message):
    __slots__ = ("queue", "placements", "health", "endpoint_backlogs")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    PLACEMENTS_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_BACKLOGS_FIELD_NUMBER: _ClassVar[int]
    queue: _queue_pb2.QueueSpec
    placements: _containers.RepeatedCompositeFieldContainer[QueuePlacement]
    health: QueueHealth
    endpoint_backlogs: _containers.RepeatedCompositeFieldContainer[EndpointBacklog]
    def __init__(self, queue: _Optional[_Union[_queue_pb2.QueueSpec, _Mapping]] = ..., placements: _Optional[_Iterable[_Union[QueuePlacement, _Mapping]]] = ..., health: _Optional[_Union[QueueHealth, _Mapping]] = ..., endpoint_backlogs: _Optional[_Iterable[_Union[EndpointBacklog, _Mapping]]] = ...) -> None: ...

class EndpointBacklog(_message.Message):
    __slots__ = ("selector", "url", "backlog")
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    BACKLOG_FIELD_NUMBER: _ClassVar[int]
    selector: str
    url: str
    backlog: int
    def __init__(self, selector: _Optional[str] = ..., url: _Optional[str] = ..., backlog: _Optional[int] = ...) -> None: ...

class CreateBrokerRequest(_message.Message):
    __slots__ = ("broker",)
    BROKER_FIELD_NUMBER: _ClassVar[int]
    broker: _queue_pb2.Broker
    def __init__(self, broker: _Optional[_Union[_queue_pb2.Broker, _Mapping]] = ...) -> None: ...

class CreateBrokerResponse(_message.Message):
    __slots__ = ("broker",)
    BROKER_FIELD_NUMBER: _ClassVar[int]
    broker: _queue_pb2.Broker
    def __init__(self, broker: _Optional[_Union[_queue_pb2.Broker, _Mapping]] = ...) -> None: ...

class UpdateBrokerRequest(_message.Message):
    __slots__ = ("broker",)
    BROKER_FIELD_NUMBER: _ClassVar[int]
    broker: _queue_pb2.Broker
    def __init__(self, broker: _Optional[_Union[_queue_pb2.Broker, _Mapping]] = ...) -> None: ...

class UpdateBrokerResponse(_message.Message):
    __slots__ = ("broker",)
    BROKER_FIELD_NUMBER: _ClassVar[int]
    broker: _queue_pb2.Broker
    def __init__(self, broker: _Optional[_Union[_queue_pb2.Broker, _Mapping]] = ...) -> None: ...

class DeleteBrokerRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteBrokerResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetBrokerRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetBrokerResponse(_message.Message):
    __slots__ = ("broker", "queues")
    BROKER_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    broker: _queue_pb2.Broker
    queues: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, broker: _Optional[_Union[_queue_pb2.Broker, _Mapping]] = ..., queues: _Optional[_Iterable[str]] = ...) -> None: ...

class ListBrokersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListBrokersResponse(_message.Message):
    __slots__ = ("brokers",)
    BROKERS_FIELD_NUMBER: _ClassVar[int]
    brokers: _containers.RepeatedCompositeFieldContainer[_queue_pb2.Broker]
    def __init__(self, brokers: _Optional[_Iterable[_Union[_queue_pb2.Broker, _Mapping]]] = ...) -> None: ...

class QueueHealth(_message.Message):
    __slots__ = ("queue", "state", "nodes", "broker_errors", "error")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    BROKER_ERRORS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    queue: str
    state: QueueState
    nodes: int
    broker_errors: int
    error: str
    def __init__(self, queue: _Optional[str] = ..., state: _Optional[_Union[QueueState, str]] = ..., nodes: _Optional[int] = ..., broker_errors: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class QueuePlacement(_message.Message):
    __slots__ = ("node_id", "state", "applied_generation", "status")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    APPLIED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    state: NodeState
    applied_generation: int
    status: _node_pb2.QueueStatus
    def __init__(self, node_id: _Optional[str] = ..., state: _Optional[_Union[NodeState, str]] = ..., applied_generation: _Optional[int] = ..., status: _Optional[_Union[_node_pb2.QueueStatus, _Mapping]] = ...) -> None: ...

class ListQueuesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListQueuesResponse(_message.Message):
    __slots__ = ("queues", "health")
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    queues: _containers.RepeatedCompositeFieldContainer[_queue_pb2.QueueSpec]
    health: _containers.RepeatedCompositeFieldContainer[QueueHealth]
    def __init__(self, queues: _Optional[_Iterable[_Union[_queue_pb2.QueueSpec, _Mapping]]] = ..., health: _Optional[_Iterable[_Union[QueueHealth, _Mapping]]] = ...) -> None: ...

class ApplyQueuesRequest(_message.Message):
    __slots__ = ("queues", "prune", "dry_run")
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    PRUNE_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    queues: _containers.RepeatedCompositeFieldContainer[_queue_pb2.QueueSpec]
    prune: bool
    dry_run: bool
    def __init__(self, queues: _Optional[_Iterable[_Union[_queue_pb2.QueueSpec, _Mapping]]] = ..., prune: _Optional[bool] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class ApplyQueuesResponse(_message.Message):
    __slots__ = ("changes", "generation", "unserved")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    UNSERVED_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[QueueChange]
    generation: int
    unserved: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, changes: _Optional[_Iterable[_Union[QueueChange, _Mapping]]] = ..., generation: _Optional[int] = ..., unserved: _Optional[_Iterable[str]] = ...) -> None: ...

class QueueChange(_message.Message):
    __slots__ = ("kind", "name", "fields", "before", "after")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    kind: QueueChangeKind
    name: str
    fields: _containers.RepeatedScalarFieldContainer[str]
    before: _queue_pb2.QueueSpec
    after: _queue_pb2.QueueSpec
    def __init__(self, kind: _Optional[_Union[QueueChangeKind, str]] = ..., name: _Optional[str] = ..., fields: _Optional[_Iterable[str]] = ..., before: _Optional[_Union[_queue_pb2.QueueSpec, _Mapping]] = ..., after: _Optional[_Union[_queue_pb2.QueueSpec, _Mapping]] = ...) -> None: ...

class PauseQueueRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class PauseQueueResponse(_message.Message):
    __slots__ = ("queue",)
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: _queue_pb2.QueueSpec
    def __init__(self, queue: _Optional[_Union[_queue_pb2.QueueSpec, _Mapping]] = ...) -> None: ...

class ResumeQueueRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ResumeQueueResponse(_message.Message):
    __slots__ = ("queue",)
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: _queue_pb2.QueueSpec
    def __init__(self, queue: _Optional[_Union[_queue_pb2.QueueSpec, _Mapping]] = ...) -> None: ...

class ListNodesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListNodesResponse(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ...) -> None: ...

class GetNodeRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class GetNodeResponse(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: NodeInfo
    def __init__(self, node: _Optional[_Union[NodeInfo, _Mapping]] = ...) -> None: ...

class DrainNodeRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class DrainNodeResponse(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: NodeInfo
    def __init__(self, node: _Optional[_Union[NodeInfo, _Mapping]] = ...) -> None: ...

class CordonNodeRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class CordonNodeResponse(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: NodeInfo
    def __init__(self, node: _Optional[_Union[NodeInfo, _Mapping]] = ...) -> None: ...

class UncordonNodeRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class UncordonNodeResponse(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: NodeInfo
    def __init__(self, node: _Optional[_Union[NodeInfo, _Mapping]] = ...) -> None: ...

class ForgetNodeRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class ForgetNodeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EnqueueRequest(_message.Message):
    __slots__ = ("queue", "messages", "endpoint")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    queue: str
    messages: _containers.RepeatedScalarFieldContainer[bytes]
    endpoint: str
    def __init__(self, queue: _Optional[str] = ..., messages: _Optional[_Iterable[bytes]] = ..., endpoint: _Optional[str] = ...) -> None: ...

class EnqueueResponse(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("id", "body", "reason", "error", "failed_at", "body_size", "unreadable")
    ID_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FAILED_AT_FIELD_NUMBER: _ClassVar[int]
    BODY_SIZE_FIELD_NUMBER: _ClassVar[int]
    UNREADABLE_FIELD_NUMBER: _ClassVar[int]
    id: str
    body: bytes
    reason: str
    error: str
    failed_at: _timestamp_pb2.Timestamp
    body_size: int
    unreadable: bool
    def __init__(self, id: _Optional[str] = ..., body: _Optional[bytes] = ..., reason: _Optional[str] = ..., error: _Optional[str] = ..., failed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., body_size: _Optional[int] = ..., unreadable: _Optional[bool] = ...) -> None: ...

class ListDeadLettersRequest(_message.Message):
    __slots__ = ("queue", "limit", "page_token", "endpoint")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    queue: str
    limit: int
    page_token: str
    endpoint: str
    def __init__(self, queue: _Optional[str] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ..., endpoint: _Optional[str] = ...) -> None: ...

class ListDeadLettersResponse(_message.Message):
    __slots__ = ("letters", "next_page_token")
    LETTERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    letters: _containers.RepeatedCompositeFieldContainer[DeadLetter]
    next_page_token: str
    def __init__(self, letters: _Optional[_Iterable[_Union[DeadLetter, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RetryDeadLettersRequest(_message.Message):
    __slots__ = ("queue", "ids", "all", "endpoint")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    queue: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    all: bool
    endpoint: str
    def __init__(self, queue: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., all: _Optional[bool] = ..., endpoint: _Optional[str] = ...) -> None: ...

class RetryDeadLettersResponse(_message.Message):
    __slots__ = ("retried",)
    RETRIED_FIELD_NUMBER: _ClassVar[int]
    retried: int
    def __init__(self, retried: _Optional[int] = ...) -> None: ...

class PurgeDeadLettersRequest(_message.Message):
    __slots__ = ("queue", "endpoint")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    queue: str
    endpoint: str
    def __init__(self, queue: _Optional[str] = ..., endpoint: _Optional[str] = ...) -> None: ...

class PurgeDeadLettersResponse(_message.Message):
    __slots__ = ("purged",)
    PURGED_FIELD_NUMBER: _ClassVar[int]
    purged: int
    def __init__(self, purged: _Optional[int] = ...) -> None: ...

class ListAuditRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("id", "at", "actor", "action", "target", "detail")
    ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    id: int
    at: _timestamp_pb2.Timestamp
    actor: str
    action: str
    target: str
    detail: str
    def __init__(self, id: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., target: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class ListAuditResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ...) -> None: ...
