"""The simulated cell's clock on a real graph: rosgraph_msgs/Clock on /<cell>/clock, one control period
per command in lockstep, one per tick at control rate x real_time_factor in real time, one clock per cell.

Assertions are on sim time against steps, never on how fast the wall clock went."""
import threading
import time

import pytest
from enpire_common import names
from rosgraph_msgs.msg import Clock

from tests.sim.test_sim_cell_node import CellProbe, _start

pytestmark = pytest.mark.graph
PERIOD_NS = 100_000_000          # Push-T's control period: 10 Hz


def _ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


class ClockProbe:
    """Every Clock message of one cell's clock topic, in arrival order."""

    def __init__(self, ros_node, cell: str):
        self.ros, self.lock, self.times = ros_node, threading.Lock(), []
        self.sub = ros_node.node.create_subscription(Clock, names.cell_name(cell, names.CLOCK), self._keep,
                                                     100)

    def _keep(self, msg: Clock) -> None:
        with self.lock:
            self.times.append(_ns(msg.clock))

    def latest(self) -> int | None:
        with self.lock:
            return self.times[-1] if self.times else None

    def wait_at(self, ns: int, what: str) -> int:
        return self.ros.wait_for(lambda: (self.latest() or 0) >= ns and self.latest(), 20, what)


def test_lockstep_clock_advances_one_period_per_command_and_matches_the_state_stamps(node_processes,
                                                                                      ros_node):
    _start(node_processes, 'clock_a', 'idle_publish_hz:=5.0')
    _start(node_processes, 'clock_b', 'idle_publish_hz:=5.0')
    probe, clock = CellProbe(ros_node, 'clock_a'), ClockProbe(ros_node, 'clock_a')
    other = ClockProbe(ros_node, 'clock_b')
    probe.wait_connected()
    start = clock.wait_at(1, 'the first clock message of clock_a')
    other_start = other.wait_at(1, 'the first clock message of clock_b')
    # Sim time starts at the wall time of the node's start-up (not 0: 0 means "no clock yet").
    assert abs(start * 1e-9 - time.time()) < 600
    state0 = probe.latest(names.CELL_STATE)
    assert _ns(state0.header.stamp) == start

    for i in range(1, 6):
        probe.send(200.0 + 5 * i, 200.0)
        state = probe.wait_state(lambda m, i=i: m.step == i, f'step {i}')
        assert _ns(state.header.stamp) == start + i * PERIOD_NS
        assert clock.wait_at(start + i * PERIOD_NS, f'the clock of step {i}') == start + i * PERIOD_NS
    # Idle: the clock is re-published (late subscribers get it) but does not move without commands.
    with clock.lock:
        seen = len(clock.times)
    ros_node.wait_for(lambda: len(clock.times) >= seen + 3, 20, 'idle clock re-publications')
    with clock.lock:
        assert clock.times[seen:] == [start + 5 * PERIOD_NS] * (len(clock.times) - seen)
        assert clock.times == sorted(clock.times)
    # The other cell's clock is its own: five commands to clock_a did not move it.
    assert other.latest() == other_start


def test_real_time_clock_ticks_one_period_per_tick_at_the_real_time_factor(node_processes, ros_node):
    _start(node_processes, 'clock_rt', 'pacing:=real_time', 'real_time_factor:=2.0')
    _start(node_processes, 'clock_lock')      # lockstep, nobody commands it
    clock, idle = ClockProbe(ros_node, 'clock_rt'), ClockProbe(ros_node, 'clock_lock')
    clock.wait_at(1, 'the first clock message')
    idle_first = idle.wait_at(1, 'the lockstep cell\'s first clock message')
    first, wall0 = clock.latest(), time.monotonic()
    clock.wait_at(first + 20 * PERIOD_NS, '20 ticks of sim time')
    wall = time.monotonic() - wall0
    with clock.lock:
        times = list(clock.times)
        last = times[-1]
    # Each tick is one control period of sim time, whatever the wall clock did.
    steps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert steps and all(s == PERIOD_NS for s in steps), set(steps)
    sim = (last - first) * 1e-9
    # The factor bounds sim time from above (the timer never runs early); a loaded machine may only slow it.
    assert sim <= 2.0 * wall * 1.25 + 2 * PERIOD_NS * 1e-9, (sim, wall)
    # Two cells, two clocks: the real-time cell's 2 s of sim time did not move the lockstep cell's.
    assert idle.latest() == idle_first
