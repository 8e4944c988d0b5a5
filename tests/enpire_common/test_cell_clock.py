"""Waits on a cell's clock, with a fake clock source and a fake wall clock (no ROS, no real waiting)."""
import math

import pytest
from enpire_common.cell_clock import CellClock, Waited, sim_time_ros_args

SECOND = 1_000_000_000


class FakeTime:
    """A cell clock and a wall clock that move only when the test moves them; `sleep` advances the wall
    clock and lets `on_sleep` move the cell clock (a cell stepping while the wait polls)."""

    def __init__(self, cell_ns: int = 0, on_sleep=None):
        self.cell_ns, self.wall_s, self.on_sleep, self.sleeps = cell_ns, 100.0, on_sleep, 0

    def sleep(self, seconds: float) -> None:
        self.wall_s += seconds
        self.sleeps += 1
        if self.on_sleep is not None:
            self.on_sleep(self)

    def clock(self, stall_timeout_s: float = 30.0) -> CellClock:
        return CellClock(lambda: self.cell_ns, stall_timeout_s=stall_timeout_s, wall=lambda: self.wall_s,
                         sleep=self.sleep)


def test_a_met_predicate_ends_the_wait_at_once():
    t = FakeTime(5 * SECOND)
    result = t.clock().wait_until(lambda: True, 1.0)
    assert result and result.outcome is Waited.MET and result.reason == '' and t.sleeps == 0


def test_the_timeout_counts_cell_time_not_wall_time():
    # The cell runs at a tenth of real time: 1 s of cell time takes 10 s of wall time, and no less.
    def step(t):
        t.cell_ns += SECOND // 1000         # 1 ms of cell time per 10 ms of wall time
    t = FakeTime(5 * SECOND, on_sleep=step)
    result = t.clock().wait_until(lambda: False, 1.0, poll_s=0.01)
    assert result.outcome is Waited.TIMED_OUT
    assert 'of cell time' in result.reason and not result.stalled
    assert t.cell_ns == 6 * SECOND
    assert t.wall_s == pytest.approx(110.0, abs=0.02)


def test_a_cell_faster_than_real_time_times_out_sooner_in_wall_time():
    def step(t):
        t.cell_ns += SECOND // 10           # 100 ms of cell time per 10 ms of wall time
    t = FakeTime(5 * SECOND, on_sleep=step)
    assert t.clock().wait_until(lambda: False, 2.0, poll_s=0.01).outcome is Waited.TIMED_OUT
    assert t.wall_s == pytest.approx(100.2, abs=0.001)


def test_a_clock_that_stands_still_ends_the_wait_by_the_stall_backstop_with_its_own_reason():
    t = FakeTime(5 * SECOND)               # a lockstep cell nobody commands: its time never moves
    result = t.clock(stall_timeout_s=30.0).wait_until(lambda: False, 1.0, poll_s=0.5)
    assert result.outcome is Waited.STALLED and result.stalled and not result
    assert result.reason == 'cell clock stalled for 30 s'
    assert t.wall_s == pytest.approx(130.0)


def test_a_clock_that_moves_now_and_then_is_not_stalled():
    # Moves every 20 s of wall time (a lockstep cell stepped slowly): below the 30 s backstop, so the
    # wait ends on its predicate, after much more wall time than the backstop.
    def step(t):
        if t.sleeps % 40 == 0:
            t.cell_ns += SECOND // 10
    t = FakeTime(5 * SECOND, on_sleep=step)
    result = t.clock(stall_timeout_s=30.0).wait_until(lambda: t.wall_s >= 200.0, 60.0, poll_s=0.5)
    assert result.outcome is Waited.MET
    assert t.wall_s >= 200.0


def test_the_clock_reads_0_before_its_first_message_and_the_wait_waits_for_it():
    # Sim time before the first /clock message is 0: the timeout starts at the first reading, so a
    # 1 s wait neither ends at once nor counts the 1.7e9 s jump to the first message.
    def start(t):
        if t.sleeps == 50:
            t.cell_ns = 1_700_000_000 * SECOND
        elif t.sleeps > 50:
            t.cell_ns += SECOND // 100
    t = FakeTime(0, on_sleep=start)
    clock = t.clock()
    assert not clock.started and clock.now_s() == 0.0
    result = clock.wait_until(lambda: False, 1.0, poll_s=0.01)
    assert result.outcome is Waited.TIMED_OUT
    assert t.cell_ns == 1_700_000_000 * SECOND + SECOND
    assert t.sleeps == 150


def test_a_clock_that_never_starts_is_reported_as_such():
    t = FakeTime(0)
    result = t.clock(stall_timeout_s=10.0).wait_until(lambda: False, 1.0, poll_s=1.0)
    assert result.stalled and result.reason == 'cell clock stalled for 10 s (no clock message yet)'


def test_wait_started_returns_once_the_clock_reads_more_than_0():
    def start(t):
        if t.sleeps == 3:
            t.cell_ns = 42 * SECOND
    t = FakeTime(0, on_sleep=start)
    clock = t.clock()
    assert clock.wait_started()
    assert clock.started and clock.now_s() == 42.0 and t.sleeps == 3


def test_sleep_lasts_cell_time_and_reports_a_stall():
    def step(t):
        t.cell_ns += SECOND // 10
    t = FakeTime(SECOND, on_sleep=step)
    assert t.clock().sleep(0.5).outcome is Waited.TIMED_OUT
    assert t.cell_ns == SECOND + SECOND // 2
    assert t.clock().sleep(0).outcome is Waited.TIMED_OUT
    frozen = FakeTime(SECOND)
    assert frozen.clock(stall_timeout_s=5.0).sleep(0.5).stalled


def test_remaining_time_of_a_deadline_is_in_cell_seconds():
    t = FakeTime(0)
    deadline = t.clock().deadline(2.0)
    assert deadline.expired() is None and deadline.remaining_s() == 2.0
    t.cell_ns = 10 * SECOND
    assert deadline.expired() is None
    t.cell_ns += SECOND // 2
    assert deadline.remaining_s() == pytest.approx(1.5)
    t.cell_ns += 2 * SECOND
    assert deadline.expired().outcome is Waited.TIMED_OUT and deadline.remaining_s() == 0.0


def test_an_unbounded_wait_ends_only_on_its_predicate_or_a_stall():
    t = FakeTime(SECOND, on_sleep=lambda t: setattr(t, 'cell_ns', t.cell_ns + 1000 * SECOND))
    result = t.clock().wait_until(lambda: t.sleeps >= 100, math.inf)
    assert result and t.sleeps == 100


def test_a_wall_clock_deadline_says_so_and_never_stalls():
    t = FakeTime()
    wall = CellClock(lambda: int(t.wall_s * 1e9), stall_timeout_s=math.inf, wall=lambda: t.wall_s,
                     sleep=t.sleep, name='wall time')
    result = wall.wait_until(lambda: False, 2.0, poll_s=0.5)
    assert result.outcome is Waited.TIMED_OUT and result.reason == 'timed out after 2 s of wall time'


def test_a_stall_timeout_must_be_positive():
    with pytest.raises(ValueError, match='clock_stall_timeout_s'):
        CellClock(lambda: 0, stall_timeout_s=0.0)


def test_sim_time_args_put_a_node_on_its_cells_clock():
    assert sim_time_ros_args('cell_3') == ['-p', 'use_sim_time:=true', '-r', '/clock:=/cell_3/clock']
    assert sim_time_ros_args('/cell_3/') == sim_time_ros_args('cell_3')
