"""Property-based: for arbitrary command streams nothing outside the limits reaches the cell, and while
the e-stop is latched only stops do (from the latch on, so within one control period)."""
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enpire_env.safety import Kind, SafetyFilter, SafetyLimits

LIMITS = SafetyLimits(workspace_margin=20.0, max_step=40.0, max_speed=300.0, max_command_rate_hz=40.0,
                      min_command_rate_hz=3.0, watchdog_action='stop', control_period=0.1)
REJECTIONS = {Kind.REJECTED_NONFINITE, Kind.REJECTED_RATE, Kind.REJECTED_FRAME, Kind.REJECTED_ESTOP}
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
    st.tuples(st.just('burst'), coord, coord, st.integers(1, 20)))


def clamp(p):
    return tuple(min(max(v, LIMITS.lower), LIMITS.upper) for v in p)


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
        assert limits.in_workspace(*cmd, tol=TOL), cmd
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

    def command(x, y, frame):
        nonlocal last_pass
        result = f.filter(x, y, frame, now)
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
                command(x, y, frame)
            case ('burst', x, y, n):
                for i in range(n):
                    command(x + i, y - i, 'table')
            case ('agent', x, y):
                if f.update_agent(x, y):
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
    f.update_agent(200.0, 200.0)
    f.filter(210.0, 200.0, 'table', 0.0)
    now = 0.0
    assert f.latch_estop('property', now).command == (200.0, 200.0)
    for x, y, dt in commands:
        now += dt
        for result in (f.filter(x, y, 'table', now), f.tick(now)):
            assert result.is_stop and result.command == (200.0, 200.0)
    assert f.estopped
