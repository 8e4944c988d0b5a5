"""Speed of the simulated cell: our env vs gym-pusht's (state observations) and the 3-camera render.

Run: `. ./env.sh && python bench/sim_speed.py [--steps N] [--rounds R]`. Both envs are made with
`gymnasium.make` (same wrappers), reset from the same seeds and driven by the same actions, in
interleaved rounds so machine load hits both alike; each figure is the median over rounds. Prints a
summary, then one JSON line: ours_steps_per_s, gym_pusht_steps_per_s, ratio, render_3cam_fps, ...
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings

import enpire_task_pusht.gym_env  # noqa: F401  (registers enpire/PushT-v0)
import gymnasium as gym
import numpy as np
from enpire_task_pusht.render import DEFAULT_CAMERAS, RenderState, render
from enpire_task_pusht.simulator import PushTSim


def actions_for(seed: int, n: int) -> np.ndarray:
    """Targets that wander around the table centre, so the agent touches the T some of the time."""
    rng = np.random.default_rng(seed)
    return np.clip(256 + np.cumsum(rng.normal(0, 25, size=(n, 2)), axis=0), 20, 492)


def steps_per_s(env, actions: np.ndarray, seed: int, episode: int = 300) -> float:
    env.reset(seed=seed)
    start = time.perf_counter()
    for i, action in enumerate(actions):
        if i and i % episode == 0:
            env.reset(seed=seed + i)
        env.step(action)
    return len(actions) / (time.perf_counter() - start)


def render_fps(frames: int) -> float:
    sim = PushTSim((220.0, 280.0, 0.7), (150.0, 150.0))
    states = []
    for i in range(frames):
        sim.step((150 + i % 200, 200 + (i * 3) % 150))
        states.append(RenderState.from_sim(sim))
    start = time.perf_counter()
    for state in states:
        for spec in DEFAULT_CAMERAS:
            render(state, spec)
    return frames / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=1500, help='env steps per env per round')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--frames', type=int, default=1000, help='3-camera renders per round')
    args = parser.parse_args(argv)
    warnings.filterwarnings('ignore')
    import gym_pusht  # noqa: F401  (registers gym_pusht/PushT-v0)

    ours = gym.make('enpire/PushT-v0', obs_type='state')
    ref = gym.make('gym_pusht/PushT-v0', obs_type='state')
    ours_rates, ref_rates, render_rates = [], [], []
    for r in range(args.rounds):
        actions = actions_for(r, args.steps)
        ref_rates.append(steps_per_s(ref, actions, seed=1000 * r))
        ours_rates.append(steps_per_s(ours, actions, seed=1000 * r))
        render_rates.append(render_fps(args.frames))
    result = {
        'ours_steps_per_s': round(statistics.median(ours_rates), 1),
        'gym_pusht_steps_per_s': round(statistics.median(ref_rates), 1),
        'ratio': round(statistics.median(o / g for o, g in zip(ours_rates, ref_rates, strict=True)), 2),
        'render_3cam_fps': round(statistics.median(render_rates), 1),
        'render_3cam_ms': round(1000.0 / statistics.median(render_rates), 3),
        'camera_resolutions': {s.name: [s.width, s.height] for s in DEFAULT_CAMERAS},
        'steps_per_round': args.steps,
        'rounds': args.rounds,
        'cpu_count': os.cpu_count(),
        'load_avg_1min': round(os.getloadavg()[0], 2),
    }
    print(f"ours {result['ours_steps_per_s']:.0f} steps/s vs gym-pusht {result['gym_pusht_steps_per_s']:.0f} "
          f"steps/s (state obs): ratio {result['ratio']:.2f}x (target >= 4)")
    print(f"3-camera 96x96 render: {result['render_3cam_fps']:.0f} fps ({result['render_3cam_ms']:.2f} ms); "
          f"8 cells x 10 Hz needs 80 fps, load avg {result['load_avg_1min']}")
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
