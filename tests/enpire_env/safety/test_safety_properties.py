"""Property-based: for arbitrary command streams nothing outside the limits reaches the cell, and while
the e-stop is latched only stops do (from the latch on, so within one control period)."""
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enpire_env.safety import Kind, SafetyFilter, SafetyLimits

LIMITS = SafetyLimits(low=(20.0, 20.0), high=(492.0, 492.0), max_step=40.0, max_speed=300.0,
                      max_command_rate_hz=40.0,
                      min_command_rate_hz=3.0, watchdog_action='stop', control_period=0.1)
REJECTIONS = {Kind.REJECTED_NONFINITE, Kind.REJECTED_RATE, Kind.REJECTED_FRAME, Kind.REJECTED_ESTOP,
              Kind.REJECTED_SIZE}
TOL = 1e-6

coord = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-100.0, max_value=612.0),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 0.0, 512.0, 5e-324]))
gap = st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=0.05),
                st.floats(min_value=0.0, max_value=2.0))
event = st.one_of(
    st.tuples(st.just('cmd'), coord, coord, st.sampled_from(['table'] * 6 + ['world', '', 'TABLE']), gap),
    st.tuples(st.just('agent'), coord, coord),
    st.tuples(st.just('tick'), gap),
    st.tuples(st.just('estop'), gap),
    st.tuples(st.just('release'), gap),
    st.tuples(st.just('burst'), coord, coord, st.integers(1, 20)),
    st.tuples(st.just('odd'), st.lists(coord, max_size=5).filter(lambda v: len(v) != 2), gap))


def clamp(p):
    return tuple(min(max(v, lo), hi) for v, lo, hi in zip(p, LIMITS.low, LIMITS.high, strict=True))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event, max_size=60), st.sampled_from(['hold', 'stop']))
def test_nothing_outside_the_limits_ever_comes_out(events, action):
    limits = LIMITS.model_copy(update={'watchdog_action': action})
    f = SafetyFilter(limits)
    now = 0.0
    agent = None
    prev = None          # (point, time) of the last command that came out
    last_pass = None
    estopped = False

    def check(result, t, estop_active, quiet_ok=False):
        nonlocal prev
        cmd = result.command
        if cmd is None:
            assert quiet_ok or (agent is None and prev is None), 'nothing came out though a stop was possible'
            return
        assert all(math.isfinite(v) for v in cmd)
        assert limits.in_box(cmd, tol=TOL), cmd
        stop = clamp(agent) if agent is not None else (prev[0] if prev else None)
        if estop_active:
            assert result.is_stop and cmd == stop
        if result.is_stop:
            assert cmd == stop
        else:
            reference = clamp(agent) if agent is not None else (prev[0] if prev else None)
            if reference is not None:
                assert math.dist(cmd, reference) <= limits.max_step + TOL
            if prev is not None:
                assert math.dist(cmd, prev[0]) <= limits.max_speed * max(t - prev[1], 0.0) + TOL
        prev = (cmd, max(t, prev[1]) if prev else t)

    def command(values, frame):
        nonlocal last_pass
        result = f.filter(values, frame, now)
        kinds = {r.kind for r in result.records}
        if not kinds & REJECTIONS:
            assert not estopped
            if last_pass is not None:
                assert now - last_pass >= limits.min_interval - 1e-9
            last_pass = now
        check(result, now, estopped)

    for ev in events:
        match ev:
            case ('cmd', x, y, frame, dt):
                now += dt
                command((x, y), frame)
            case ('odd', values, dt):
                now += dt
                command(values, 'table')
            case ('burst', x, y, n):
                for i in range(n):
                    command((x + i, y - i), 'table')
            case ('agent', x, y):
                if f.update_agent((x, y)):
                    agent = (x, y)
            case ('tick', dt):
                now += dt
                check(f.tick(now), now, estopped, quiet_ok=not estopped)
            case ('estop', dt):
                now += dt
                estopped = True
                result = f.latch_estop('test', now)
                check(result, now, True)
                if result.command is not None:
                    assert result.is_stop  # the stop goes out at the latch itself: no control period lost
            case ('release', dt):
                now += dt
                assert f.release_estop(now).command is None
                estopped = False
        assert f.estopped == estopped


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(coord, coord, gap), min_size=1, max_size=40))
def test_estop_only_stops_come_out_until_release(commands):
    f = SafetyFilter(LIMITS)
    f.update_agent((200.0, 200.0))
    f.filter((210.0, 200.0), 'table', 0.0)
    now = 0.0
    assert f.latch_estop('property', now).command == (200.0, 200.0)
    for x, y, dt in commands:
        now += dt
        for result in (f.filter((x, y), 'table', now), f.tick(now)):
            assert result.is_stop and result.command == (200.0, 200.0)
    assert f.estopped


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.lists(st.lists(coord, min_size=0, max_size=8), min_size=1, max_size=30))
def test_any_action_size_only_in_box_vectors_of_that_size_come_out(size, commands):
    """The filter is not 2-D: for an n-entry action only n-vectors inside the per-entry box come out, and a
    vector of another length is rejected with a reason that names both lengths."""
    limits = SafetyLimits(low=tuple(-1.0 - i for i in range(size)), high=tuple(2.0 + i for i in range(size)),
                          max_step=3.0, max_speed=1e6, max_command_rate_hz=1e4, min_command_rate_hz=1.0)
    f = SafetyFilter(limits)
    f.update_agent(tuple(0.5 for _ in range(size)))
    for i, values in enumerate(commands):
        result = f.filter(values, 'table', 0.01 * i)
        assert result.command is not None and len(result.command) == size and limits.in_box(result.command)
        assert all(math.isfinite(v) for v in result.command)
        if len(values) != size:
            [record] = result.records
            assert record.kind == Kind.REJECTED_SIZE
            assert f'{len(values)} values' in record.reason and f'has {size}' in record.reason
