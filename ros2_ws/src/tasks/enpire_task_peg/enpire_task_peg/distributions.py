"""Initial states of the peg cell drawn from a seed (`Task.sample_initial_state`): the layout of peg and
box (see simulator.py for the ranges) and metaworld's hand start."""
from __future__ import annotations

from dataclasses import dataclass

from enpire_common.task import SceneObject

from enpire_task_peg.simulator import DISTRIBUTIONS, Layout, sample_layout

HAND_START = (0.0, 0.6, 0.2)    # SawyerPegInsertionSideEnvV3.hand_init_pos; its reset opens the gripper


@dataclass(frozen=True)
class PegInitialState:
    layout: Layout

    @property
    def seed(self) -> int | None:
        return self.layout.seed

    @property
    def distribution(self) -> str | None:
        return self.layout.distribution

    def scene(self) -> tuple[SceneObject, ...]:
        return SceneObject('peg', self.layout.peg), SceneObject('box', self.layout.box)

    def tool(self) -> tuple[float, ...]:
        return HAND_START


def sample_initial_state(seed: int, distribution: str | None = None) -> PegInitialState:
    return PegInitialState(sample_layout(seed, distribution or DISTRIBUTIONS[0]))
