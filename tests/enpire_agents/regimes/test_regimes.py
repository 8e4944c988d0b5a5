"""Learning regimes: dataset from a trial bag, BC export parity, generated sources in the real sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from enpire_task_pusht import learned_policy as lp

from enpire_agents.backends.base import ImprovementRequest
from enpire_agents.backends.code_check import check_code
from enpire_rollout.policy_contract import Observation
from enpire_rollout.policy_runtime import trial_context

torch = pytest.importorskip('torch')
torch.set_num_threads(1)


def _expert_code():
    from enpire_task_pusht import strategies as S

    return S.compose(S.default_genome().full())


@pytest.fixture(scope='module')
def bags(tmp_path_factory):
    """Two trials recorded through the sandbox and the verifier (top camera every step, debug ground
    truth): seeds 3 (a success, true coverage 0.974) and 1 (a failure), in `<root>/cell_0/<trial>/` as
    the sim bringup's trial server lays them out. (Seed 0 ends at 0.960: too near the threshold for the
    verifier to prove, so UNCERTAIN.)"""
    from enpire_agents.local_eval import TrialSettings
    from enpire_agents.regimes.sim_bags import record_rollouts

    root = tmp_path_factory.mktemp('bags')
    outs = record_rollouts(
        _expert_code(), [3, 1], root, attempts=1, steps_per_attempt=150, debug_ground_truth=True,
        settings=TrialSettings.from_config('pusht'),
    )
    return root, outs


def test_dataset_from_bag(bags):
    from enpire_agents.regimes.dataset import build_dataset, export_lerobot

    root, outs = bags
    ds = build_dataset(root, only_success=False, task='pusht')
    assert ds.feature_map == lp.FEATURES_HIST and ds.obs.shape[1] == len(lp.HIST_FEATURE_NAMES)
    assert len(ds.trials) == 2 and ds.act.shape == (len(ds), 2)
    v1 = build_dataset(root, only_success=False, feature_map=lp.FEATURES, task='pusht')
    assert v1.obs.shape == (len(ds), len(lp.FEATURE_NAMES)) and np.allclose(v1.obs, ds.obs[:, :8])
    assert sorted({t.seed for t in ds.trials}) == [1, 3]
    assert all(len(t.policy_sha256) == 64 for t in ds.trials)
    assert len(ds) == sum(o.steps for o in outs)  # one pair per control step
    # camera features agree with the recorded ground truth (the named debug variant) to a few px
    gt = build_dataset(root, only_success=False, features='debug_state', task='pusht')
    assert len(gt) == len(ds)
    assert np.abs(ds.obs[:, 2:4] - gt.obs[:, 2:4]).max() < 12.0
    # the action is the safe command the cell then tracked, relative to the agent
    t = ds.trials[0]
    assert np.allclose(t.agent + t.act, t.act_abs)
    # verdict bookkeeping: each attempt's last step carries its reward
    assert ds.reward.sum() == sum(o.success for o in outs)
    out = export_lerobot(ds, root / 'lerobot', cameras=['top'])
    check_lerobot_v3(out, ds)


def check_lerobot_v3(out, ds):
    """The LeRobot v3.0 layout: info, tasks, one episodes file, one data file, one video per camera."""
    import cv2
    import pyarrow.parquet as pq

    info = json.loads((out / 'meta' / 'info.json').read_text())
    assert info['codebase_version'] == 'v3.0'
    assert info['total_episodes'] == 2 and info['total_frames'] == len(ds)
    assert info['data_path'] == 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet'
    assert info['features']['observation.images.top']['dtype'] == 'video'
    data = pq.read_table(out / 'data' / 'chunk-000' / 'file-000.parquet')
    assert data.num_rows == len(ds)
    assert {'observation.state', 'action', 'episode_index', 'frame_index', 'index', 'next.done'} <= set(
        data.column_names
    )
    assert data['index'].to_pylist() == list(range(len(ds)))
    episodes = pq.read_table(out / 'meta' / 'episodes' / 'chunk-000' / 'file-000.parquet').to_pylist()
    assert [e['episode_index'] for e in episodes] == [0, 1]
    assert episodes[0]['dataset_from_index'] == 0 and episodes[1]['dataset_to_index'] == len(ds)
    assert episodes[0]['dataset_to_index'] == episodes[1]['dataset_from_index'] == len(ds.trials[0].obs)
    assert episodes[0]['tasks'] == ['Push the T-shaped block onto the goal pose.']
    assert episodes[1]['videos/observation.images.top/from_timestamp'] == pytest.approx(
        episodes[0]['videos/observation.images.top/to_timestamp'])
    tasks = pq.read_table(out / 'meta' / 'tasks.parquet')
    assert tasks['task_index'].to_pylist() == [0] and b'pandas' in tasks.schema.metadata
    stats = json.loads((out / 'meta' / 'stats.json').read_text())
    assert stats['action']['count'] == [len(ds)] and len(stats['observation.state']['mean']) == 2
    video = cv2.VideoCapture(str(out / 'videos' / 'observation.images.top' / 'chunk-000' / 'file-000.mp4'))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == len(ds)     # one frame per step of every episode
    assert video.get(cv2.CAP_PROP_FPS) == pytest.approx(info['fps'])
    assert not (out / 'meta' / 'episodes.jsonl').exists()          # no v2.1 leftovers


@pytest.fixture
def weights_dir():
    """A folder the sandboxed policy can read: it runs as nobody when we are root (pytest's tmp is 0700)."""
    import os
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix='enpire_weights_')
    os.chmod(path, 0o755)
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


def test_bc_export_matches_torch_and_runs_in_sandbox(bags, tmp_path, weights_dir):
    from enpire_agents.regimes.bc import learned_policy_source, torch_forward, train_mlp
    from enpire_agents.regimes.dataset import build_dataset

    ds = build_dataset(bags[0], only_success=False, task='pusht')
    model, net, loss = train_mlp(ds.obs, ds.act, hidden=(32, 32), epochs=20, seed=0, task='pusht')
    assert np.isfinite(loss)
    net.features = ds.feature_map  # what train_bc records: the policy picks its feature map by this name
    path = weights_dir / 'w.npz'
    sha = lp.export_mlp(net, path)
    loaded = lp.load_mlp(str(path), sha256=sha)
    assert np.allclose(loaded(ds.obs), torch_forward(model, net, ds.obs), atol=1e-4)
    assert np.allclose(loaded(ds.obs[0]), loaded(ds.obs[:1])[0])
    with pytest.raises(ValueError):
        lp.load_mlp(str(path), sha256='0' * 64)
    code = learned_policy_source(str(path), sha, 'behaviour_cloning', task='pusht')
    assert check_code(code, 'pusht').ok, check_code(code, 'pusht').reason
    actions = _run_in_sandbox(code, tmp_path, steps=4)
    f = lp.feature_map(loaded.features)
    for a in actions[:2]:  # the second step's input holds the first step's command (the history)
        expected = lp.pusht_target((100.0, 100.0), loaded(f((100.0, 100.0), (250.0, 300.0, 0.3))))
        f.commanded(a)  # camera pose ~ true pose: close, not equal
        assert np.hypot(a[0] - expected[0], a[1] - expected[1]) < 40.0


def test_history_features_are_the_same_in_the_dataset_and_at_run_time(bags):
    """pusht_v2 in a dataset: the previous step's safe command and displacements, zero at each start."""
    from enpire_agents.regimes.dataset import build_dataset

    ds = build_dataset(bags[0], only_success=False, task='pusht')
    names = lp.HIST_FEATURE_NAMES
    for t in ds.trials:
        first = np.r_[True, t.attempt[1:] != t.attempt[:-1]]
        assert np.allclose(t.obs[first, 8:], 0.0)
        i = np.flatnonzero(~first)
        assert np.allclose(t.obs[i, names.index('prev_cmd_dx')], t.act_abs[i - 1, 0] - t.agent[i, 0])
        assert np.allclose(t.obs[i, names.index('agent_step_y')], t.agent[i, 1] - t.agent[i - 1, 1])
        assert np.allclose(t.obs[i, names.index('block_step_x')], t.obs[i, 2] - t.obs[i - 1, 2])
    # the run-time class gives the same rows when fed the same agent, pose and commands
    t = ds.trials[0]
    f = lp.feature_map(lp.FEATURES_HIST)
    for k in range(5):
        pose = (t.obs[k, 2], t.obs[k, 3], np.arctan2(t.obs[k, 5], t.obs[k, 4]))
        assert np.allclose(f(t.agent[k], pose), t.obs[k])
        f.commanded(t.act_abs[k])


def test_v1_weights_and_sources_keep_working(tmp_path, weights_dir):
    """A weights file without history (pusht_v1, e.g. the PPO actor or an older export) and the older
    policy source that calls lp.pusht_features directly both still run."""
    from enpire_agents.regimes.bc import learned_policy_source

    rng = np.random.default_rng(0)
    net = lp.MLP([rng.normal(size=(8, 4)), rng.normal(size=(4, 2))], [np.zeros(4), np.zeros(2)])
    assert lp.feature_map(net.features).name == lp.FEATURES and lp.feature_map(net.features).n == 8
    sha = lp.export_mlp(net, weights_dir / 'v1.npz')
    code = learned_policy_source(str(weights_dir / 'v1.npz'), sha, task='pusht')
    assert all(np.all(np.isfinite(a)) for a in _run_in_sandbox(code, tmp_path, steps=3))
    old = code.replace(
        'self.net(self.features(agent, self.pose))', 'self.net(lp.pusht_features(agent, self.pose))'
    )
    assert old != code and all(np.all(np.isfinite(a)) for a in _run_in_sandbox(old, tmp_path, steps=3))
    with pytest.raises(ValueError):
        lp.feature_map('pusht_v9')


def test_bag_paths_finds_bags_at_any_depth(tmp_path):
    from enpire_agents.regimes.dataset import bag_paths

    bags = [tmp_path / 'cell_0' / 't1', tmp_path / 'cell_1' / 't2', tmp_path / 'flat', tmp_path / 'a/b/c']
    for bag in bags:
        bag.mkdir(parents=True)
        (bag / 'metadata.yaml').write_text('rosbag2_bagfile_information: {}\n')
    (tmp_path / 'cell_0' / 'trials.jsonl').write_text('')  # the index next to the bags is no bag
    (tmp_path / '.journal').mkdir()
    assert bag_paths(tmp_path) == sorted(bags)
    assert bag_paths(tmp_path / 'cell_1') == [tmp_path / 'cell_1' / 't2']
    assert bag_paths(tmp_path / 'flat') == [tmp_path / 'flat']  # a bag itself
    assert bag_paths(tmp_path / 'nothing_here') == []


def test_bags_from_the_trial_loop_carry_the_verifiers_verdicts(bags):
    """The sim bags are written by `local_eval.run_trial`: verdicts are the verifier's, not coverage."""
    from rosbags.rosbag2 import Reader

    from enpire_rollout.trial_bag import typestore

    root, outs = bags
    store = typestore()
    assert all(Path(o.bag_path).parent == root / 'cell_0' for o in outs)
    with Reader(outs[0].bag_path) as reader:
        raws = [(c.msgtype, raw) for c, _, raw in reader.messages() if c.topic == '/cell_0/trial/verdicts']
    verdicts = [store.deserialize_cdr(raw, kind) for kind, raw in raws]
    assert len(verdicts) == len(outs[0].attempt_scores)
    assert all(v.rule == 'unanimous' and v.reason != 'coverage below bar' for v in verdicts)
    assert [round(v.score, 6) for v in verdicts] == [round(s, 6) for s in outs[0].attempt_scores]


def _observation(step=0):
    """A real top-camera frame of a placed sim (what the trial server hands the sandbox)."""
    from enpire_task_pusht.in_process import _Camera, _EnpireSim

    sim = _EnpireSim()
    sim.place((250.0, 300.0, 0.3), (100.0, 100.0))
    frames, maps = _Camera().frames(sim)
    return Observation(
        step=step,
        attempt=1,
        time_s=0.0,
        agent_position=np.array([100.0, 100.0]),
        agent_velocity=np.zeros(2),
        frames=frames,
        table_to_image=maps,
    )


def _run_in_sandbox(code: str, tmp_path, steps: int = 3) -> list:
    from enpire_rollout.sandbox import PolicyRunner, SandboxLimits

    policy = tmp_path / 'policy.py'
    policy.write_text(code)
    runner = PolicyRunner(SandboxLimits(step_deadline_s=2.0, hang_timeout_s=10.0))
    try:
        start = runner.start(
            policy,
            trial_context(
                'pusht', attempts=2, steps_per_attempt=300, control_hz=10.0, cameras=['top'], seed=0
            ),
        )
        assert start.ok, start.reason
        out = []
        for i in range(steps):
            r = runner.act(_observation(i))
            assert r.ok and not r.held, r.reason
            out.append(r.action)
        return out
    finally:
        runner.close()


def test_tool_calling_policy_runs_in_sandbox(tmp_path):
    from enpire_agents.regimes.tool_calling import PLANS, spec_from_code, tool_policy_source

    for plan in PLANS:
        code = tool_policy_source(plan, {'gain': 0.6}, task='pusht')
        assert check_code(code, 'pusht').ok, check_code(code, 'pusht').reason
        assert spec_from_code(code)[0] == plan and spec_from_code(code)[1]['gain'] == 0.6
    actions = _run_in_sandbox(tool_policy_source('rotate_first', task='pusht'), tmp_path, steps=3)
    assert all(a is not None and all(np.isfinite(a)) for a in actions)
    assert actions[0] != (100.0, 100.0)  # it moves toward a contact of the T it located


def test_motion_tools_geometry():
    from enpire_task_pusht import policy_motion_tools as mt

    pose = (256.0, 300.0, 0.0)
    assert (
        mt.distance_to_t([(256.0, 310.0)], pose)[0] < 0 and mt.distance_to_t([(256.0, 200.0)], pose)[0] > 50
    )
    assert abs(mt.coverage_estimate(mt.GOAL_POSE) - 1.0) < 1e-6
    dx, dy, dth = mt.pose_error(mt.GOAL_POSE)
    assert abs(dx) + abs(dy) + abs(dth) < 1e-9
    mem = {}
    t = mt.push_to((256.0, 480.0), pose, (256.0, 200.0), mem)
    assert 'contact' in mem and all(np.isfinite(t))
    # a target behind the T is reached around it, not through it
    step = mt.go_to((256.0, 250.0), (256.0, 460.0), pose)
    seg = np.linspace((256.0, 250.0), step, 10)
    assert mt.distance_to_t(seg, pose).min() > 0


def test_backends_set_regime_and_tree_records_it(bags, tmp_path):
    from enpire_agents.hypothesis_tree import HypothesisTree  # noqa: F401  (import check)
    from enpire_agents.regimes.regime_backends import (
        BehaviourCloningBackend,
        OfflineRLBackend,
        RegimeChooser,
        ToolCallingBackend,
    )

    req = ImprovementRequest(task='pusht', contract='', agent_id='a0', round=0)
    bc = BehaviourCloningBackend(bags[0], tmp_path / 'w', epochs=5, max_seconds=10)
    orl = OfflineRLBackend(bags[0], tmp_path / 'w', epochs=5, max_seconds=10)
    tool = ToolCallingBackend()
    chooser = RegimeChooser({'tool_calling': tool, 'behaviour_cloning': bc, 'offline_rl': orl})
    seen = set()
    for rnd in range(3):
        p = chooser.propose(req.model_copy(update={'round': rnd}))
        assert check_code(p.code, 'pusht').ok, (p.regime, check_code(p.code, 'pusht').reason)
        seen.add(p.regime)
    assert seen == {'tool_calling', 'behaviour_cloning', 'offline_rl'}
    empty = BehaviourCloningBackend(tmp_path / 'no_bags', tmp_path / 'w').propose(req)
    assert empty.regime == 'tool_calling' and 'not possible yet' in empty.hypothesis


def test_hypothesis_tree_node_records_regime(tmp_path):
    from enpire_agents.hypothesis_tree import HypothesisTree, empty_policy
    from enpire_agents.regimes.regime_backends import ToolCallingBackend

    p = ToolCallingBackend().propose(ImprovementRequest(task='pusht', contract='', agent_id='a0', round=0))
    tree = HypothesisTree.create(tmp_path / 'tree', 'regimes', empty_policy('pusht'))
    node = tree.commit_idea(
        'a0', p.code, p.hypothesis, None, round=0, regime=p.regime, backend='tool_calling'
    )
    assert HypothesisTree.open(tmp_path / 'tree').node(node.node_id).regime == 'tool_calling'
    assert 'regime: tool_calling' in tree._git('show', f'{node.node_id}:HYPOTHESIS.md')


def _flipped(ds):
    """The same steps with every verdict inverted: success <-> failure, score -> 1 - score."""
    import copy

    out = copy.deepcopy(ds)
    for t in out.trials:
        t.attempt_success = ~t.attempt_success
        t.attempt_score = 1.0 - t.attempt_score
        t.success = bool(t.attempt_success.any())
    return out


def test_offline_rl_learns_from_the_verifiers_reward_and_runs_in_sandbox(bags, tmp_path, weights_dir):
    from enpire_agents.regimes.bc import learned_policy_source
    from enpire_agents.regimes.dataset import build_dataset
    from enpire_agents.regimes.offline_rl import advantage_weights, returns, train_awr

    ds = build_dataset(bags[0], only_success=False, task='pusht')
    flipped = _flipped(ds)
    assert not np.allclose(returns(ds), returns(flipped))
    w, _ = advantage_weights(ds, value_epochs=20, seed=0)
    w_flipped, _ = advantage_weights(flipped, value_epochs=20, seed=0)
    assert not np.allclose(w, w_flipped, rtol=0.05)  # the reward decides which commands count
    res = train_awr(ds, weights_dir, epochs=10, seed=0, max_seconds=20)
    res_flipped = train_awr(flipped, weights_dir, name='awr_flipped', epochs=10, seed=0, max_seconds=20)
    assert res.sha256 != res_flipped.sha256
    a = lp.load_mlp(res.path, sha256=res.sha256)(ds.obs)
    b = lp.load_mlp(res_flipped.path, sha256=res_flipped.sha256)(ds.obs)
    assert np.abs(a - b).mean() > 1e-3
    assert res.info['regime'] == 'offline_rl' and res.info['algorithm'] == 'awr'
    code = learned_policy_source(res.path, res.sha256, 'offline_rl', task='pusht')
    assert check_code(code, 'pusht').ok, check_code(code, 'pusht').reason
    actions = _run_in_sandbox(code, tmp_path, steps=3)
    assert all(a is not None and all(np.isfinite(a)) for a in actions)


def test_online_rl_exported_actor_matches_torch_and_runs_in_sandbox(tmp_path, weights_dir):
    pytest.importorskip('stable_baselines3')
    from enpire_agents.regimes.online_rl import FEATURE_MEAN, FEATURE_STD, export_actor, make_env, make_ppo
    from enpire_agents.regimes.regime_backends import OnlineRLBackend

    env = make_env(task='pusht')
    model = make_ppo(env, seed=0, n_steps=128)
    model.learn(total_timesteps=256)
    net = export_actor(model, max_delta=40.0, task='pusht')
    rng = np.random.default_rng(0)
    poses = [(*rng.uniform(100, 400, 2), rng.uniform(-np.pi, np.pi)) for _ in range(64)]
    x = np.stack([lp.pusht_features(rng.uniform(50, 460, 2), pose) for pose in poses])
    torch_action, _ = model.predict(((x - FEATURE_MEAN) / FEATURE_STD).astype(np.float32), deterministic=True)
    assert np.allclose(net(x), 40.0 * np.clip(torch_action, -1.0, 1.0), atol=1e-3)
    env.close()

    backend = OnlineRLBackend(weights_dir, timesteps=300, n_steps=128, max_seconds=60)
    p = backend.propose(ImprovementRequest(task='pusht', contract='', agent_id='a0', round=0))
    assert p.regime == 'online_rl' and check_code(p.code, 'pusht').ok, check_code(p.code, 'pusht').reason
    res = backend.last_result
    assert res.info['algorithm'] == 'sb3_ppo' and backend.stats['steps'] >= 300
    loaded = lp.load_mlp(res.path, sha256=res.sha256)  # the file the policy loads is pinned by its hash
    assert np.all(np.abs(loaded(x)) <= 40.0 + 1e-9)
    actions = _run_in_sandbox(p.code, tmp_path, steps=3)
    assert all(a is not None and all(np.isfinite(a)) for a in actions)


def test_task_parts_come_from_the_registry(monkeypatch):
    """The regimes reach a task's features, templates and env only through `Task.extras['learning']`."""
    import dataclasses

    from enpire_common import task_registry
    from enpire_common.task_registry import UnknownTask

    from enpire_agents.regimes import task_learning
    from enpire_agents.regimes.tool_calling import tool_policy_source

    assert task_learning('pusht').runtime is lp
    with pytest.raises(UnknownTask, match='name the task'):      # two tasks installed: no default
        task_learning()
    with pytest.raises(UnknownTask, match='no_such_task'):
        task_learning('no_such_task')
    bare = dataclasses.replace(task_registry.get('pusht'), extras={})
    monkeypatch.setattr(task_registry, 'get', lambda name: bare)
    with pytest.raises(ValueError, match='brings no learning regimes'):
        tool_policy_source('pose', task='pusht')
