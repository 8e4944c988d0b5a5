"""Push-T on the generic interfaces, and back, with no loss (every float crosses unchanged).

- CellState: no joints; `tool_pose` = the pusher centre (x, y px, z 0, identity orientation);
  `tool_velocity.linear` = its velocity (px/s); `commanded` = the tracked target (target_x, target_y);
  `task_state` empty: the pusher measures nothing of the T.
- Command: `values` = (target_x, target_y) px in frame "table".
- GroundTruth: `task_state` = the T's origin pose (x, y, theta), `tool` = the pusher (x, y), `score` =
  coverage of the goal, `success` = coverage > 0.95 (gym-pusht's rule).
- PlaceObjects: one object, "block", pose (x, y, theta); `tool` = the pusher (x, y).
- ResetCell result: errors named `position_px`, `angle_rad`.
"""
from __future__ import annotations

from collections.abc import Sequence

from enpire_common import messages
from enpire_common.task import SceneObject

from enpire_task_pusht.geometry import is_success

BLOCK = 'block'
FRAME = 'table'
ERROR_NAMES = ('position_px', 'angle_rad')

Block = tuple[float, float, float]
XY = tuple[float, float]


def _xy(values, what: str) -> XY:
    v = messages.vector(values)
    if len(v) != 2:
        raise ValueError(f'{what}: expected 2 entries (x, y), got {len(v)}')
    return v  # type: ignore[return-value]


def _block(values, what: str = 'block pose') -> Block:
    v = messages.vector(values)
    if len(v) != 3:
        raise ValueError(f'{what}: expected 3 entries (x, y, theta), got {len(v)}')
    return v  # type: ignore[return-value]


# ------------------------------------------------------------------ scene placement
def scene(block: Sequence[float]) -> tuple[SceneObject, ...]:
    return (SceneObject(BLOCK, _block(block)),)


def block_of_scene(objects: Sequence[SceneObject]) -> Block:
    """The T's pose from a scene; a scene that is not exactly one "block" is refused with the reason."""
    found = [o.name for o in objects]
    if found != [BLOCK]:
        shown = ', '.join(repr(n[:32]) for n in found[:3]) + (', ...' if len(found) > 3 else '')
        raise ValueError(f'Push-T places exactly one object named {BLOCK!r}, got {len(found)}: [{shown}]')
    return _block(objects[0].pose)


def place_request(block: Sequence[float], agent: Sequence[float]):
    from enpire_interfaces.srv import PlaceObjects
    return PlaceObjects.Request(objects=messages.object_poses(scene(block)),
                                tool=messages.floats(_xy(agent, 'tool')))


def placement_of(request) -> tuple[Block, XY]:
    """(block, agent) of a PlaceObjects request; ValueError with the reason when it is not Push-T's."""
    return block_of_scene(messages.scene_objects(request.objects)), _xy(request.tool, 'tool')


# ------------------------------------------------------------------ cell state and commands
def cell_state(step: int, agent: Sequence[float], velocity: Sequence[float], target: Sequence[float],
               stamp=None):
    from enpire_interfaces.msg import CellState
    state = CellState(step=int(step), commanded=messages.floats(_xy(target, 'commanded')))
    state.header.frame_id = FRAME
    if stamp is not None:
        state.header.stamp = stamp
    messages.set_tool(state, (*_xy(agent, 'agent'), 0.0), (*_xy(velocity, 'velocity'), 0.0))
    return state


def agent_of(state) -> XY:
    return messages.tool_position(state)[:2]  # type: ignore[return-value]


def velocity_of(state) -> XY:
    return messages.tool_velocity(state)[:2]  # type: ignore[return-value]


def target_of(state) -> XY:
    return _xy(state.commanded, 'commanded')


def command(target: Sequence[float], stamp=None):
    return messages.command(_xy(target, 'target'), FRAME, stamp)


def target_of_command(msg) -> XY:
    return _xy(msg.values, 'command')


# ------------------------------------------------------------------ ground truth
def ground_truth(step: int, block: Sequence[float], agent: Sequence[float], coverage: float, header=None):
    from enpire_interfaces.msg import GroundTruth
    truth = GroundTruth(step=int(step), task_state=messages.floats(_block(block)),
                        tool=messages.floats(_xy(agent, 'agent')), score=float(coverage),
                        success=bool(is_success(float(coverage))))
    if header is not None:
        truth.header = header
    return truth


def truth_of(msg) -> tuple[Block, XY, float]:
    """(block, agent, coverage) of a GroundTruth."""
    block = _block(msg.task_state, 'ground truth task state')
    return block, _xy(msg.tool, 'ground truth tool'), float(msg.score)

