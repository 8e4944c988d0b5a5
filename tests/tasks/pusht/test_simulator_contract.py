"""Push-T's simulator as the generic sim cell drives it: the CellSimulator protocol through the registry."""
import math

from enpire_common import task_registry
from enpire_common.task import SceneObject

from enpire_sim.simulator import CellSimulator


def test_the_registered_simulator_places_the_sampled_scene_and_reports_its_task_state():
    task = task_registry.get('pusht')
    sim = task.load('simulator')()
    assert isinstance(sim, CellSimulator)
    initial = task.load('sample_initial_state')(7, task.distributions[1])
    assert sim.placement_problem(initial.scene(), initial.tool()) is None
    sim.place_objects(initial.scene(), initial.tool())
    assert sim.task_state() == initial.block and sim.tool_position == initial.agent and sim.step_count == 0
    assert len(sim.task_state()) == len(task.task_state)
    sim.step((256.0, 256.0))
    assert sim.step_count == 1 and sim.target == (256.0, 256.0)
    score, success = task.load('success_rule')(sim.task_state())
    assert 0.0 <= score <= 1.0 and success is False


def test_placements_the_cell_cannot_take_are_refused_with_a_reason():
    sim = task_registry.get('pusht').load('simulator')()
    block = SceneObject('block', (256.0, 256.0, math.pi / 4))
    assert 'block' in sim.placement_problem((SceneObject('cube', (1.0, 2.0, 0.0)),), (80.0, 80.0))
    assert sim.placement_problem((block,), (80.0, 80.0, 0.0))
    assert 'overlap' in sim.placement_problem((block,), (256.0, 270.0))
    assert 'walls' in sim.placement_problem((SceneObject('block', (20.0, 256.0, 0.0)),), (300.0, 400.0))
