"""The servers' request validation under arbitrary input (pure, hypothesis): a bad request always gets a
short, non-empty reason that never echoes a long string whole; a good one passes; camera faults set at run
time never break the renderer."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from enpire_task_pusht.distributions import DISTRIBUTIONS, placement_problem
from enpire_task_pusht.render import CameraFaults, apply_faults
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from enpire_env.request_checks import (
    count_problem,
    name_problem,
    names_problem,
    number_problem,
    shown,
    verify_request_problem,
)
from enpire_env.reset import ResetConfig, validate_goal
from enpire_rollout.trial_core import TrialServerConfig
from enpire_rollout.trial_core import validate_goal as validate_trial_goal

MAX_REASON = 400
HOSTILE_TEXT = st.one_of(st.text(max_size=40), st.just('x' * 10_000), st.just('../../../etc/passwd'),
                         st.just('a\x00b'), st.just(''), st.just('pusht '), st.just('PUSHT'))
ANY_NUMBER = st.one_of(st.integers(min_value=-2**70, max_value=2**70), st.floats(allow_nan=True),
                       st.booleans(), st.none(), st.text(max_size=5))
CAMERAS = ('top', 'oblique', 'wrist')


def assert_refused(reason: str) -> None:
    assert 0 < len(reason) < MAX_REASON and 'x' * 100 not in reason, reason[:200]


@given(HOSTILE_TEXT)
def test_shown_never_returns_a_long_text(value):
    assert len(shown(value)) < 120


@given(HOSTILE_TEXT, st.sampled_from(['task', 'distribution']))
def test_a_name_passes_only_when_known(value, what):
    reason = name_problem(value, ('pusht', 'in_distribution'), what)
    if value in ('pusht', 'in_distribution'):
        assert reason == ''
    else:
        assert_refused(reason)
        assert what in reason


@given(ANY_NUMBER)
def test_a_count_passes_only_as_an_integer_in_range(value):
    reason = count_problem(value, 'attempts', 1, 64)
    ok = type(value) is int and 1 <= value <= 64
    assert (reason == '') == ok
    if not ok:
        assert_refused(reason)


@given(ANY_NUMBER)
def test_a_number_passes_only_finite_and_in_range(value):
    reason = number_problem(value, 'time_budget_s', 0.0, 7200.0)
    ok = type(value) in (int, float) and math.isfinite(value) and 0 <= value <= 7200
    assert (reason == '') == ok
    if not ok:
        assert_refused(reason)


@given(st.lists(HOSTILE_TEXT | st.sampled_from(CAMERAS), max_size=50))
def test_cameras_pass_only_known_and_distinct(cameras):
    reason = names_problem(cameras, CAMERAS, 'camera')
    ok = all(c in CAMERAS for c in cameras) and len(set(cameras)) == len(cameras)
    assert (reason == '') == ok
    if not ok:
        assert_refused(reason)


def test_a_thousand_unknown_cameras_are_named_in_a_line():
    reason = verify_request_problem('pusht', [f'cam{i}' for i in range(1000)], ('pusht',), CAMERAS)
    assert_refused(reason)
    assert 'cam0' in reason and '997 more' in reason


@settings(deadline=None)      # a loaded machine takes longer than hypothesis' 200 ms per example
@given(HOSTILE_TEXT | st.just('pusht'), HOSTILE_TEXT | st.sampled_from(DISTRIBUTIONS),
       st.integers(min_value=-2**31, max_value=2**31 - 1))
def test_reset_goals(task, distribution, max_tries):
    config = ResetConfig()
    reason = validate_goal(task, distribution, max_tries, config)
    ok = task == 'pusht' and distribution in DISTRIBUTIONS and 1 <= max_tries <= config.max_tries_limit
    assert (reason == '') == ok
    if not ok:
        assert_refused(reason)


@pytest.fixture(scope='module')
def policy(tmp_path_factory):
    import hashlib
    folder = tmp_path_factory.mktemp('policies')
    path = folder / 'policy.py'
    path.write_text('class Policy:\n    pass\n')
    path.chmod(0o644)
    return folder, str(path), hashlib.sha256(path.read_bytes()).hexdigest()


@settings(deadline=None)
@given(task=HOSTILE_TEXT | st.just('pusht'), distribution=HOSTILE_TEXT | st.sampled_from(DISTRIBUTIONS),
       attempts=st.integers(-2**31, 2**31 - 1), steps=st.integers(-2**31, 2**31 - 1),
       budget=st.floats(allow_nan=True), path=HOSTILE_TEXT | st.just('GOOD'),
       sha=HOSTILE_TEXT | st.just('GOOD'), trial_id=HOSTILE_TEXT)
def test_trial_goals(policy, task, distribution, attempts, steps, budget, path, sha, trial_id):
    folder, good_path, good_sha = policy
    config = TrialServerConfig(policy_dirs=[str(folder)])
    goal = SimpleNamespace(trial_id=trial_id, task=task, distribution=distribution, attempts=attempts,
                           steps_per_attempt=steps, time_budget_s=budget,
                           policy_path=good_path if path == 'GOOD' else str(folder / path),
                           policy_sha256=good_sha if sha == 'GOOD' else sha)
    reason = validate_trial_goal(goal, config)
    ok = (trial_id == '' or (trial_id.isascii() and trial_id.replace('_', '').replace('-', '').isalnum()
                             and len(trial_id) <= 64)) \
        and task == 'pusht' and distribution in ('', *DISTRIBUTIONS) and 1 <= attempts <= 64 \
        and 1 <= steps <= config.max_steps_per_attempt and 0 <= budget <= config.max_time_budget_s \
        and path == 'GOOD' and sha == 'GOOD'
    assert (reason == '') == ok, reason
    if not ok:
        assert_refused(reason)
        assert good_sha not in reason


FINITE_OR_NOT = st.floats(allow_nan=True, allow_infinity=True)


@given(st.tuples(FINITE_OR_NOT, FINITE_OR_NOT, FINITE_OR_NOT), st.tuples(FINITE_OR_NOT, FINITE_OR_NOT))
def test_placements_are_refused_unless_finite_and_inside(block, agent):
    reason = placement_problem(block, agent)
    if not all(math.isfinite(v) for v in (*block, *agent)):
        assert reason == 'non-finite pose'
    assert reason is None or 0 < len(reason) < MAX_REASON


@settings(deadline=None, max_examples=60)
@given(noise=FINITE_OR_NOT, occlusion=FINITE_OR_NOT, center=st.tuples(FINITE_OR_NOT, FINITE_OR_NOT),
       gain=st.tuples(FINITE_OR_NOT, FINITE_OR_NOT, FINITE_OR_NOT),
       bias=st.tuples(FINITE_OR_NOT, FINITE_OR_NOT, FINITE_OR_NOT))
def test_camera_faults_are_refused_or_render(noise, occlusion, center, gain, bias):
    try:
        faults = CameraFaults(noise_std=noise, occlusion=occlusion, occlusion_center=center, gain=gain,
                              bias=bias)
    except ValidationError:
        return
    values = (noise, occlusion, *center, *gain, *bias)
    assert all(math.isfinite(v) for v in values)
    image = np.full((24, 32, 3), 128, dtype=np.uint8)
    out = apply_faults(image, faults, np.random.default_rng(0))
    assert out.shape == image.shape and out.dtype == np.uint8


@given(st.floats(allow_nan=True), st.floats(allow_nan=True), HOSTILE_TEXT)
def test_every_safety_event_reason_is_short(x, y, frame_id):
    from enpire_env.safety.filter import SafetyFilter
    from enpire_env.safety.limits import SafetyLimits
    limits = SafetyLimits(low=(0.0, 0.0), high=(512.0, 512.0), max_step=100.0)
    result = SafetyFilter(limits).filter((x, y), frame_id, 1.0)
    assert all(0 < len(record.reason) < MAX_REASON for record in result.records)


def test_control_characters_are_cut_after_quoting():
    assert len(shown('\x1f' * 60)) < 80 and len(shown('\U00018d09' * 5000)) < 120
