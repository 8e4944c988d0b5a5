"""A trial bag holds the whole trial: every command (the hold at a stop too), verdicts stamped like their
frames, one time base; `enpire audit --replay` re-runs it in the simulator (and gym-pusht) from the bag."""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from enpire_common import names
from rosbags.rosbag2 import Reader, Writer

from enpire_agents.ground_truth import ground_truth
from enpire_rollout.audit_replay import main_replay, read_recorded, replay_bag
from enpire_rollout.trial_bag import METADATA_TOPIC, typestore
from tests.enpire_rollout.test_trial_server_graph import NS, cell, goal, run, topic  # noqa: F401
from tests.enpire_rollout.third_party_readers import check_bag, check_rosbag2_metadata

pytestmark = pytest.mark.graph


def read_bag(path) -> list[tuple[str, int, object]]:
    """(topic, log time, message) of every message, in log-time order."""
    store = typestore()
    with Reader(path) as reader:
        return [(c.topic, t, store.deserialize_cdr(raw, c.msgtype)) for c, t, raw in reader.messages()]


def on(messages, name):
    return [(t, m) for n, t, m in messages if n == topic(name)]


def ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


@pytest.fixture(scope='module')
def stopped_trial(cell):  # noqa: F811
    """A trial stopped by its time budget mid-attempt (more steps than the budget allows; the budget
    counts the reset too, so it leaves room for a slow one)."""
    _, result, _ = run(cell, goal(cell['tmp'], seed=7, attempts=1, steps_per_attempt=10_000,
                                  time_budget_s=10.0), timeout=120)
    assert 'time budget' in result.failure_reason, result.failure_reason
    return result


@pytest.fixture(scope='module')
def verified_trial(cell):  # noqa: F811
    _, result, _ = run(cell, goal(cell['tmp'], seed=5, attempts=3, steps_per_attempt=25))
    assert result.failure_reason == '', result.failure_reason
    return result


def test_a_time_budget_stop_leaves_every_command_in_the_bag(stopped_trial):
    messages = read_bag(stopped_trial.bag_path)
    policy = [m for _, m in on(messages, names.POLICY_COMMAND)]
    safe = [m for _, m in on(messages, names.CELL_COMMAND)]
    states = [m for _, m in on(messages, names.CELL_STATE)]
    assert len(policy) >= 5
    # Every policy command, the hold at the stop included, reached the cell through safety and is in the
    # bag; the cell steps once per command, and its last state tracks the hold.
    assert len(safe) == len(policy)
    assert [ns(m.header.stamp) for m in safe] == [ns(m.header.stamp) for m in policy]
    assert states[-1].step == len(safe)
    hold = tuple(safe[-1].values)
    assert tuple(states[-1].commanded) == hold and safe[-1].header.frame_id == 'table'
    before = [s for s in states if s.step == len(safe) - 1][-1].tool_pose.position
    assert hold == (before.x, before.y), 'the last command is a stop at the agent'
    report = replay_bag(stopped_trial.bag_path)
    assert report.ok and report.steps == report.commands == len(safe), report


def test_one_time_base_for_every_topic_of_a_bag(stopped_trial, verified_trial):
    """Log times: the recorder's clock when it took each message, all within the bag (its metadata first,
    the trial's last event last). Header stamps: the cell's clock, unchanged, on every topic of the cell."""
    on_cell_clock = [names.CELL_STATE, names.CELL_COMMAND, names.POLICY_COMMAND, names.TRIAL_EVENTS,
                     names.GROUND_TRUTH, names.TRIAL_VERDICTS, names.camera_image('top'),
                     names.camera_info('top'), names.camera_homography('top')]
    for result in (stopped_trial, verified_trial):
        messages = read_bag(result.bag_path)
        events = on(messages, names.TRIAL_EVENTS)
        assert events[0][1].event == 'started' and events[-1][1].event in ('finished', 'aborted')
        start, end = next(t for n, t, _ in messages if n == METADATA_TOPIC), events[-1][0]
        assert 0 <= end - start < 3600e9
        for name, t, _msg in messages:
            assert start <= t <= end, (name, t - start, end - start)
        # Nothing stamped after the cell's last state; `started` may carry the state just before the bag's
        # first one (a second of cell time at most: the cell re-publishes its state while idle).
        states = [ns(m.header.stamp) for _, m in on(messages, names.CELL_STATE)]
        for name in on_cell_clock:
            stamps = [ns(m.header.stamp) for _, m in on(messages, name)] or [min(states)]
            assert all(min(states) - 1e9 <= s <= max(states) for s in stamps), \
                (name, min(stamps) - min(states), max(stamps) - max(states))
        verdicts = {topic(names.TRIAL_VERDICTS)} if result is verified_trial else set()
        assert {n for n, _, _ in messages} >= \
            {topic(n) for n in on_cell_clock if n != names.TRIAL_VERDICTS} | verdicts | {METADATA_TOPIC}


def test_the_reset_result_and_the_privileged_initial_state_are_in_the_bag(verified_trial):
    messages = read_bag(verified_trial.bag_path)
    reset = json.loads(next(m for _, m in on(messages, names.TRIAL_EVENTS) if m.event == 'reset_done').detail)
    assert reset['privileged_initial_state'] is True
    # Every placement's truth (step 0) is kept; the trial's initial state is the last before reset_done.
    truth = on(messages, names.GROUND_TRUTH)
    reset_done = next(t for t, m in on(messages, names.TRIAL_EVENTS) if m.event == 'reset_done')
    assert truth and all(m.step == 0 for _, m in truth)
    block = [m for t, m in truth if t <= reset_done][-1].task_state
    assert list(read_recorded(Path(verified_trial.bag_path)).truth[1]) == pytest.approx(list(block))
    # The cameras' estimate of the reset, beside the truth (a few table units apart at most).
    estimate = reset['estimated_state']
    assert abs(estimate[0] - block[0]) < 15 and abs(estimate[1] - block[1]) < 15
    assert list(reset['target_state']) == pytest.approx(list(block), abs=1e-6)
    assert set(reset['errors']) == {'position_px', 'angle_rad'}


def test_every_verdict_is_stamped_with_the_frames_it_judged(verified_trial):
    messages = read_bag(verified_trial.bag_path)
    verdicts = on(messages, 'trial/verdicts')
    assert len(verdicts) == verified_trial.attempts_used
    state_steps = {ns(m.header.stamp): m.step for _, m in on(messages, names.CELL_STATE)}
    for _, verdict in verdicts:
        t = ns(verdict.header.stamp)
        judged = [c for c in verdict.cameras if ns(c.frame_stamp)]
        assert len(judged) == 3, [(c.camera, c.reason) for c in verdict.cameras]
        for camera in judged:
            assert ns(camera.frame_stamp) == t, (camera.camera, ns(camera.frame_stamp) - t)
            frames = on(messages, names.camera_image(camera.camera))
            assert any(ns(f.header.stamp) == t for _, f in frames), f'{camera.camera}: frame not in bag'
        assert t in state_steps, 'the verdict names no step of the cell'
    # A verdict at the end of an attempt judges the attempt's last step, not the one before it.
    last_steps = [state_steps[ns(v.header.stamp)] for _, v in verdicts]
    assert last_steps == [25 * a for a in range(1, len(verdicts) + 1)], last_steps


def test_third_party_readers_read_every_message_of_a_trial_bag(verified_trial, stopped_trial, cell):  # noqa: F811
    """mcap (CRCs, summary, index, mcap-ros2-support decoding), rosbags' AnyReader and rosbag2's metadata
    rules agree on every topic of a bag the trial server recorded; each topic's type hash is the one the
    live publishers of that topic advertise on the graph."""
    for result in (verified_trial, stopped_trial):
        counts = check_bag(result.bag_path)
        assert counts[topic(names.CELL_STATE)] > 0 and counts[topic(names.camera_image('top'))] > 0
    _, hashes, _ = check_rosbag2_metadata(Path(verified_trial.bag_path))
    node = cell['ros'].node
    compared = 0
    for name, bag_hash in hashes.items():
        live = {str(w.topic_type_hash) for w in node.get_publishers_info_by_topic(name)}
        if live:
            assert live == {bag_hash}, name
            compared += 1
    assert compared >= 5, compared


def test_audit_replay_passes_on_a_real_bag(verified_trial, stopped_trial, capsys):
    report = replay_bag(verified_trial.bag_path)
    assert report.ok, report
    # 3 attempts of 25 steps, then the closing hold.
    assert report.reference_checked and report.task == 'pusht'
    assert report.steps == 76 and report.max_state_error == 0.0
    assert len(report.verdicts) == 3 and all(v.step is not None for v in report.verdicts)
    assert report.attempt_recorded == [False] * 3 and len(report.attempt_true) == 3
    assert main_replay(str(verified_trial.bag_path)) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith('trials 1 ') and 'verdicts 3' in last and 'false successes 0' in last


def tampered_copy(src, dst, change) -> None:
    """Copy a bag message by message; `change(topic, message)` may return a replacement message, or a
    list of messages written in its place."""
    store = typestore()
    with Reader(src) as reader, Writer(dst, version=9) as writer:
        conns = {c.id: writer.add_connection(c.topic, c.msgtype, typestore=store) for c in reader.connections}
        for c, t, raw in reader.messages():
            new = change(c.topic, store.deserialize_cdr(raw, c.msgtype))
            for msg in (new if isinstance(new, list) else [new]):
                writer.write(conns[c.id], t, raw if msg is None else store.serialize_cdr(msg, c.msgtype))


def test_audit_replay_fails_on_a_tampered_bag(verified_trial, tmp_path, capsys):
    # A verdict turned into a SUCCESS on a state the task's rule says is not one: a false success.
    def flip(name, msg):
        if name.endswith('/trial/verdicts') and not msg.success:
            msg.state, msg.success = 0, True
            return msg
        if name.endswith('/' + names.TRIAL_EVENTS) and msg.event == 'attempt_verified':
            msg.detail = json.dumps({**json.loads(msg.detail), 'success': True})
            return msg
        return None
    tampered_copy(verified_trial.bag_path, tmp_path / 'flipped', flip)
    report = replay_bag(tmp_path / 'flipped')
    assert report.false_successes == 3 and not report.ok
    # The ground-truth pass@k beside the verdicts' (what the demo prints) counts them too.
    truth = ground_truth([str(verified_trial.bag_path)], [5], 3)
    assert truth.false_successes == 0 and truth.pass_at_k.n == 1
    assert truth.pass_at_k.successes == int(any(report.attempt_true))
    assert ground_truth([str(tmp_path / 'flipped')], [5], 3).false_successes == 3
    assert main_replay(str(tmp_path / 'flipped')) == 1
    assert 'false_success' in capsys.readouterr().out

    # One command moved by a tenth of a unit: the states after it no longer follow from the bag.
    seen = []

    def nudge(name, msg):
        if name.endswith('/' + names.CELL_COMMAND):
            seen.append(1)
            if len(seen) == 10:
                msg.values = np.array([msg.values[0] + 0.1, *msg.values[1:]])
                return msg
        return None
    tampered_copy(verified_trial.bag_path, tmp_path / 'nudged', nudge)
    report = replay_bag(tmp_path / 'nudged')
    assert report.mismatches and not report.ok, report
    assert main_replay(str(tmp_path)) == 1

    # A command recorded on its way to the cell that the cell never applied (lost before it arrived, as
    # when a subscription has not matched yet): reported, and the states still follow from the rest.
    lost = []

    def lose(name, msg):
        if name.endswith('/' + names.CELL_COMMAND):
            lost.append(1)
            if len(lost) == 5:
                bogus = copy.deepcopy(msg)
                bogus.values = np.array([11.0, *bogus.values[1:]])
                return [bogus, None]
        return None
    tampered_copy(verified_trial.bag_path, tmp_path / 'lost', lose)
    report = replay_bag(tmp_path / 'lost')
    assert report.ok and report.lost_commands == 1, report
    shutil.rmtree(tmp_path / 'lost')

    shutil.rmtree(tmp_path / 'flipped')
    shutil.rmtree(tmp_path / 'nudged')
