"""The safety filter between a policy and the cell: limits, watchdog and a latched e-stop. Pure: no rclpy.

Every call returns a `FilterResult`: the command that may reach the cell (or None: nothing may be sent)
and the interventions made, as `SafetyRecord`s whose kinds mirror `enpire_interfaces/SafetyEvent`.

Commands are the task's action vectors (`enpire_interfaces/Command.values`, n entries); the cell's measured
position is given in the same coordinates (`enpire_common.messages.measured_action`); distances are
Euclidean norms over all entries.

Guarantees (checked by the property tests in tests/enpire_env/safety):
- every command that comes out has the action's length and lies inside the per-entry box [low, high];
- a command that comes out is either a *stop* (the measured position, clamped into the box) or is
  within `max_step` of the measured position (of the last safe command while it is unknown) and
  moved at most `max_speed * dt` from the previous command that came out;
- while the e-stop is latched only stops come out; `latch_estop` itself returns the stop to send, so it
  takes effect at once (well within one control period); only `release_estop` clears the latch;
- NaN, inf, vectors of the wrong length and commands in another frame never come out; commands faster
  than `max_command_rate_hz` are not passed; when accepted commands stop for longer than
  1/`min_command_rate_hz`, `tick` holds the last safe command or stops (`watchdog_action`).
When a command is rejected the filter offers the held command (the last safe one, or a stop) so a
lock-stepped cell still gets exactly one command per policy command.

A task whose action is not an absolute target (a displacement: metaworld's hand moves by the command) brings
its own `CommandRule` (`Task.command_filter`): it then replaces the step and speed limits, which bound
absolute commands. Given the tool's measured position (`update_tool`), every command that comes out is the
rule's `limit` of the boxed command (e.g. where the displacement takes the hand stays in a workspace box);
while the tool's position is unknown, and for every stop, hold, e-stop and watchdog action, the rule's
`stop` comes out (a displacement is never repeated: holding means not moving).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

from enpire_env.request_checks import shown
from enpire_env.safety.limits import SafetyLimits

Vector = tuple[float, ...]
_EPS = 1e-9


class Kind(IntEnum):
    """Mirrors the constants of enpire_interfaces/msg/SafetyEvent."""

    CLAMPED_WORKSPACE = 0
    CLAMPED_STEP = 1
    REJECTED_NONFINITE = 2
    REJECTED_RATE = 3
    REJECTED_FRAME = 4
    REJECTED_ESTOP = 5
    WATCHDOG_HOLD = 6
    WATCHDOG_STOP = 7
    ESTOP_LATCHED = 8
    ESTOP_RELEASED = 9
    REJECTED_SIZE = 10


@dataclass(frozen=True)
class SafetyRecord:
    kind: Kind
    reason: str
    requested: Vector | None
    applied: Vector | None
    stamp: float


@dataclass
class FilterResult:
    command: Vector | None
    records: list[SafetyRecord] = field(default_factory=list)
    is_stop: bool = False


@dataclass
class Counters:
    passed: int = 0
    modified: int = 0
    rejected: int = 0
    watchdog_trips: int = 0


class CommandRule(Protocol):
    """A task's own bound on its commands beyond the per-entry box (see the module's docstring)."""

    def limit(self, command: Vector, tool: Vector) -> tuple[Vector, str]:
        """The command that may reach the cell with the tool at `tool`, and '' or why it was changed."""
        ...

    def stop(self, last: Vector | None) -> Vector:
        """The command that holds the cell where it is, after `last` (the last command sent, if any)."""
        ...

    # A rule may also define `placed(tool)`: the cell reports a fresh placement (step 0, nothing commanded
    # since) with the tool at `tool`; a rule that tracks what the cell was commanded re-anchors there.


def _finite(*values: float) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError, OverflowError):
        return False


def _as_vector(values) -> Vector | None:
    """The floats of a command (None when it is not a flat sequence of numbers)."""
    if isinstance(values, (str, bytes)):
        return None
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError, OverflowError):
        return None


class SafetyFilter:
    """Stateful filter: feed it the measured position (`update_agent`), commands (`filter`), time (`tick`)."""

    def __init__(self, limits: SafetyLimits, rule: CommandRule | None = None):
        self.limits = limits
        self.rule = rule
        self.counters = Counters()
        self.agent: Vector | None = None
        self.tool: Vector | None = None          # with a rule: the tool's measured position
        self.last_output: Vector | None = None
        self.last_output_time: float | None = None
        self.last_pass_time: float | None = None
        self.last_feed_time: float | None = None   # last accepted command: what the watchdog watches
        self.estopped = False
        self.estop_reason = ''
        self.watchdog_tripped = False

    # ----------------------------------------------------------------- inputs
    def update_agent(self, position) -> bool:
        """The measured position in the action's coordinates; non-finite or wrong-length ones are ignored."""
        values = _as_vector(position)
        if values is None or len(values) != self.limits.size or not _finite(*values):
            return False
        self.agent = values
        return True

    @property
    def watching(self) -> bool:
        """Whether `tick` has work: the e-stop is latched (its heartbeat of stops) or a command stream is
        live (a command accepted and the watchdog not tripped since). Otherwise `tick` returns nothing new
        until the next accepted command or latch: before the first command, and once the watchdog has
        stopped (or held) a stalled stream, after which it only repeats that hold or stop."""
        return self.estopped or (self.last_feed_time is not None and not self.watchdog_tripped)

    def update_tool(self, position, step: int | None = None) -> bool:
        """The tool's measured position (for a task's rule); non-finite ones are ignored. `step`: the cell's
        control steps since its last placement (0: just placed, the rule's `placed` hears of it)."""
        values = _as_vector(position)
        if values is None or not values or not _finite(*values):
            return False
        self.tool = values
        placed = getattr(self.rule, 'placed', None)
        if step == 0 and placed is not None:
            placed(values)
        return True

    def stop_point(self) -> Vector | None:
        """Where a stop commands the cell to: where it is (clamped into the box), else the last command; with
        a task's rule, its stop."""
        if self.rule is not None:
            return self._clamp_box(tuple(float(v) for v in self.rule.stop(self.last_output)))
        if self.agent is not None:
            return self._clamp_box(self.agent)
        return self.last_output

    def filter(self, values, frame_id: str, now: float) -> FilterResult:
        """One policy command (a vector) in; the command that may reach the cell (or the held one) out."""
        raw = _as_vector(values)
        size = self.limits.size
        requested = raw if raw is not None and len(raw) == size and _finite(*raw) else None
        if self.estopped:
            return self._reject(Kind.REJECTED_ESTOP, f'e-stop latched: {self.estop_reason}', requested, now,
                                stop=True)
        if raw is None or len(raw) != size:
            got = 'not a vector of numbers' if raw is None else f'{len(raw)} values'
            return self._reject(Kind.REJECTED_SIZE, f'{got}: the action has {size}', None, now)
        if requested is None:
            shown_values = ', '.join(f'{v!r}' for v in raw[:4]) + (', ...' if len(raw) > 4 else '')
            return self._reject(Kind.REJECTED_NONFINITE, f'non-finite command ({shown_values})', None, now)
        if frame_id != self.limits.frame_id:
            return self._reject(Kind.REJECTED_FRAME,
                                f'frame {shown(frame_id)} is not {self.limits.frame_id!r}', requested, now)
        if not _finite(now):
            return self._reject(Kind.REJECTED_RATE, f'non-finite time {now!r}', requested, 0.0)
        if self.last_pass_time is not None and now - self.last_pass_time < self.limits.min_interval - _EPS:
            rate = 1.0 / max(now - self.last_pass_time, 1e-12)
            limit = self.limits.max_command_rate_hz
            return self._reject(Kind.REJECTED_RATE, f'{rate:.1f} Hz exceeds {limit:g} Hz', requested, now)
        return self._pass(requested, now)

    def tick(self, now: float) -> FilterResult:
        """Called every control period: the e-stop and watchdog heartbeat (None when all is well)."""
        if self.estopped:
            stop = self.stop_point()
            return self._emit(stop, now, [], is_stop=True)
        if self.last_feed_time is None or now - self.last_feed_time <= self.limits.watchdog_timeout:
            return FilterResult(None)
        action_stop = self.limits.watchdog_action == 'stop' or not self._hold_is_safe()
        command = self.stop_point() if action_stop else self.last_output
        records = []
        if not self.watchdog_tripped:
            self.watchdog_tripped = True
            self.counters.watchdog_trips += 1
            gap = now - self.last_feed_time
            kind = Kind.WATCHDOG_STOP if action_stop else Kind.WATCHDOG_HOLD
            what = 'stop' if action_stop else 'hold'
            reason = f'no command for {gap:.3f} s (timeout {self.limits.watchdog_timeout:.3f} s): {what}'
            records.append(SafetyRecord(kind, reason, None, command, now))
        return self._emit(command, now, records, is_stop=action_stop)

    def latch_estop(self, reason: str, now: float) -> FilterResult:
        """Latch the e-stop; the returned stop should be sent to the cell at once."""
        reason = reason or 'e-stop requested'
        records = []
        if not self.estopped:
            self.estopped = True
            self.estop_reason = reason
            records.append(SafetyRecord(Kind.ESTOP_LATCHED, reason, None, self.stop_point(), now))
        return self._emit(self.stop_point(), now, records, is_stop=True)

    def release_estop(self, now: float) -> FilterResult:
        """Explicit release: the only way to clear the latch. Commands pass again from the next one."""
        if not self.estopped:
            return FilterResult(None)
        record = SafetyRecord(Kind.ESTOP_RELEASED, f'released (was: {self.estop_reason})', None, None, now)
        self.estopped = False
        self.estop_reason = ''
        self.last_feed_time = now if _finite(now) else self.last_feed_time
        self.watchdog_tripped = False
        return FilterResult(None, [record])

    # ----------------------------------------------------------------- internals
    def _clamp_box(self, p: Vector) -> Vector:
        box = zip(p, self.limits.low, self.limits.high, strict=True)
        return tuple(min(max(v, lo), hi) for v, lo, hi in box)

    @staticmethod
    def _shrink(p: Vector, centre: Vector, radius: float) -> Vector:
        d = math.dist(p, centre)
        if d <= radius:
            return p
        s = radius / d
        return tuple(c + (v - c) * s for v, c in zip(p, centre, strict=True))

    def _hold_is_safe(self) -> bool:
        """Holding the last safe command is allowed while it is within a step of the measured position (never
        for a task's rule: a repeated displacement moves on)."""
        if self.last_output is None or self.rule is not None:
            return False
        if self.agent is None:
            return True
        return math.dist(self.last_output, self._clamp_box(self.agent)) <= self.limits.max_step + 1e-6

    def _pass(self, requested: Vector, now: float) -> FilterResult:
        lim = self.limits
        records: list[SafetyRecord] = []
        p = self._clamp_box(requested)
        if p != requested:
            outside = [i for i, (v, q) in enumerate(zip(requested, p, strict=True)) if v != q]
            reason = f'entries {outside} outside the box [low, high]'
            records.append(SafetyRecord(Kind.CLAMPED_WORKSPACE, reason, requested, p, now))
        if self.rule is not None:
            return self._pass_ruled(requested, p, records, now)
        reference = self._clamp_box(self.agent) if self.agent is not None else self.last_output
        is_stop = False
        if reference is not None:
            q = self._shrink(p, reference, lim.max_step)
            if q != p:
                what = 'measured position' if self.agent is not None else 'last safe command'
                reason = f'step {math.dist(p, reference):.1f} from the {what} exceeds {lim.max_step:g}'
                records.append(SafetyRecord(Kind.CLAMPED_STEP, reason, requested, q, now))
                p = q
        if self.last_output is not None and self.last_output_time is not None:
            dt = max(now - self.last_output_time, 0.0)
            q = self._shrink(p, self.last_output, lim.max_speed * dt)
            if q != p:
                speed = math.dist(p, self.last_output) / max(dt, 1e-12)
                reason = f'speed {speed:.0f}/s exceeds {lim.max_speed:g}/s'
                records.append(SafetyRecord(Kind.CLAMPED_STEP, reason, requested, q, now))
                p = q
        if reference is not None and math.dist(p, reference) > lim.max_step + 1e-6:
            # The agent lags too far behind the last target for both limits to hold: stop where it is.
            p = self.stop_point()
            is_stop = True
            reason = 'cell too far from the last command for the step and speed limits together: stop'
            records.append(SafetyRecord(Kind.CLAMPED_STEP, reason, requested, p, now))
        return self._accept(p, now, records, is_stop)

    def _pass_ruled(self, requested: Vector, p: Vector, records: list[SafetyRecord], now: float
                    ) -> FilterResult:
        """The task's rule on a boxed command, given the tool's measured position (a stop while unknown)."""
        is_stop = self.tool is None
        if is_stop:
            p = self.stop_point()
            records.append(SafetyRecord(Kind.CLAMPED_WORKSPACE, "the tool's position is not known yet: stop",
                                        requested, p, now))
        else:
            limited, why = self.rule.limit(p, self.tool)
            limited = _as_vector(limited)
            if limited is None or len(limited) != self.limits.size or not _finite(*limited):
                limited, is_stop = self.stop_point(), True
                why = "the task's rule gave no usable command: stop"
            limited = self._clamp_box(limited)
            if limited != p:
                records.append(SafetyRecord(Kind.CLAMPED_WORKSPACE, why or "limited by the task's rule",
                                            requested, limited, now))
                p = limited
        return self._accept(p, now, records, is_stop)

    def _accept(self, p: Vector, now: float, records: list[SafetyRecord], is_stop: bool) -> FilterResult:
        """A command let through (as asked, or limited when `records` say why): it feeds the watchdog."""
        self.last_pass_time = now
        self.last_feed_time = now
        self.watchdog_tripped = False
        if records:
            self.counters.modified += 1
        else:
            self.counters.passed += 1
        return self._emit(p, now, records, is_stop=is_stop)

    def _reject(self, kind: Kind, reason: str, requested: Vector | None, now: float, stop: bool = False
                ) -> FilterResult:
        self.counters.rejected += 1
        held_is_stop = stop or not self._hold_is_safe() or (
            self.watchdog_tripped and self.limits.watchdog_action == 'stop')
        command = self.stop_point() if held_is_stop else self.last_output
        record = SafetyRecord(kind, reason, requested, command, now)
        return self._emit(command, now, [record], is_stop=held_is_stop)

    def _emit(self, command: Vector | None, now: float, records: list[SafetyRecord], is_stop: bool
              ) -> FilterResult:
        if command is not None:
            self.last_output = command
            if _finite(now):
                previous = self.last_output_time
                self.last_output_time = now if previous is None else max(previous, now)
        return FilterResult(command, records, is_stop)
