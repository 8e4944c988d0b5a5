"""Peg insertion: the fused camera verdict against metaworld's own success rule.

States come from metaworld's scripted expert (SawyerPegInsertionSideV3Policy) on seeded layouts, and from
perturbations of its successful states: the peg pulled back out through the window's edge at random speeds
with small sideways and vertical jitter, and random actions. Every state is rendered by the cell's three
cameras at 96 px; each camera judges alone and measures the peg in its image, the fusion locates the head
in 3-D from the calibrated views' measurements (`verification/locate.py`). Counted:

- false_successes_strict: fused SUCCESS where metaworld's rule says no (must be 0);
- false_successes_strict_degraded: the same with one camera dropped, or its view of the box occluded, each
  camera in turn (must be 0);
- recall_clear: clear successes (metaworld's scaled distance <= 0.05, 2 cm inside the 0.07 window) judged
  SUCCESS; recall_all over every success beside it;
- near_edge states: |distance - 0.07| <= 0.02;
- clear_missed_by: the fused verdict's reasons on the clear successes it missed.

128 and 480 px run on a subset beside it. Prints one JSON line at the end.

    python bench/peg_verification.py [--states 3000] [--seed 0] [--subset 300] [--sizes 128 480]
"""
from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault('MUJOCO_GL', 'egl')

import numpy as np  # noqa: E402
from enpire_task_peg.render import CAMERAS, CellCameras  # noqa: E402
from enpire_task_peg.simulator import BOX, PEG_HEAD, PegSimulator, obj_to_target, sample_layout  # noqa: E402
from enpire_task_peg.verification.fuse import fuse_peg  # noqa: E402
from enpire_task_peg.verification.judge import judge_frame  # noqa: E402
from enpire_task_peg.verification.locate import View  # noqa: E402
from metaworld.policies.sawyer_peg_insertion_side_v3_policy import SawyerPegInsertionSideV3Policy  # noqa: E402

from enpire_env.verification.models import VerdictState  # noqa: E402

CLEAR = 0.05
EDGE_BAND = 0.02
RADIUS = 0.07


def states(n_states: int, seed: int):
    """(simulator snapshot, kind) for n_states states: expert trajectories and perturbations near success."""
    sim = PegSimulator()
    rng = np.random.default_rng(seed)
    out = []
    layout_seed = 10_000 * (seed + 1)
    while len(out) < n_states:
        layout_seed += 1
        obs = sim.reset(sample_layout(layout_seed))
        expert = SawyerPegInsertionSideV3Policy()
        successes = []
        for step in range(220):
            obs, info = sim.step(expert.get_action(obs))
            if step % 6 == 0:
                out.append((sim.snapshot(), 'expert'))
            if info['success']:
                successes.append(sim.snapshot())
        # the first success (the head just in) and a few later ones (pushed deeper)
        picks = [0, *rng.choice(len(successes), min(len(successes), 3), replace=False)] if successes else []
        for start in (successes[i] for i in picks):
            sim.restore(start)
            speed = rng.uniform(0.05, 0.5)
            jitter = rng.normal(0.0, 0.15, 2)
            for _ in range(min(60, 499 - sim.steps)):
                # back out along +x, gripper closed on the peg, small sideways/vertical drift
                sim.step(np.array([speed, jitter[0], jitter[1], 0.6]) + rng.normal(0, 0.05, 4))
                out.append((sim.snapshot(), 'pull_back'))
            sim.restore(start)
            for step in range(min(30, 499 - sim.steps)):
                sim.step(rng.uniform(-1, 1, 4))
                if step % 3 == 0:
                    out.append((sim.snapshot(), 'random'))
    rng.shuffle(out)
    return sim, out[:n_states]


def occlude(frame: np.ndarray, rng) -> np.ndarray:
    """A grey occluder (a lab's cable, a person's arm) over a random half of the frame's middle."""
    out = frame.copy()
    h, w = frame.shape[:2]
    x0, y0 = rng.integers(0, w // 2), rng.integers(0, h // 2)
    out[y0:y0 + h // 2, x0:x0 + w // 2] = (110, 110, 115)
    return out


def judge_all(frames: dict, box) -> dict:
    return {c.name: judge_frame(frames.get(c.name), c, box) for c in CAMERAS}


def fused(judged, views, box):
    return fuse_peg(judged.values(), expected=[c.name for c in CAMERAS], views=views, box=box)


def run(sim, snapshots, size: int, degraded: bool, seed: int) -> dict:
    cams = CellCameras(sim.model, size, size)
    views = {name: View.from_camera_info(cams.camera_info(name)) for name in cams.names}
    rng = np.random.default_rng(seed + size)
    n = false_strict = false_degraded = clear = clear_hit = succ = succ_hit = edge = 0
    uncertain = 0
    latencies, render_s = [], 0.0
    kinds, missed = {}, {}
    for snapshot, kind in snapshots:
        sim.restore(snapshot)
        state = sim.task_state()
        distance = obj_to_target(state[PEG_HEAD], state[BOX])
        truth = distance <= RADIUS
        t0 = time.perf_counter()
        frames = cams.render_all(sim.data)
        render_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        judged = judge_all(frames, state[BOX])
        verdict = fused(judged, views, state[BOX])
        latencies.append((time.perf_counter() - t0) * 1e3)
        said = verdict.state == VerdictState.SUCCESS
        n += 1
        kinds[kind] = kinds.get(kind, 0) + 1
        edge += abs(distance - RADIUS) <= EDGE_BAND
        uncertain += verdict.state == VerdictState.UNCERTAIN
        false_strict += said and not truth
        if truth:
            succ += 1
            succ_hit += said
            if distance <= CLEAR:
                clear += 1
                clear_hit += said
                if not said:
                    missed[verdict.reason] = missed.get(verdict.reason, 0) + 1
        if degraded:
            for camera in CAMERAS:
                dropped = {k: v for k, v in judged.items() if k != camera.name}
                occluded = dict(judged, **{camera.name: judge_frame(occlude(frames[camera.name], rng), camera,
                                                                     state[BOX])})
                for variant in (dropped, occluded):
                    f = fused(variant, views, state[BOX])
                    false_degraded += f.state == VerdictState.SUCCESS and not truth
    cams.close()
    return dict(n_states=n, near_edge=int(edge), successes=succ, clear_successes=clear, kinds=kinds,
                false_successes_strict=int(false_strict),
                false_successes_strict_degraded=int(false_degraded) if degraded else None,
                recall_clear=round(clear_hit / clear, 4) if clear else None,
                recall_all=round(succ_hit / succ, 4) if succ else None,
                uncertain_rate=round(uncertain / n, 4),
                clear_missed_by=dict(sorted(missed.items(), key=lambda kv: -kv[1])[:5]),
                p95_latency_ms=round(float(np.percentile(latencies, 95)), 3),
                render_fps_3cams=round(n / render_s, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--states', type=int, default=3000)
    parser.add_argument('--subset', type=int, default=300, help='states for the 128 and 480 px runs')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--sizes', type=int, nargs='*', default=[128, 480], help='image sizes beside 96 px')
    args = parser.parse_args()
    t0 = time.perf_counter()
    sim, snapshots = states(args.states, args.seed)
    t_states = time.perf_counter() - t0
    steps = 0
    t1 = time.perf_counter()
    sim.reset(sample_layout(1))
    for _ in range(400):
        sim.step(np.zeros(4))
        steps += 1
    sim_steps_per_s = steps / (time.perf_counter() - t1)
    main_run = run(sim, snapshots, 96, degraded=True, seed=args.seed)
    print(json.dumps({'size': 96, **main_run}), flush=True)
    beside = {}
    for size in args.sizes:
        beside[size] = run(sim, snapshots[:args.subset], size, degraded=False, seed=args.seed)
        print(json.dumps({'size': size, **beside[size]}), flush=True)
    sim.close()
    result = {
        'n_states': main_run['n_states'], 'near_edge': main_run['near_edge'],
        'false_successes_strict': main_run['false_successes_strict'],
        'false_successes_strict_degraded': main_run['false_successes_strict_degraded'],
        'recall_clear': main_run['recall_clear'], 'recall_all': main_run['recall_all'],
        'p95_latency_ms': main_run['p95_latency_ms'], 'cameras': len(CAMERAS), 'image_px': 96,
        'render_fps_3cams': main_run['render_fps_3cams'], 'sim_steps_per_s': round(sim_steps_per_s, 1),
        **{f'{key}_{size}px': beside[size][key] for size in beside
           for key in ('n_states', 'false_successes_strict', 'recall_clear', 'p95_latency_ms',
                       'render_fps_3cams')},
        'state_generation_s': round(t_states, 1), 'wall_s': round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(result))


if __name__ == '__main__':
    main()
