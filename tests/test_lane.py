"""The coordinator's lane: background pieces take turns, one step each per loop
iteration, leave the loop idle between steps, and a cancelled piece never
leaves the lane taken."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from octobot.coordinator.lane import SLICE, Lane


async def piece(lane: Lane, name: str, items: int, log: list[str]) -> None:
    async with lane.turn():
        for _ in range(items):
            log.append(name)
            time.sleep(SLICE)  # an item that uses up the slice
            await lane.pace()


def test_pieces_take_turns() -> None:
    asyncio.run(_test_pieces_take_turns())


async def _test_pieces_take_turns() -> None:
    lane, log = Lane(), []
    await asyncio.gather(piece(lane, "a", 3, log), piece(lane, "b", 3, log))
    assert log == ["a", "b", "a", "b", "a", "b"]


def test_short_items_share_one_slice() -> None:
    asyncio.run(_test_short_items_share_one_slice())


async def _test_short_items_share_one_slice() -> None:
    lane, log = Lane(), []

    async def quick(name: str) -> None:
        async with lane.turn():
            for _ in range(3):
                log.append(name)
                await lane.pace()  # well within the slice: no yield

    await asyncio.gather(quick("a"), quick("b"))
    assert log == ["a", "a", "a", "b", "b", "b"]


def test_the_loop_idles_between_slices() -> None:
    asyncio.run(_test_the_loop_idles_between_slices())


async def _test_the_loop_idles_between_slices() -> None:
    # As gRPC's poller wakes the loop: a byte per completion, read back one per
    # iteration. A loop that only steps between slices would drain one per slice.
    lane, log, drained = Lane(), [], []
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.send(b"x" * 200)
    loop = asyncio.get_running_loop()
    loop.add_reader(wake_r, lambda: drained.append(wake_r.recv(1)))
    try:
        await piece(lane, "busy", 5, log)
    finally:
        loop.remove_reader(wake_r)
        wake_r.close()
        wake_w.close()
    assert len(drained) >= 20


def test_a_cancelled_piece_frees_the_lane() -> None:
    asyncio.run(_test_a_cancelled_piece_frees_the_lane())


async def _test_a_cancelled_piece_frees_the_lane() -> None:
    lane, log = Lane(), []
    long = asyncio.create_task(piece(lane, "long", 1000, log))
    other = asyncio.create_task(piece(lane, "other", 2, log))
    while "other" not in log:
        await asyncio.sleep(0)
    long.cancel()  # waiting for its next step, or running one
    await asyncio.wait_for(other, 5)
    await asyncio.wait_for(piece(lane, "after", 1, log), 5)
    assert log[-1] == "after"
    assert long.cancelled()


def test_a_nested_turn_is_part_of_the_outer_one() -> None:
    asyncio.run(_test_a_nested_turn_is_part_of_the_outer_one())


async def _test_a_nested_turn_is_part_of_the_outer_one() -> None:
    lane, log = Lane(), []

    async def outer() -> None:
        async with lane.turn():
            log.append("outer")
            async with lane.turn():
                log.append("inner")
                await lane.pace()
            log.append("outer again")

    await asyncio.wait_for(asyncio.gather(outer(), piece(lane, "other", 1, log)), 5)
    assert log == ["outer", "inner", "outer again", "other"]


def test_pace_outside_a_turn_is_a_bug() -> None:
    asyncio.run(_test_pace_outside_a_turn_is_a_bug())


async def _test_pace_outside_a_turn_is_a_bug() -> None:
    with pytest.raises(RuntimeError, match="outside a turn"):
        await Lane().pace()
