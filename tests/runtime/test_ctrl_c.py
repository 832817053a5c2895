"""Ctrl-C over a run's life (`CtrlC`): while the run starts it cancels the start, while the tree
grows it is the watch's to act on, and while the record is written only a second press ends the
process. Real SIGINTs to this process, caught by the event loop's handler."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from swarmlab.runtime._watch import CtrlC


def press() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_a_press_as_the_run_starts_cancels_the_start_only() -> None:
    async def run() -> tuple[bool, bool, bool]:
        with CtrlC() as ctrl_c:
            try:
                press()
                await asyncio.sleep(10)  # the start: Ray, the root's model call
                cancelled = False
            except asyncio.CancelledError:
                task = asyncio.current_task()
                assert task is not None
                task.uncancel()
                cancelled = True
            ctrl_c.ending()
            await asyncio.sleep(0.05)  # the record is written undisturbed
            return cancelled, ctrl_c.cancelled_start, ctrl_c.pressed.is_set()

    assert asyncio.run(asyncio.wait_for(run(), 5)) == (True, True, True)


def test_a_press_while_the_tree_grows_is_the_watch_s_and_cancels_nothing() -> None:
    async def run() -> tuple[bool, bool]:
        with CtrlC() as ctrl_c:
            pressed = ctrl_c.growing()
            press()
            await asyncio.wait_for(pressed.wait(), 5)
            await asyncio.sleep(0.05)  # not cancelled
            return pressed.is_set(), ctrl_c.cancelled_start

    assert asyncio.run(run()) == (True, False)


def test_while_the_record_is_written_only_a_second_press_ends_the_process() -> None:
    async def run(presses_before: int) -> None:
        with CtrlC() as ctrl_c:
            pressed = ctrl_c.growing()
            for _ in range(presses_before):  # the press that stopped the run, if any
                press()
                await asyncio.wait_for(pressed.wait(), 5)
            ctrl_c.ending()
            press()
            await asyncio.sleep(0.2)

    asyncio.run(run(0))  # a first press: the record is written on
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(run(1))
