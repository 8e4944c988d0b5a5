"""The peg cell's node parameters beside the bringup file's (enpire_bringup `sim_cells`, run with task
peg_insertion): the nodes that read cameras read this cell's three, and the trial server tells the policy
the task's control rate. For `enpire_common.cells.simulated_cells(..., parameters=node_parameters())`."""
from __future__ import annotations

from enpire_task_peg.render import CAMERA_NAMES
from enpire_task_peg.simulator import CONTROL_HZ


def node_parameters(trial_server: dict | None = None, recorder: dict | None = None) -> dict[str, dict]:
    """Per node name: the peg cell's parameters, with the run's own for the trial server and the recorder."""
    cameras = list(CAMERA_NAMES)
    return {'verify': {'cameras': cameras},
            'recorder': {'cameras': cameras, **(recorder or {})},
            'trial_server': {'cameras': cameras, 'control_hz': CONTROL_HZ, **(trial_server or {})}}


__all__ = ['node_parameters']
