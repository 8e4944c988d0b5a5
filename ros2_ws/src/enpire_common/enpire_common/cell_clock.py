"""Waits on a cell's clock (no rclpy): "until this holds, or until T seconds of cell time have passed".

A cell's clock is its nodes' clock: wall time on a real cell, the simulator's `/<cell>/clock` on a
simulated one (`use_sim_time`). Timeouts, budgets and deadlines inside a cell count on it, so an
overloaded machine slows a simulated cell's time instead of breaking its deadlines.

Two things a wall-clock wait never meets:
- Before its first clock message a sim-time node's clock reads 0: a wait starts counting at the first
  reading that is not 0 (it waits for the clock; it neither times out at once nor divides by it).
- A lockstep simulated cell's clock moves only with its commands, so a dead cell (or one whose
  commands are lost) would hold a wait forever. The liveness backstop ends a wait when the clock has
  not moved for `stall_timeout_s` of wall time, and says so ('cell clock stalled for N s'), distinct
  from a timeout on cell time. It must be generous: a lockstep cell's clock also stands still, rightly,
  while the cell waits for a reset, a verdict or a policy that thinks.

    clock = CellClock(lambda: node.get_clock().now().nanoseconds, stall_timeout_s=60.0)
    result = clock.wait_until(lambda: state_arrived(), timeout_s=2.0)
    if not result:
        raise TrialAborted(result.reason)
"""
from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import Field

from enpire_common import names

# Wall seconds a cell clock may stand still before a wait gives up on the cell (the liveness backstop).
DEFAULT_CLOCK_STALL_TIMEOUT_S = 60.0


def cell_time_field(default: float, what: str, *, le: float, zero_allowed: bool = False):
    """A node parameter (pydantic field) counted on the cell's clock: `what`, in s of cell time."""
    return Field(default, ge=0.0 if zero_allowed else None, gt=None if zero_allowed else 0.0, le=le,
                 description=f'{what}, s of cell time')


def stall_timeout_field(default: float, why: str):
    """A node parameter (pydantic field): the liveness backstop of its waits on the cell's clock."""
    return Field(default, gt=0.0, le=3600.0, description="a wait on the cell's clock gives up when the clock "
                                                         f'has not moved for this many wall s ({why})')


class Waited(enum.Enum):
    MET = 'met'                # the predicate held
    TIMED_OUT = 'timed_out'    # the cell-time timeout passed (for `sleep`: the wanted end)
    STALLED = 'stalled'        # the cell clock stood still for the stall timeout (wall)


@dataclass(frozen=True)
class WaitResult:
    outcome: Waited
    reason: str = ''           # '' when met; else why the wait ended, for a log or a failure reason

    def __bool__(self) -> bool:
        return self.outcome is Waited.MET

    @property
    def stalled(self) -> bool:
        return self.outcome is Waited.STALLED


MET = WaitResult(Waited.MET)


class CellDeadline:
    """`timeout_s` of cell time from the first clock reading that is not 0, with the stall backstop.
    `expired()` is None while it runs, else the WaitResult that ends the wait."""

    def __init__(self, clock: CellClock, timeout_s: float):
        self.clock, self.timeout_s = clock, float(timeout_s)
        self._end_ns: float | None = None      # set at the first clock reading that is not 0
        self._seen_ns = -1
        self._moved_at = clock.wall()

    def expired(self) -> WaitResult | None:
        now_ns, wall = self.clock.now_ns(), self.clock.wall()
        if now_ns != self._seen_ns:
            self._seen_ns, self._moved_at = now_ns, wall
        if now_ns > 0 and self._end_ns is None:
            self._end_ns = now_ns + self.timeout_s * 1e9
        if self._end_ns is not None and now_ns >= self._end_ns:
            return WaitResult(Waited.TIMED_OUT, f'timed out after {self.timeout_s:g} s of {self.clock.name}')
        still = wall - self._moved_at
        if still >= self.clock.stall_timeout_s:
            detail = '' if now_ns > 0 else ' (no clock message yet)'
            return WaitResult(Waited.STALLED, f'cell clock stalled for {still:.0f} s{detail}')
        return None

    def remaining_s(self) -> float:
        """Cell seconds left (the whole timeout before the clock started)."""
        if self._end_ns is None:
            return self.timeout_s
        return max(0.0, (self._end_ns - self.clock.now_ns()) * 1e-9)


class CellClock:
    """A cell's clock read through `now_ns` (0: not started), with the wall-clock stall backstop; `name`
    says in a timeout's reason which time it counted."""

    def __init__(self, now_ns: Callable[[], int], *, stall_timeout_s: float = DEFAULT_CLOCK_STALL_TIMEOUT_S,
                 wall: Callable[[], float] = time.monotonic, sleep: Callable[[float], object] = time.sleep,
                 name: str = 'cell time'):
        if not stall_timeout_s > 0:
            raise ValueError(f'clock_stall_timeout_s must be > 0, got {stall_timeout_s!r}')
        self.now_ns, self.stall_timeout_s = now_ns, float(stall_timeout_s)
        self.wall, self._sleep, self.name = wall, sleep, name

    @classmethod
    def of_node(cls, node, **kwargs) -> CellClock:
        """The clock of an rclpy node (sim time under use_sim_time)."""
        return cls(lambda: node.get_clock().now().nanoseconds, **kwargs)

    def now_s(self) -> float:
        return self.now_ns() * 1e-9

    @property
    def started(self) -> bool:
        return self.now_ns() > 0

    def deadline(self, timeout_s: float) -> CellDeadline:
        return CellDeadline(self, timeout_s)

    def wait_until(self, predicate: Callable[[], object], timeout_s: float, *, poll_s: float = 0.002,
                   sleep: Callable[[float], object] | None = None) -> WaitResult:
        """Until `predicate()` is true (MET), `timeout_s` of cell time passed, or the clock stalled.
        `sleep(s)` waits between polls (a Condition's `wait`, held by the caller, wakes early)."""
        deadline, sleep = self.deadline(timeout_s), sleep or self._sleep
        while True:
            if predicate():
                return MET
            ended = deadline.expired()
            if ended is not None:
                return ended
            sleep(poll_s)

    def wait_started(self) -> WaitResult:
        """Until the clock reads more than 0 (only the stall backstop bounds it); MET at once when it does."""
        return self.wait_until(lambda: self.started, math.inf, poll_s=0.01)

    def sleep(self, duration_s: float, poll_s: float = 0.01) -> WaitResult:
        """`duration_s` of cell time (TIMED_OUT is the wanted end; STALLED when the clock stood still)."""
        if duration_s <= 0:
            return WaitResult(Waited.TIMED_OUT)
        return self.wait_until(lambda: False, duration_s, poll_s=poll_s)


def sim_time_ros_args(namespace: str) -> list[str]:
    """`--ros-args` items that put a node of the simulated cell `namespace` on its clock (as the bringup
    file's sim_cells does with parameters and remaps): for nodes started by hand."""
    return ['-p', 'use_sim_time:=true', '-r', f'/clock:={names.cell_name(namespace, names.CLOCK)}']


__all__ = ['CellClock', 'CellDeadline', 'DEFAULT_CLOCK_STALL_TIMEOUT_S', 'MET', 'WaitResult', 'Waited',
           'sim_time_ros_args']
