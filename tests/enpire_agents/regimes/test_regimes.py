"""Learning regimes: dataset from a trial bag, BC export parity, generated sources in the real sandbox."""

from __future__ import annotations

import json

import numpy as np
import pytest

from enpire_agents.backends.base import ImprovementRequest
from enpire_agents.backends.code_check import check_code
from enpire_rollout import learned_policy as lp
from enpire_rollout.policy_contract import Observation, TrialContext

torch = pytest.importorskip('torch')
torch.set_num_threads(1)


def _expert_code():
    from enpire_agents import strategies as S

    return S.compose(S.default_genome().full())


@pytest.fixture(scope='module')
def bags(tmp_path_factory):
    """Two recorded trials (TrialBag, top camera every step, debug ground truth): seeds 0 and 1."""
    from enpire_agents.regimes.sim_bags import record_rollouts

    root = tmp_path_factory.mktemp('bags')
    outs = record_rollouts(
        _expert_code(), [0, 1], root, attempts=1, steps_per_attempt=150, debug_ground_truth=True
    )
    return root, outs


def test_dataset_from_bag(bags):
    from enpire_agents.regimes.dataset import build_dataset, export_lerobot

    root, outs = bags
    ds = build_dataset(root, only_success=False)
    assert len(ds.trials) == 2 and ds.obs.shape[1] == len(lp.FEATURE_NAMES) and ds.act.shape == (len(ds), 2)
    assert sorted({t.seed for t in ds.trials}) == [0, 1]
    assert all(len(t.policy_sha256) == 64 for t in ds.trials)
    assert len(ds) == sum(o['steps'] for o in outs)  # one pair per control step
    # camera features agree with the recorded ground truth (the named debug variant) to a few px
    gt = build_dataset(root, only_success=False, features='debug_state')
    assert len(gt) == len(ds)
    assert np.abs(ds.obs[:, 2:4] - gt.obs[:, 2:4]).max() < 12.0
    # the action is the safe command the cell then tracked, relative to the agent
    t = ds.trials[0]
    assert np.allclose(t.agent + t.act, t.act_abs)
    # verdict bookkeeping: each attempt's last step carries its reward
    assert ds.reward.sum() == sum(o['success'] for o in outs)
    out = export_lerobot(ds, root / 'lerobot')
    info = json.loads((out / 'meta' / 'info.json').read_text())
    assert (
        info['total_episodes'] == 2 and info['total_frames'] == len(ds) and info['codebase_version'] == 'v2.1'
    )
    import pyarrow.parquet as pq

    table = pq.read_table(out / 'data' / 'chunk-000' / 'episode_000000.parquet')
    assert {'observation.state', 'action', 'episode_index', 'frame_index', 'next.done'} <= set(
        table.column_names
    )


def test_bc_export_matches_torch_and_runs_in_sandbox(bags, tmp_path):
    from enpire_agents.regimes.bc import learned_policy_source, torch_forward, train_mlp
    from enpire_agents.regimes.dataset import build_dataset

    ds = build_dataset(bags[0], only_success=False)
    model, net, loss = train_mlp(ds.obs, ds.act, hidden=(32, 32), epochs=20, seed=0)
    assert np.isfinite(loss)
    import shutil
    import tempfile

    weights_dir = tempfile.mkdtemp(prefix='enpire_weights_')  # the sandbox runs as nobody when we are root:
    import os  # the weights' folder must be open to it

    os.chmod(weights_dir, 0o755)
    path = f'{weights_dir}/w.npz'
    request_cleanup = shutil.rmtree
    sha = lp.export_mlp(net, path)
    loaded = lp.load_mlp(str(path), sha256=sha)
    assert np.allclose(loaded(ds.obs), torch_forward(model, net, ds.obs), atol=1e-4)
    assert np.allclose(loaded(ds.obs[0]), loaded(ds.obs[:1])[0])
    with pytest.raises(ValueError):
        lp.load_mlp(str(path), sha256='0' * 64)
    code = learned_policy_source(str(path), sha, 'behaviour_cloning')
    assert check_code(code).ok, check_code(code).reason
    try:
        actions = _run_in_sandbox(code, tmp_path, steps=4)
    finally:
        request_cleanup(weights_dir, ignore_errors=True)
    x = lp.pusht_features((100.0, 100.0), (250.0, 300.0, 0.3))
    expected = lp.pusht_target((100.0, 100.0), loaded(x))  # camera pose ~ true pose: close, not equal
    assert np.hypot(actions[0][0] - expected[0], actions[0][1] - expected[1]) < 40.0


def _observation(step=0):
    """A real top-camera frame of a placed sim (what the trial server hands the sandbox)."""
    from enpire_agents.local_eval import _Camera, _EnpireSim

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
            TrialContext(
                task='pusht', attempts=2, steps_per_attempt=300, control_hz=10.0, cameras=['top'], seed=0
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
        code = tool_policy_source(plan, {'gain': 0.6})
        assert check_code(code).ok, check_code(code).reason
        assert spec_from_code(code)[0] == plan and spec_from_code(code)[1]['gain'] == 0.6
    actions = _run_in_sandbox(tool_policy_source('rotate_first'), tmp_path, steps=3)
    assert all(a is not None and all(np.isfinite(a)) for a in actions)
    assert actions[0] != (100.0, 100.0)  # it moves toward a contact of the T it located


def test_motion_tools_geometry():
    from enpire_rollout import policy_motion_tools as mt

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
        assert check_code(p.code).ok, (p.regime, check_code(p.code).reason)
        seen.add(p.regime)
    assert seen == {'tool_calling', 'behaviour_cloning', 'offline_rl'}
    empty = BehaviourCloningBackend(tmp_path / 'no_bags', tmp_path / 'w').propose(req)
    assert empty.regime == 'tool_calling' and 'not possible yet' in empty.hypothesis


def test_hypothesis_tree_node_records_regime(tmp_path):
    from enpire_agents.hypothesis_tree import HypothesisTree
    from enpire_agents.regimes.regime_backends import ToolCallingBackend

    p = ToolCallingBackend().propose(ImprovementRequest(task='pusht', contract='', agent_id='a0', round=0))
    tree = HypothesisTree.create(tmp_path / 'tree', 'regimes')
    node = tree.commit_idea(
        'a0', p.code, p.hypothesis, None, round=0, regime=p.regime, backend='tool_calling'
    )
    assert HypothesisTree.open(tmp_path / 'tree').node(node.node_id).regime == 'tool_calling'
    assert 'regime: tool_calling' in tree._git('show', f'{node.node_id}:HYPOTHESIS.md')
