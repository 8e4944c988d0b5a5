"""Safety for the peg's displacement action through the safety node's filtering code: the node's own loaders
(the task's limits file and command rule) and its SafetyFilter, fed arbitrary streams of commands, hand
positions, e-stops and watchdog ticks. Nothing outside the limits comes out: every command is in the action's
box, moves the hand at most one step per axis, keeps the commanded target inside the workspace and a hand
inside the box grown by the hand's margin inside that (one outside never goes further out), keeps the gripper
in range; stops (e-stop, watchdog, unknown hand) never move it."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from enpire_env.safety import Kind, SafetyFilter, SafetyLimits
from enpire_env.safety_node import task_command_rule, task_limits_file

LIMITS_FILE = task_limits_file('peg_insertion')
LIMITS = SafetyLimits.from_yaml(LIMITS_FILE)
TOOL = task_command_rule('peg_insertion', LIMITS_FILE).limits
LOW, HIGH = np.array(TOOL.workspace_low), np.array(TOOL.workspace_high)
MARGIN = TOOL.hand_margin
SCALE = 0.01                 # metres per action unit
TOL = 1e-9

value = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-3.0, 3.0),
                  st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1.0, 1.0, 0.0]))
position = st.tuples(*(st.one_of(st.floats(lo - 0.2, hi + 0.2), st.sampled_from([lo, hi]))
                       for lo, hi in zip(LOW, HIGH, strict=True)))
gap = st.one_of(st.just(0.0125), st.floats(0.0, 0.05), st.floats(0.0, 1.0))
event = st.one_of(
    st.tuples(st.just('cmd'), st.lists(value, min_size=4, max_size=4),
              st.sampled_from(['world'] * 6 + ['table', '']), gap),
    st.tuples(st.just('odd'), st.lists(value, max_size=6).filter(lambda v: len(v) != 4), gap),
    st.tuples(st.just('hand'), position),
    st.tuples(st.just('bad_hand'), st.sampled_from([(math.nan, 0.5, 0.2), (math.inf, 0.0, 0.0)])),
    st.tuples(st.just('tick'), gap),
    st.tuples(st.just('estop'), gap),
    st.tuples(st.just('release'), gap))


def test_the_node_loads_the_peg_rule_from_the_task():
    rule = task_command_rule('peg_insertion', LIMITS_FILE)
    assert type(rule).__name__ == 'DisplacementRule' and TOOL.max_displacement == 0.01
    assert task_command_rule('pusht', task_limits_file('pusht')) is None     # absolute commands: none


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event, max_size=60), st.sampled_from(['hold', 'stop']))
def test_no_command_outside_the_peg_limits_reaches_the_cell(events, watchdog_action):
    limits = LIMITS.model_copy(update={'watchdog_action': watchdog_action})
    f = SafetyFilter(limits, task_command_rule('peg_insertion', LIMITS_FILE))
    now, hand, estopped, gripper = 0.0, None, False, -1.0

    def check(result):
        nonlocal gripper
        cmd = result.command
        if cmd is None:
            return
        out = np.array(cmd)
        assert out.shape == (4,) and np.all(np.isfinite(out)) and np.all(np.abs(out) <= 1.0 + TOL), cmd
        assert TOOL.gripper_low - TOL <= out[3] <= TOOL.gripper_high + TOL
        step = out[:3] * SCALE
        assert np.all(np.abs(step) <= TOOL.max_displacement + TOL)
        if estopped or result.is_stop or hand is None:
            assert not np.any(out[:3]), f'a stop that moves the hand: {cmd}'
            assert out[3] == gripper, 'a stop keeps the gripper as it was'
        else:
            # the hand: within the box grown by its margin (it may lag its target); the tracked target (the
            # rule's, moved by every command let through): within the box itself, never further out
            for where, low, high in ((hand, LOW - MARGIN, HIGH + MARGIN), (before, LOW, HIGH)):
                inside = (where >= low) & (where <= high)
                moved = where + step
                assert np.all(~inside | ((moved >= low - TOL) & (moved <= high + TOL))), (where, cmd)
                outside_by = np.abs(where - np.clip(where, low, high))
                further = np.abs(moved - np.clip(moved, low, high)) > outside_by + TOL
                assert not np.any(further), (where, cmd)
        gripper = float(out[3])

    for ev in events:
        kind = ev[0]
        # the rule's commanded target before this event (the hand, until the rule tracks one)
        before = hand if f.rule.target is None or hand is None else np.array(f.rule.target)
        if kind == 'cmd':
            now += ev[3]
            result = f.filter(ev[1], ev[2], now)
            if result.records and result.records[0].kind in (Kind.REJECTED_RATE, Kind.REJECTED_FRAME,
                                                             Kind.REJECTED_NONFINITE, Kind.REJECTED_ESTOP):
                assert result.command is None or not np.any(result.command[:3]), 'a rejection never moves'
            check(result)
        elif kind == 'odd':
            now += ev[2]
            result = f.filter(ev[1], 'world', now)
            check(result)
        elif kind in ('hand', 'bad_hand'):
            if f.update_tool(ev[1]):
                hand = np.array(ev[1])
            else:
                assert kind == 'bad_hand'
        elif kind == 'tick':
            now += ev[1]
            check(f.tick(now))
        elif kind == 'estop':
            now += ev[1]
            estopped = True
            check(f.latch_estop('test', now))
        else:
            now += ev[1]
            estopped = False
            check(f.release_estop(now))


# metaworld's hand follows a mocap target that each displacement moves (`set_xyz_action`: the target plus
# action x 0.01 as float32, clipped to mocap_low..mocap_high); a blocked hand lets the target run ahead.
MOCAP_LOW, MOCAP_HIGH = np.array([-0.5, 0.40, 0.05]), np.array([0.5, 1.0, 0.5])
outward = st.tuples(*(st.sampled_from([-1.0, 0.0, 1.0]) for _ in range(3)))
inside = st.tuples(*(st.floats(lo, hi) for lo, hi in zip(LOW, HIGH, strict=True)))
push = st.one_of(
    st.tuples(st.just('push'), outward, st.integers(1, 80)),            # the same push, repeated
    st.tuples(st.just('random'), st.lists(st.floats(-1.5, 1.5), min_size=4, max_size=4), st.just(1)),
    st.tuples(st.just('place'), inside, st.just(0)))                    # a new placement: the hand there


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inside, st.lists(push, min_size=1, max_size=12), st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8))
@example(start=(0.0, 0.59375, 0.203125), pushes=[('push', (-1.0, -1.0, 1.0), 25)], follow=[0.0])
def test_a_blocked_hand_never_lets_pushes_carry_the_commanded_target_out_of_the_box(start, pushes, follow):
    """The hand follows the target only partly (`follow` of the way each step, 0: fully blocked) while the
    same outward push repeats: the target metaworld moves never leaves the workspace box (bounding only the
    measured hand lets it run to metaworld's reach, up to 5 cm past the box)."""
    from enpire_task_peg.distributions import HAND_START
    from enpire_task_peg.safety import REST_OFFSET_M

    def placed(position) -> tuple[np.ndarray, np.ndarray]:
        """(hand, target) after a placement: metaworld's reset puts its target on the tool start and the
        hand settles within the weld's offset of it; a placement elsewhere puts both there."""
        hand = np.array(position)
        near_start = np.max(np.abs(hand - np.array(HAND_START))) <= REST_OFFSET_M
        return hand, np.array(HAND_START) if near_start else hand.copy()

    f = SafetyFilter(LIMITS, task_command_rule('peg_insertion', LIMITS_FILE))
    hand, target = placed(start)
    step, now, k = 0, 0.0, 0
    f.update_tool(tuple(hand), step=0)
    for kind, values, repeat in pushes:
        if kind == 'place':
            hand, target = placed(values)
            step = 0
            f.update_tool(tuple(hand), step=0)
            continue
        command = [*values, 1.0] if kind == 'push' else values
        for _ in range(repeat):
            now += 0.0125
            result = f.filter(command, 'world', now)
            if result.command is not None:
                move = np.asarray(result.command[:3], dtype=np.float32) * np.float32(SCALE)
                target = np.clip(target + move, MOCAP_LOW, MOCAP_HIGH)
            assert np.all(target >= LOW - 1e-6) and np.all(target <= HIGH + 1e-6), (target, hand)
            hand = hand + follow[k % len(follow)] * (target - hand)
            k += 1
            step += 1
            f.update_tool(tuple(hand), step=step)


def test_on_metaworlds_physics_a_peg_jammed_in_the_hole_keeps_the_target_in_the_box():
    """The expert inserts the peg, then the policy pushes on along -x: the jammed peg blocks the hand ~0.22 m
    inside the box's -x face while, unfiltered, metaworld's target runs on to its reach (-0.5, past -0.45).
    Through the safety filter (fed the hand and the cell's step, as the safety node is) the target stops at
    the box. The hand sits ~5 mm from the target at rest (the weld's offset): that is the tolerance."""
    from enpire_task_peg.simulator import PegSimulator, sample_layout
    from metaworld.policies.sawyer_peg_insertion_side_v3_policy import SawyerPegInsertionSideV3Policy

    def run(filtered: bool) -> tuple[np.ndarray, np.ndarray]:
        sim = PegSimulator()
        obs = sim.reset(sample_layout(2))
        f = SafetyFilter(LIMITS, task_command_rule('peg_insertion', LIMITS_FILE))
        expert, lowest, now = SawyerPegInsertionSideV3Policy(), np.array(HIGH), 0.0
        for step in range(300):
            f.update_tool(tuple(sim.env.get_endeff_pos()), step=sim.steps)
            action = expert.get_action(obs) if step < 140 else np.array([-1.0, 0.0, 0.0, 1.0])
            now += 0.0125
            command = f.filter(action, 'world', now).command if filtered else action
            obs, _ = sim.step(command)
            lowest = np.minimum(lowest, sim.data.mocap_pos[0])
        hand = sim.env.get_endeff_pos().copy()
        sim.close()
        return lowest, hand

    lowest, hand = run(filtered=False)
    assert lowest[0] < LOW[0] - 0.04 and hand[0] > LOW[0] + 0.1   # the premise: blocked, the target ran on
    lowest, hand = run(filtered=True)
    assert hand[0] > LOW[0] + 0.1 and np.all(lowest >= LOW - 0.006), lowest


def test_a_hand_resting_off_the_tool_start_anchors_the_target_on_metaworlds_start():
    """metaworld's reset puts its target on the tool start and the hand settles ~5 mm off (the weld): the rule
    tracks the real target from there (anchored on the hand it would bound the real one 5 mm short, and the
    expert never reached the peg's grasp height: 0 of 24 seeds inserted through the cell). A placement away
    from the start anchors on the hand."""
    from enpire_task_peg.distributions import HAND_START
    from enpire_task_peg.simulator import PegSimulator, sample_layout

    sim = PegSimulator()
    sim.reset(sample_layout(1))
    rest, mocap = sim.env.get_endeff_pos().copy(), sim.data.mocap_pos[0].copy()
    sim.close()
    assert 0.002 < np.max(np.abs(rest - mocap)) < 0.01       # the premise: the hand rests off its target
    rule = task_command_rule('peg_insertion', LIMITS_FILE)
    rule.placed(tuple(rest))
    assert rule.target.tolist() == list(HAND_START) == mocap.tolist()
    away = (0.2, 0.7, 0.3)
    rule.placed(away)
    assert rule.target.tolist() == list(away)


def test_a_hand_lagging_under_the_floor_lets_its_target_reach_the_floor():
    """Pressed on the table, metaworld's hand sags ~1 mm under the box's floor while its target is still 2 mm
    above it: the target may go down to the floor (metaworld would take it there), not be held above it."""
    rule = task_command_rule('peg_insertion', LIMITS_FILE)
    rule.placed((0.2, 0.7, 0.3))
    rule.target = np.array([0.0, 0.6, LOW[2] + 0.002])
    out, _ = rule.limit((0.0, 0.0, -1.0, 0.6), (0.0, 0.6, LOW[2] - 0.001))
    assert out[2] == pytest.approx(-0.2)            # 2 mm: to the floor, and no further
    out, _ = rule.limit((0.0, 0.0, -1.0, 0.6), (0.0, 0.6, LOW[2] - MARGIN - 0.001))
    assert out[2] == 0.0                            # a hand beyond its margin goes no further out


def test_on_metaworlds_physics_the_expert_grasps_a_peg_on_the_floor_through_the_rule():
    """Seed 900009: metaworld's expert pushes the peg along the table, the hand pressed 1 mm under the box's
    floor, until the fingers catch it. A rule bounding that hand by the box itself held its target 2 mm high
    and the peg was never grasped (metaworld alone inserts it at step 188); with the hand's margin the rule
    follows metaworld."""
    from enpire_task_peg.distributions import sample_initial_state
    from enpire_task_peg.simulator import PegSimulator
    from metaworld.policies.sawyer_peg_insertion_side_v3_policy import SawyerPegInsertionSideV3Policy

    sim = PegSimulator()
    obs = sim.reset(sample_initial_state(900009, 'metaworld').layout)
    f = SafetyFilter(LIMITS, task_command_rule('peg_insertion', LIMITS_FILE))
    expert, now, inserted = SawyerPegInsertionSideV3Policy(), 0.0, None
    try:
        for step in range(500):
            f.update_tool(tuple(sim.env.get_endeff_pos()), step=sim.steps)
            now += 0.0125
            command = f.filter(expert.get_action(obs), 'world', now).command
            obs, _ = sim.step(command)
            target = sim.data.mocap_pos[0]
            assert np.all(target >= LOW - 1e-6) and np.all(target <= HIGH + 1e-6)
            if sim.success()[1]:
                inserted = step
                break
    finally:
        sim.close()
    assert inserted is not None
