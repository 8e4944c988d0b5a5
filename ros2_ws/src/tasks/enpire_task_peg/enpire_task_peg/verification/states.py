"""States of the peg cell where a verdict is decided, for the verification bench and the detector's dataset:
metaworld's scripted expert on seeded layouts, and perturbations of its successful states around the
success window. Pure: metaworld's physics, no rendering, no rclpy."""
from __future__ import annotations

import numpy as np
from metaworld.policies.sawyer_peg_insertion_side_v3_policy import SawyerPegInsertionSideV3Policy

from enpire_task_peg.simulator import PegSimulator, sample_layout


def states(n_states: int, seed: int):
    """(simulator snapshot, kind) for n_states states from about n_states / 140 seeded layouts: the expert's
    trajectory, and from two of its successful states (the first, where the head is just in, and a later
    one) the peg pulled back out through the window's edge, held in the hole under small random pushes
    with the gripper closed (the clear successes), and random actions."""
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
            if step % 10 == 0:
                out.append((sim.snapshot(), 'expert'))
            if info['success']:
                successes.append(sim.snapshot())
        picks = [0, int(rng.integers(len(successes)))] if successes else []
        for start in (successes[i] for i in picks):
            sim.restore(start)
            speed = rng.uniform(0.05, 0.5)
            jitter = rng.normal(0.0, 0.15, 2)
            for step in range(min(60, 499 - sim.steps)):
                # back out along +x, gripper closed on the peg, small sideways/vertical drift
                sim.step(np.array([speed, jitter[0], jitter[1], 0.6]) + rng.normal(0, 0.05, 4))
                if step % 2 == 0:
                    out.append((sim.snapshot(), 'pull_back'))
            sim.restore(start)
            push = rng.uniform(-0.4, 0.1)
            for step in range(min(40, 499 - sim.steps)):
                # held in the hole: small pushes in and out, sideways and up/down, the gripper closed
                sim.step(np.array([push, 0.0, 0.0, rng.uniform(0.5, 1.0)]) + np.r_[rng.normal(0, 0.3, 3), 0])
                if step % 2 == 0:
                    out.append((sim.snapshot(), 'held'))
            sim.restore(start)
            for step in range(min(30, 499 - sim.steps)):
                sim.step(rng.uniform(-1, 1, 4))
                if step % 3 == 0:
                    out.append((sim.snapshot(), 'random'))
    rng.shuffle(out)
    return sim, out[:n_states]
