"""Peg insertion: the fused camera verdict against metaworld's own success rule, through the verify node's
code path.

States (`enpire_task_peg.verification.states`) come from metaworld's scripted expert on seeded layouts and
from perturbations of its successful states: the peg pulled back out through the window's edge, held in
the hole under small pushes (the clear successes), and random actions. Every state is rendered by the
cell's three cameras; the frames go to `Verifier.verify_frames` as the verify node hands them over: each
with its camera's calibrated model (CameraInfo K, the /tf_static pose) and the placed layout; the task's
judge (`PegJudge`) and fusion (`fuse_cameras`: the head located in 3-D from two or more views) decide.
Counted:

- false_successes_strict: fused SUCCESS where metaworld's rule says no (must be 0);
- false_successes_strict_degraded: the same with one camera dropped (no frame), or a grey occluder over a
  quarter of its frame, each camera in turn (must be 0); false_successes_by says where any came from.
  Only the changed camera is judged again (the others' judgements are the same: a judge sees its own frame
  only), then the task's fusion runs as verify_frames runs it. Only states metaworld's rule denies are
  varied: a variant of a success cannot be a false success;
- recall_clear: clear successes (metaworld's scaled distance <= 0.05, 2 cm inside the 0.07 window) judged
  SUCCESS; recall_all over every success beside it;
- near_edge states: |distance - 0.07| <= 0.02;
- clear_missed_by: the fused verdict's reasons on the clear successes it missed.

Other image sizes (--sizes) run on the first --subset states, with the degraded variants too
(--no-degraded-sizes leaves them out). --backend yolo_seg (with --yolo-weights) judges with the trained
YOLO-seg detector's peg masks. Prints one JSON line per size and a summary line at the end.

    python bench/peg_verification.py [--states 3000] [--seed 0] [--sizes 128 480] [--subset 300 [100]]
"""
from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault('MUJOCO_GL', 'egl')

import numpy as np  # noqa: E402
from enpire_task_peg.render import CAMERA_NAMES, CellCameras  # noqa: E402
from enpire_task_peg.simulator import BOX, PEG_HEAD, obj_to_target, sample_layout  # noqa: E402
from enpire_task_peg.task import TASK  # noqa: E402
from enpire_task_peg.verification.states import states  # noqa: E402

from enpire_env.verification import Frame, Verifier, load_config  # noqa: E402
from enpire_env.verification.models import VerdictState  # noqa: E402

CLEAR = 0.05
EDGE_BAND = 0.02
RADIUS = 0.07


def occlude(frame: np.ndarray, rng) -> np.ndarray:
    """A grey occluder (a lab's cable, a person's arm) over a random half of the frame's middle."""
    out = frame.copy()
    h, w = frame.shape[:2]
    x0, y0 = rng.integers(0, w // 2), rng.integers(0, h // 2)
    out[y0:y0 + h // 2, x0:x0 + w // 2] = (110, 110, 115)
    return out


def layout_of(sim) -> dict:
    """The scene as the reset placed it (what the verify node passes on from the reset)."""
    return {'peg': tuple(sim.layout.peg), 'box': tuple(sim.layout.box)}


def run(sim, snapshots, size: int, degraded: bool, seed: int, verifier: Verifier) -> dict:
    """Every state through the verify node's code path: `Verifier.verify_frames` on frames that carry their
    camera's calibrated model (CameraInfo K and the /tf_static pose) and the placed layout."""
    cams = CellCameras(sim.model, size, size)
    models = {name: cams.camera_model(name) for name in cams.names}
    rng = np.random.default_rng(seed + size)
    n = false_strict = false_degraded = clear = clear_hit = succ = succ_hit = edge = 0
    uncertain = 0
    latencies, render_s = [], 0.0
    kinds, missed, false_by = {}, {}, {}
    stamp = 100.0

    def verify(frames, layout):
        return verifier.verify_frames({k: Frame(v, None, stamp, models[k]) for k, v in frames.items()},
                                      cameras=CAMERA_NAMES, now=stamp, layout=layout)

    def degraded_verdicts(frames, judged, layout):
        """One camera dropped or occluded, each in turn: what verify_frames gives for those frames, with the
        other cameras' judgements reused (a judge sees only its own frame) and only the changed camera
        judged again, then the task's fusion over the cameras whose frames carry a model."""
        base = {name: j.judgement for name, j in judged.items()}
        for camera in CAMERA_NAMES:
            occluded = Frame(occlude(frames[camera], rng), None, stamp, models[camera], layout=layout)
            for how, frame in (('dropped', None), ('occluded', occluded)):
                variant = dict(base, **{camera: verifier.judge(camera, frame, now=stamp).judgement})
                cameras = {k: m for k, m in models.items() if frame is not None or k != camera}
                yield f'{how}:{camera}', verifier.fusion(list(variant.values()), expected=list(CAMERA_NAMES),
                                                         cameras=cameras, layout=layout)

    for snapshot, kind in snapshots:
        sim.restore(snapshot)
        state = sim.task_state()
        layout = layout_of(sim)
        distance = obj_to_target(state[PEG_HEAD], state[BOX])
        truth = distance <= RADIUS
        t0 = time.perf_counter()
        frames = cams.render_all(sim.data)
        render_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        verdict, judged = verify(frames, layout)
        latencies.append((time.perf_counter() - t0) * 1e3)
        said = verdict.state == VerdictState.SUCCESS
        n += 1
        kinds[kind] = kinds.get(kind, 0) + 1
        edge += abs(distance - RADIUS) <= EDGE_BAND
        uncertain += verdict.state == VerdictState.UNCERTAIN
        false_strict += said and not truth
        if said and not truth:
            false_by[f'full:{kind}'] = false_by.get(f'full:{kind}', 0) + 1
        if truth:
            succ += 1
            succ_hit += said
            if distance <= CLEAR:
                clear += 1
                clear_hit += said
                if not said:
                    missed[verdict.reason] = missed.get(verdict.reason, 0) + 1
        if degraded and not truth:
            for where, fused_variant in degraded_verdicts(frames, judged, layout):
                wrong = fused_variant.state == VerdictState.SUCCESS and not truth
                false_degraded += wrong
                if wrong:
                    false_by[where] = false_by.get(where, 0) + 1
    cams.close()
    return dict(n_states=n, near_edge=int(edge), successes=succ, clear_successes=clear, kinds=kinds,
                false_successes_strict=int(false_strict),
                false_successes_strict_degraded=int(false_degraded) if degraded else None,
                false_successes_by=false_by,
                recall_clear=round(clear_hit / clear, 4) if clear else None,
                recall_all=round(succ_hit / succ, 4) if succ else None,
                uncertain_rate=round(uncertain / n, 4),
                clear_missed_by=dict(sorted(missed.items(), key=lambda kv: -kv[1])[:5]),
                p95_latency_ms=round(float(np.percentile(latencies, 95)), 3),
                render_fps_3cams=round(n / render_s, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--states', type=int, default=3000)
    parser.add_argument('--subset', type=int, nargs='*', default=[300],
                        help='states for the runs of --sizes (one number for all, or one per size)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--sizes', type=int, nargs='*', default=[128, 480], help='image sizes beside 96 px')
    parser.add_argument('--backend', default='classical', help="the verifier's perception backend")
    parser.add_argument('--yolo-weights', default='', help='the yolo backend: its weights file')
    parser.add_argument('--no-degraded-sizes', action='store_true',
                        help='the runs of --sizes without the degraded variants (a camera dropped, occluded)')
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
    verifier = Verifier(TASK, load_config(TASK), backend=args.backend,
                        **({'yolo_weights': args.yolo_weights} if args.yolo_weights else {}))
    main_run = run(sim, snapshots, 96, degraded=True, seed=args.seed, verifier=verifier)
    print(json.dumps({'size': 96, **main_run}), flush=True)
    beside = {}
    subsets = dict(zip(args.sizes, args.subset * len(args.sizes) if len(args.subset) == 1 else args.subset,
                       strict=True))
    for size in args.sizes:
        beside[size] = run(sim, snapshots[:subsets[size]], size, degraded=not args.no_degraded_sizes,
                           seed=args.seed, verifier=verifier)
        print(json.dumps({'size': size, **beside[size]}), flush=True)
    sim.close()
    result = {
        'n_states': main_run['n_states'], 'near_edge': main_run['near_edge'],
        'false_successes_strict': main_run['false_successes_strict'],
        'false_successes_strict_degraded': main_run['false_successes_strict_degraded'],
        'recall_clear': main_run['recall_clear'], 'recall_all': main_run['recall_all'],
        'p95_latency_ms': main_run['p95_latency_ms'], 'cameras': len(CAMERA_NAMES), 'image_px': 96,
        'render_fps_3cams': main_run['render_fps_3cams'], 'sim_steps_per_s': round(sim_steps_per_s, 1),
        **{f'{key}_{size}px': beside[size][key] for size in beside
           for key in ('n_states', 'false_successes_strict', 'false_successes_strict_degraded',
                       'recall_clear', 'p95_latency_ms', 'render_fps_3cams')},
        'state_generation_s': round(t_states, 1), 'wall_s': round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(result))


if __name__ == '__main__':
    main()
