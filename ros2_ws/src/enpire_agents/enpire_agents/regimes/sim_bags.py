"""Trial bags from pure-sim rollouts: the trial server's bag layout, written without ROS (pure).

`record_rollout(code, seed, bag_root)` runs one pass@k rollout of a policy source on `PushTSim` with the
top camera rendered every step (as `local_eval` does with perception='camera') and writes a `TrialBag`
with the topics and messages the ROS trial server records: `/<cell>/cell_state` (CellState, with the
safe command the cell tracked in `commanded_target`), the top camera image and its homography (same
stamp as the state), `cmd/policy_target` and `cmd/target` (the safety-clamped command), trial events
(`started`, `attempt_started`, `attempt_verified` with steps/score/success, `finished`), one
FusedVerdict per attempt and `/trial/metadata` (seed, policy_sha256, policy_source, ...). Stamps are sim
time (start + 0.1 s per control step), as the sim cell stamps them. With `debug_ground_truth` the bag
also holds `/<cell>/privileged/ground_truth` (for the dataset's named debug variant only).

It lets the learning regimes be developed and benchmarked on the same files a real cell produces; real
trial bags (from `enpire_rollout.trial_server_node`) are read by `dataset.py` the same way.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np

from enpire_env import names
from enpire_env.tasks import pusht
from enpire_env.tasks.pusht_distributions import sample_initial_state
from enpire_rollout.policy_contract import AttemptReport, Observation, TrialContext

GT_TOPIC = names.GROUND_TRUTH


def _time(store, ns: int):
    return store.types['builtin_interfaces/msg/Time'](
        sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000)
    )


def _header(store, ns: int, frame_id: str = 'table'):
    return store.types['std_msgs/msg/Header'](stamp=_time(store, ns), frame_id=frame_id)


def record_rollout(
    code: str,
    seed: int,
    bag_root: str | Path,
    *,
    attempts: int = 2,
    cell: str = 'cell_0',
    distribution: str = 'in_distribution',
    steps_per_attempt: int = pusht.EPISODE_STEPS,
    debug_ground_truth: bool = False,
    trial_id: str | None = None,
    camera_resolution=None,
    policy_cls=None,
) -> dict:
    """Run and record one rollout; returns {'bag_path', 'success', 'success_attempt', 'scores', 'steps'}."""
    from enpire_agents.local_eval import _Camera, _EnpireSim, load_policy_class
    from enpire_rollout.trial_bag import TrialBag, TrialRecordConfig, typestore

    store = typestore()
    T = store.types
    sha = hashlib.sha256(code.encode()).hexdigest()
    trial_id = trial_id or f'sim_{sha[:8]}_s{seed}_{time.time_ns() % 10**9:09d}'
    metadata = {
        'trial_id': trial_id,
        'task': 'pusht',
        'policy_path': f'{trial_id}/policy.py',
        'policy_sha256': sha,
        'seed': int(seed),
        'distribution': distribution,
        'attempts': attempts,
        'steps_per_attempt': steps_per_attempt,
        'cell': cell,
        'policy_source': code,
        'recorder': 'enpire_agents.regimes.sim_bags',
        'started_unix': time.time(),
    }
    bag = TrialBag(bag_root, trial_id, cell, metadata, TrialRecordConfig(cameras=['top'], flush_period_s=5.0))
    bag.open()
    if debug_ground_truth:
        bag.connections[bag.topic(GT_TOPIC)] = bag.writer.add_connection(
            bag.topic(GT_TOPIC), 'enpire_interfaces/msg/GroundTruth', typestore=store
        )
    sim = _EnpireSim()
    camera = _Camera(resolution=camera_resolution)
    state = sample_initial_state(seed, distribution)
    sim.place(state.block, state.agent)
    policy = (policy_cls or load_policy_class(code))()
    policy.reset(
        TrialContext(
            task='pusht',
            attempts=attempts,
            steps_per_attempt=steps_per_attempt,
            control_hz=pusht.CONTROL_HZ,
            cameras=['top'],
            seed=seed,
        )
    )
    t0 = time.time_ns()
    tick = [0]
    commanded = tuple(float(v) for v in sim.agent_position())

    def now():
        return t0 + tick[0] * 100_000_000

    def event(name, attempt=0, score=0.0, offset_ns=0, **detail):
        msg = T['enpire_interfaces/msg/TrialEvent'](
            header=_header(store, now() + offset_ns),
            trial_id=trial_id,
            event=name,
            attempt=attempt,
            score=float(score),
            detail=json.dumps(detail, default=str),
        )
        bag.write_msg(bag.topic(names.TRIAL_EVENTS), msg, now() + offset_ns)

    def publish_state():
        ns = now()
        ax, ay = (float(v) for v in sim.agent_position())
        vx, vy = (float(v) for v in sim.agent_velocity())
        msg = T['enpire_interfaces/msg/CellState'](
            header=_header(store, ns),
            step=int(tick[0]),
            agent_position=T['geometry_msgs/msg/Point'](x=ax, y=ay, z=0.0),
            agent_velocity=T['geometry_msgs/msg/Vector3'](x=vx, y=vy, z=0.0),
            commanded_target=T['geometry_msgs/msg/Point'](x=commanded[0], y=commanded[1], z=0.0),
        )
        bag.write_msg(bag.topic(names.CELL_STATE), msg, ns)
        frames, maps = camera.frames(sim)
        for cam, img in frames.items():
            h, w = img.shape[:2]
            bag.write_msg(
                bag.topic(names.camera_image(cam)),
                T['sensor_msgs/msg/Image'](
                    header=_header(store, ns, cam),
                    height=h,
                    width=w,
                    encoding='rgb8',
                    is_bigendian=0,
                    step=w * 3,
                    data=np.ascontiguousarray(img, dtype=np.uint8).reshape(-1),
                ),
                ns,
            )
            bag.write_msg(
                bag.topic(names.camera_homography(cam)),
                T['enpire_interfaces/msg/TableHomography'](
                    header=_header(store, ns, cam),
                    table_to_image=np.asarray(maps[cam], dtype=np.float64).reshape(9),
                ),
                ns,
            )
        if debug_ground_truth:
            bx, by, th = sim.block_pose()
            bag.write_msg(
                bag.topic(GT_TOPIC),
                T['enpire_interfaces/msg/GroundTruth'](
                    header=_header(store, ns),
                    step=int(tick[0]),
                    block=T['geometry_msgs/msg/Pose2D'](x=bx, y=by, theta=th),
                    agent_position=T['geometry_msgs/msg/Point'](x=ax, y=ay, z=0.0),
                    coverage=float(sim.coverage()),
                ),
                ns,
            )
        return frames, maps

    def command(topic, x, y):
        msg = T['geometry_msgs/msg/PointStamped'](
            header=_header(store, now() + 1_000_000), point=T['geometry_msgs/msg/Point'](x=x, y=y, z=0.0)
        )
        bag.write_msg(bag.topic(topic), msg, now() + 1_000_000)

    event('started', seed=seed)
    event('reset_done', tries=1)
    frames, maps = publish_state()
    out = {'bag_path': str(bag.path), 'success': False, 'success_attempt': None, 'scores': [], 'steps': 0}
    previous: list[AttemptReport] = []
    for attempt in range(1, attempts + 1):
        event('attempt_started', attempt)
        steps, reason = 0, ''
        t_attempt = tick[0]
        for step in range(steps_per_attempt):
            obs = Observation(
                step=step,
                attempt=attempt,
                time_s=(tick[0] - t_attempt) / pusht.CONTROL_HZ,
                agent_position=np.asarray(sim.agent_position(), dtype=float),
                agent_velocity=np.asarray(sim.agent_velocity(), dtype=float),
                frames=frames,
                table_to_image=maps,
                frame_age_s={c: 0.0 for c in frames},
            )
            try:
                target = policy.act(obs)
                tx, ty = float(target[0]), float(target[1])
                if not (math.isfinite(tx) and math.isfinite(ty)):
                    raise ValueError('non-finite action')
            except Exception as exc:  # noqa: BLE001 - the sandbox would end the attempt with this reason
                reason = f'policy raised: {type(exc).__name__}: {exc}'
                break
            command(names.POLICY_COMMAND, tx, ty)
            commanded = (min(max(tx, 0.0), pusht.WORKSPACE_SIZE), min(max(ty, 0.0), pusht.WORKSPACE_SIZE))
            command(names.CELL_COMMAND, *commanded)
            sim.step(commanded)
            tick[0] += 1
            steps = step + 1
            frames, maps = publish_state()
            if pusht.is_success(sim.coverage()):
                break
        cov = float(sim.coverage())
        success = pusht.is_success(cov)
        verdict = T['enpire_interfaces/msg/FusedVerdict'](
            header=_header(store, now() + 2_000_000),
            task='pusht',
            state=0 if success else 1,
            success=success,
            score=cov,
            confidence=1.0,
            rule='sim',
            reason='success' if success else (reason or 'coverage below bar'),
            cameras=[],
            evidence_path='',
        )
        bag.write_msg(bag.topic('trial/verdicts'), verdict, now() + 2_000_000)
        event(
            'attempt_verified',
            attempt,
            cov,
            offset_ns=3_000_000,
            success=success,
            steps=steps,
            reason=verdict.reason,
        )
        out['scores'].append(cov)
        out['steps'] += steps
        if success:
            out['success'], out['success_attempt'] = True, attempt
            break
        report = AttemptReport(
            attempt=attempt,
            score=cov,
            success=False,
            reason=verdict.reason,
            steps=steps,
            previous=list(previous),
        )
        previous.append(report)
        try:
            policy.on_attempt_failed(report)
        except Exception:  # noqa: BLE001
            pass
    event('finished', len(out['scores']), max(out['scores']), offset_ns=4_000_000, success=out['success'])
    bag.close(
        'finished',
        {'success': out['success'], 'attempts_used': len(out['scores']), 'attempt_scores': out['scores']},
    )
    return out


def record_rollouts(code: str, seeds, bag_root: str | Path, **kw) -> list[dict]:
    """`record_rollout` for each seed (the policy class is loaded once)."""
    from enpire_agents.local_eval import load_policy_class

    cls = load_policy_class(code)
    return [record_rollout(code, int(s), bag_root, policy_cls=cls, **kw) for s in seeds]


__all__ = ['record_rollout', 'record_rollouts', 'GT_TOPIC']
