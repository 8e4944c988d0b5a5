"""The trial the bringup tests run on their cells: a policy that steps right by 5 px, recorded."""
from __future__ import annotations

import hashlib
from pathlib import Path

MOVER = '''
class Policy:
    def reset(self, context):
        pass

    def act(self, observation):
        x, y = observation.agent_position
        return (min(float(x) + 5.0, 490.0), float(y))

    def on_attempt_failed(self, report):
        pass
'''


def mover_goal(folder: Path, seed: int):
    """A recorded one-attempt, ten-step Push-T goal for the mover (written into `folder`)."""
    from enpire_interfaces.action import RunTrial

    policy = folder / 'mover.py'
    policy.write_text(MOVER)
    return RunTrial.Goal(task='pusht', policy_path=str(policy), policy_sha256=hashlib.sha256(
        MOVER.encode()).hexdigest(), seed=seed, distribution='in_distribution', attempts=1,
        steps_per_attempt=10, time_budget_s=0.0, record=True)
