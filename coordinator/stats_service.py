"""StatsService: cluster, queue and node reports for dashboards and octoctl."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from octobot.coordinator.app import Coordinator
from octobot.coordinator.errors import rpc_errors
from octobot.coordinator.stats import parse_window
from octobot.v1 import stats_pb2, stats_pb2_grpc

Ctx = grpc.aio.ServicerContext


class StatsService(stats_pb2_grpc.StatsServiceServicer):
    def __init__(self, app: Coordinator) -> None:
        self.app = app

    async def _grouping(self, by: str) -> Callable[[str], str] | None:
        """Map node ids to the group ``by`` names: the node itself or one of its labels."""
        if not by:
            return None
        if by == "node":
            return lambda node_id: node_id
        labels = {n.node_id: n.labels for n in await self.app.db(self.app.store.list_nodes)}
        return lambda node_id: labels.get(node_id, {}).get(by, "")

    @rpc_errors
    async def GetCluster(self, request: stats_pb2.GetClusterRequest, context: Ctx) -> stats_pb2.GetClusterResponse:
        window = parse_window(request.window)
        rows = self.app.stats.report(window, group_of=await self._grouping(request.by))
        return stats_pb2.GetClusterResponse(queues=rows, window_seconds=window)

    @rpc_errors
    async def GetQueue(self, request: stats_pb2.GetQueueStatsRequest, context: Ctx) -> stats_pb2.GetQueueStatsResponse:
        window = parse_window(request.window)
        await self.app.db(self.app.store.get_queue, request.queue)  # NOT_FOUND for unknown queues
        rows = self.app.stats.report(window, queue=request.queue, group_of=await self._grouping(request.by))
        return stats_pb2.GetQueueStatsResponse(rows=rows, window_seconds=window)

    @rpc_errors
    async def GetNode(self, request: stats_pb2.GetNodeStatsRequest, context: Ctx) -> stats_pb2.GetNodeStatsResponse:
        window = parse_window(request.window)
        if request.node_id not in self.app.stats.nodes():
            await self.app.db(self.app.store.get_node, request.node_id)  # NOT_FOUND for unknown nodes
        rows = self.app.stats.report(window, node=request.node_id)
        return stats_pb2.GetNodeStatsResponse(queues=rows, window_seconds=window)
