"""Named, seeded distributions of Push-T initial states.

`sample_initial_state(seed, distribution)` is a pure function of its arguments (numpy `Generator`
seeded with `seed`), so a trial can be replayed from (seed, distribution) alone.

- `in_distribution`: gym-pusht's reset ranges, drawn in gym-pusht's order from the same generator
  gymnasium builds for `env.reset(seed=seed)` (PCG64 over `SeedSequence(seed)`). The state for a seed
  is therefore the one gym-pusht itself starts from: agent in [50, 450)^2 and block origin in
  [100, 400)^2 (integers, as gym-pusht draws them), angle uniform in [-pi, pi). A draw that no cell
  could be put into (the T through a wall, the agent inside the T: `placement_problem`) is followed by
  the next draws of the same generator until one is placeable; about 5% of seeds, the rest start
  exactly where gym-pusht starts.
- `out_of_distribution`: the block near a wall (its area centroid within 40-90 px of at least one
  wall, outside gym-pusht's [100, 400) band for that coordinate), any angle, the agent on the far side
  of the table from the block; rejected until the T lies fully inside the walls and clear of the agent.

The state is (block origin x, y, theta; agent x, y) in the 512x512 workspace, the frame of
`enpire_task_pusht.geometry` and of gym-pusht's `reset_to_state` (agent first there).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from enpire_task_pusht.geometry import (
    AGENT_RADIUS,
    T_CENTROID_LOCAL,
    WALL_INNER,
    WORKSPACE_SIZE,
    rotation,
    t_outline,
)

DISTRIBUTIONS = ('in_distribution', 'out_of_distribution')

# Inner faces of gym-pusht's walls (segments at 5 and 506, radius 2), with a margin so a placed T
# never starts in contact with a wall.
_INNER_MIN = 7.0 + 3.0
_INNER_MAX = 504.0 - 3.0
_OOD_WALL_BAND = (40.0, 90.0)   # distance of the T's area centroid from its nearest wall
_OOD_AGENT_CLEARANCE = 10.0      # free space between the agent disc and the T at the start
_MAX_TRIES = 10_000


@dataclass(frozen=True)
class InitialState:
    """Where a trial starts: block origin pose (x, y, theta) and agent position (x, y)."""

    block: tuple[float, float, float]
    agent: tuple[float, float]
    seed: int | None = None
    distribution: str | None = None

    def scene(self):
        """The task contract's view: one object, the T, as (x, y, theta) in the workspace frame."""
        from enpire_common.task import SceneObject
        return (SceneObject('block', tuple(float(v) for v in self.block)),)

    def tool(self) -> tuple[float, ...]:
        return tuple(float(v) for v in self.agent)

    def as_gym_state(self) -> list[float]:
        """The 5-vector gym-pusht's `reset_to_state` takes: [agent_x, agent_y, block_x, block_y, angle]."""
        return [*self.agent, *self.block]


def sample_initial_state(seed: int, distribution: str = 'in_distribution') -> InitialState:
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f'unknown Push-T distribution {distribution!r}; expected one of {DISTRIBUTIONS}')
    rng = np.random.default_rng(seed)
    if distribution == 'in_distribution':
        sample = _in_distribution(rng)
    else:
        sample = _out_of_distribution(rng)
    return InitialState(block=sample[0], agent=sample[1], seed=seed, distribution=distribution)


def placement_problem(block, agent) -> str | None:
    """Why a cell cannot be put into this state (None if it can): what mock hardware and resets check."""
    values = (*block, *agent)
    if not all(np.isfinite(v) for v in values):
        return 'non-finite pose'
    if not all(0.0 <= v <= WORKSPACE_SIZE for v in (*block[:2], *agent)):
        return f'position outside [0, {WORKSPACE_SIZE:.0f}]^2'
    outline = t_outline(block)
    if outline.min() < WALL_INNER[0] or outline.max() > WALL_INNER[1]:
        return 'the T would intersect the walls'
    lo, hi = WALL_INNER[0] + AGENT_RADIUS, WALL_INNER[1] - AGENT_RADIUS
    if not (lo <= agent[0] <= hi and lo <= agent[1] <= hi):
        return 'the agent would intersect the walls'
    if _distance_to_polygon(np.asarray(agent, dtype=float), outline) < AGENT_RADIUS:
        return 'the agent would overlap the T'
    return None


def _in_distribution(rng: np.random.Generator):
    for _ in range(_MAX_TRIES):
        # Same calls in the same order as gym-pusht's PushTEnv.reset.
        ax, ay = int(rng.integers(50, 450)), int(rng.integers(50, 450))
        bx, by = int(rng.integers(100, 400)), int(rng.integers(100, 400))
        theta = float(rng.uniform(-np.pi, np.pi))
        block, agent = (float(bx), float(by), theta), (float(ax), float(ay))
        if placement_problem(block, agent) is None:
            return block, agent
    raise RuntimeError('in_distribution sampling found no placeable state')  # pragma: no cover


def _out_of_distribution(rng: np.random.Generator):
    for _ in range(_MAX_TRIES):
        theta = float(rng.uniform(-np.pi, np.pi))
        # Centroid: one coordinate in a band next to a random wall, the other anywhere inside.
        axis = int(rng.integers(0, 2))
        near_low = bool(rng.integers(0, 2))
        offset = float(rng.uniform(*_OOD_WALL_BAND))
        centroid = np.empty(2)
        centroid[axis] = 7.0 + offset if near_low else 504.0 - offset
        centroid[1 - axis] = float(rng.uniform(60.0, WORKSPACE_SIZE - 60.0))
        origin = centroid - rotation(theta) @ T_CENTROID_LOCAL
        block = (float(origin[0]), float(origin[1]), theta)
        outline = t_outline(block)
        if outline.min() < _INNER_MIN or outline.max() > _INNER_MAX:
            continue
        # Agent on the far side: mirrored through the table centre, jittered.
        agent = WORKSPACE_SIZE - centroid + rng.uniform(-60.0, 60.0, size=2)
        if agent.min() < 50.0 or agent.max() > WORKSPACE_SIZE - 50.0:
            continue
        if _distance_to_polygon(agent, outline) < AGENT_RADIUS + _OOD_AGENT_CLEARANCE:
            continue
        return block, (float(agent[0]), float(agent[1]))
    raise RuntimeError('out_of_distribution sampling found no valid state')  # pragma: no cover


def _distance_to_polygon(point: np.ndarray, polygon: np.ndarray) -> float:
    """Distance from a point to a closed polygon's boundary, negative inside (even-odd rule)."""
    a = polygon
    b = np.roll(polygon, -1, axis=0)
    ab = b - a
    t = np.clip(np.einsum('ij,ij->i', point - a, ab) / np.einsum('ij,ij->i', ab, ab), 0.0, 1.0)
    dist = float(np.min(np.linalg.norm(a + t[:, None] * ab - point, axis=1)))
    crosses = (a[:, 1] > point[1]) != (b[:, 1] > point[1])
    with np.errstate(divide='ignore', invalid='ignore'):
        x_at = a[:, 0] + (point[1] - a[:, 1]) * ab[:, 0] / ab[:, 1]
    inside = bool(np.count_nonzero(crosses & (point[0] < x_at)) % 2)
    return -dist if inside else dist
