"""Safety core: limits from YAML, clamping, rejections, watchdog, latched e-stop (no ROS)."""
import math

import pytest
from pydantic import ValidationError

from enpire_env.safety import Kind, SafetyFilter, SafetyLimits


def make(**overrides):
    base = dict(low=(20.0, 20.0), high=(492.0, 492.0), max_step=50.0, max_speed=1000.0,
                max_command_rate_hz=50.0,
                min_command_rate_hz=2.0, watchdog_action='stop', control_period=0.1)
    return SafetyFilter(SafetyLimits(**{**base, **overrides}))


@pytest.mark.parametrize('bad', [
    {'max_step': -1.0}, {'max_step': math.nan}, {'low': (500.0, 0.0)}, {'high': (492.0,)}, {'low': ()},
    {'low': (math.nan, 0.0)}, {'unknown_key': 1},
    {'watchdog_action': 'explode'}, {'min_command_rate_hz': 100.0, 'max_command_rate_hz': 50.0},
    {'max_speed': math.inf}])
def test_invalid_limits_are_refused(bad):
    with pytest.raises(ValidationError):
        SafetyLimits(**{'low': (20.0, 20.0), 'high': (492.0, 492.0), 'max_step': 50.0, **bad})


def test_yaml_with_unknown_key_is_refused(tmp_path):
    path = tmp_path / 'l.yaml'
    path.write_text('safety_limits:\n  max_stepp: 3\n')
    with pytest.raises(ValidationError):
        SafetyLimits.from_yaml(path)


def test_clamps_workspace_and_step():
    f = make()
    f.update_agent((100.0, 100.0))
    out = f.filter((1e9, -5.0), 'table', now=0.0)
    assert out.command is not None and f.limits.in_box(out.command)
    assert math.dist(out.command, (100.0, 100.0)) <= 50.0 + 1e-9
    assert {r.kind for r in out.records} == {Kind.CLAMPED_WORKSPACE, Kind.CLAMPED_STEP}
    assert f.counters.modified == 1


def test_in_limits_command_passes_unchanged():
    f = make()
    f.update_agent((100.0, 100.0))
    out = f.filter((120.0, 110.0), 'table', now=0.0)
    assert out.command == (120.0, 110.0) and not out.records and f.counters.passed == 1


@pytest.mark.parametrize('x,y,frame,kind', [
    (math.nan, 1.0, 'table', Kind.REJECTED_NONFINITE), (1.0, math.inf, 'table', Kind.REJECTED_NONFINITE),
    (100.0, 100.0, 'world', Kind.REJECTED_FRAME), (100.0, 100.0, '', Kind.REJECTED_FRAME)])
def test_rejections_hold_last_safe_command(x, y, frame, kind):
    f = make()
    f.update_agent((100.0, 100.0))
    first = f.filter((110.0, 100.0), 'table', now=0.0).command
    out = f.filter((x, y), frame, now=0.1)
    assert out.command == first and [r.kind for r in out.records] == [kind]
    assert f.counters.rejected == 1


def test_rejection_before_any_safe_command_is_a_stop():
    f = make()
    f.update_agent((100.0, 100.0))
    out = f.filter((math.nan, 0.0), 'table', now=0.0)
    assert out.command == (100.0, 100.0) and out.is_stop


def test_rate_limit():
    f = make()
    f.update_agent((100.0, 100.0))
    f.filter((110.0, 100.0), 'table', now=0.0)
    burst = f.filter((120.0, 100.0), 'table', now=0.005)
    assert burst.records[0].kind == Kind.REJECTED_RATE and burst.command == (110.0, 100.0)
    later = f.filter((120.0, 100.0), 'table', now=0.05)
    assert later.command == (120.0, 100.0)


def test_speed_limit_uses_time_since_last_command():
    f = make(max_step=200.0, max_speed=100.0)
    f.update_agent((100.0, 100.0))
    f.filter((100.0, 100.0), 'table', now=0.0)
    out = f.filter((200.0, 100.0), 'table', now=0.1)   # 100 px in 0.1 s = 1000 px/s > 100 px/s
    assert out.command == pytest.approx((110.0, 100.0))
    assert out.records[0].kind == Kind.CLAMPED_STEP and 'speed' in out.records[0].reason


@pytest.mark.parametrize('action,kind', [('stop', Kind.WATCHDOG_STOP), ('hold', Kind.WATCHDOG_HOLD)])
def test_watchdog(action, kind):
    f = make(watchdog_action=action)
    f.update_agent((100.0, 100.0))
    assert f.tick(5.0).command is None  # not armed before the first command
    f.filter((130.0, 100.0), 'table', now=0.0)
    assert f.tick(0.4).command is None
    f.update_agent((115.0, 100.0))
    out = f.tick(0.6)
    assert [r.kind for r in out.records] == [kind] and f.watchdog_tripped
    assert out.command == ((115.0, 100.0) if action == 'stop' else (130.0, 100.0))
    again = f.tick(0.7)
    assert not again.records and f.counters.watchdog_trips == 1
    f.filter((120.0, 100.0), 'table', now=0.8)
    assert not f.watchdog_tripped


def test_estop_latches_until_explicit_release():
    f = make()
    f.update_agent((100.0, 100.0))
    f.filter((120.0, 100.0), 'table', now=0.0)
    latched = f.latch_estop('operator', now=0.05)
    assert latched.is_stop and latched.command == (100.0, 100.0)
    assert [r.kind for r in latched.records] == [Kind.ESTOP_LATCHED]
    for i in range(5):
        out = f.filter((130.0, 100.0), 'table', now=0.1 + i)
        assert out.is_stop and out.command == (100.0, 100.0) and out.records[0].kind == Kind.REJECTED_ESTOP
        assert f.tick(0.15 + i).command == (100.0, 100.0)
    assert f.latch_estop('again', now=6.0).records == []   # already latched: no second event
    assert f.estop_reason == 'operator'
    released = f.release_estop(now=7.0)
    assert [r.kind for r in released.records] == [Kind.ESTOP_RELEASED] and not f.estopped
    assert f.filter((120.0, 100.0), 'table', now=7.1).command == (120.0, 100.0)


def test_nonfinite_agent_measurement_ignored():
    f = make()
    assert f.update_agent((100.0, 100.0))
    assert not f.update_agent((math.nan, 3.0))
    assert f.agent == (100.0, 100.0)


def test_lagging_agent_gets_a_stop():
    f = make(max_step=50.0, max_speed=100.0)
    f.update_agent((100.0, 100.0))
    f.filter((140.0, 100.0), 'table', now=0.0)
    f.update_agent((300.0, 300.0))   # the agent was pushed far away
    out = f.filter((310.0, 300.0), 'table', now=0.1)
    assert out.is_stop and out.command == (300.0, 300.0)


@pytest.mark.parametrize('values', [(), (100.0,), (100.0, 100.0, 0.0), 'ab', '12', None, (100.0, 'x')])
def test_wrong_length_or_not_a_vector_is_rejected_with_the_reason(values):
    f = make()
    f.update_agent((100.0, 100.0))
    first = f.filter((110.0, 100.0), 'table', now=0.0).command
    out = f.filter(values, 'table', now=0.1)
    assert out.command == first and [r.kind for r in out.records] == [Kind.REJECTED_SIZE]
    assert 'the action has 2' in out.records[0].reason and f.counters.rejected == 1


def test_wrong_length_measurement_is_ignored():
    f = make()
    assert not f.update_agent((1.0, 2.0, 3.0)) and f.agent is None


def test_watching_only_while_a_stream_is_live_or_the_estop_latched():
    """What the node's watchdog timer runs on: a live stream and a latched e-stop need ticks; before the
    first command and after a trip nothing new comes of them."""
    f = make()
    f.update_agent((100.0, 100.0))
    assert not f.watching                                   # no command yet
    f.filter((110.0, 100.0), 'table', now=0.0)
    assert f.watching                                       # a live stream
    tripped = f.tick(0.6)
    assert tripped.command == (100.0, 100.0) and not f.watching   # stopped: the stream is over
    f.filter((105.0, 100.0), 'table', now=1.0)
    assert f.watching                                       # a new stream
    f.latch_estop('operator', now=1.05)
    f.tick(2.0)
    assert f.watching                                       # the e-stop's heartbeat of stops
    f.release_estop(now=3.0)
    assert f.watching                                       # a release re-arms the watchdog
    assert f.tick(3.6).command is not None and not f.watching
