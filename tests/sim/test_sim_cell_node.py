"""The sim_cell node on a real graph: lockstep stepping, matched stamps, bad input, placement, faults."""
import math
import threading

import numpy as np
import pytest
from enpire_common import names
from enpire_task_pusht.render import PALETTE, project
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from enpire_interfaces.msg import CellState, Command, GroundTruth, ObjectPose, TableHomography
from enpire_interfaces.srv import PlaceObjects

pytestmark = pytest.mark.graph
CAMERAS = ('top', 'oblique', 'wrist')


class CellProbe:
    """Subscribes to everything a cell publishes and keeps it, keyed by topic."""

    def __init__(self, ros_node, cell: str):
        self.ros, self.cell, self.lock = ros_node, cell, threading.Lock()
        node = ros_node.node
        self.msgs: dict[str, list] = {}
        self.subs = []
        topics = [(CellState, names.CELL_STATE), (GroundTruth, names.GROUND_TRUTH)]
        for cam in CAMERAS:
            topics += [(Image, names.camera_image(cam)), (CameraInfo, names.camera_info(cam)),
                       (TableHomography, names.camera_homography(cam))]
        camera_qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.BEST_EFFORT)   # as the sim offers
        for msg_type, name in topics:
            self.msgs[name] = []
            self.subs.append(node.create_subscription(msg_type, names.cell_name(cell, name), self._keep(name),
                                                      camera_qos if name.startswith('cameras/') else 50))
        self.cmd = node.create_publisher(Command, names.cell_name(cell, names.CELL_COMMAND), 10)
        self.place = node.create_client(PlaceObjects, names.cell_name(cell, names.PLACE_OBJECTS))
        self.params = node.create_client(SetParameters, f'/{cell}/sim_cell/set_parameters')

    def _keep(self, name):
        def callback(msg):
            with self.lock:
                self.msgs[name].append(msg)
        return callback

    def wait_connected(self):
        self.ros.wait_for(lambda: all(s.get_publisher_count() > 0 for s in self.subs)
                          and self.cmd.get_subscription_count() > 0, 20, 'the sim_cell topics')
        assert self.place.wait_for_service(timeout_sec=20)
        self.ros.wait_for(lambda: self.msgs[names.CELL_STATE], 10, 'a first cell state')

    def send(self, x, y, frame='table', values=None):
        msg = Command(values=[float(x), float(y)] if values is None else list(values))
        msg.header.frame_id = frame
        self.cmd.publish(msg)

    def latest(self, name):
        with self.lock:
            return self.msgs[name][-1] if self.msgs[name] else None

    def of_stamp(self, name, stamp):
        with self.lock:
            return [m for m in self.msgs[name] if m.header.stamp == stamp]

    def wait_state(self, predicate, what):
        def found():
            with self.lock:
                return next((m for m in reversed(self.msgs[names.CELL_STATE]) if predicate(m)), None)
        return self.ros.wait_for(found, 10, what)

    def call_place(self, block, agent, name='block'):
        req = PlaceObjects.Request(objects=[ObjectPose(name=name, pose=list(block))], tool=list(agent))
        return self.ros.call(self.place, req)

    def set_faults(self, text):
        value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=text)
        req = SetParameters.Request(parameters=[Parameter(name='camera_faults', value=value)])
        assert self.params.wait_for_service(timeout_sec=10)
        return self.ros.call(self.params, req).results[0]


def _start(node_processes, cell, *params):
    args = ['-m', 'enpire_sim.sim_cell_node', '--ros-args', '-r', f'__ns:=/{cell}', '-p', 'task:=pusht']
    for p in params:
        args += ['-p', p]
    return node_processes.start(cell, args)


def _image(msg):
    return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)


def test_lockstep_commands_stamps_and_bad_input(node_processes, ros_node):
    _start(node_processes, 'cell_a', 'initial_seed:=3')
    probe = CellProbe(ros_node, 'cell_a')
    probe.wait_connected()
    start = probe.latest(names.CELL_STATE)
    assert start.step == 0 and start.header.frame_id == 'table'

    probe.send(256.0, 256.0)
    state = probe.wait_state(lambda m: m.step == 1, 'step 1')
    assert list(state.commanded) == [256.0, 256.0] and not state.joints.name and not state.task_state
    stamp = state.header.stamp
    t0 = start.header.stamp.sec + start.header.stamp.nanosec * 1e-9
    assert stamp.sec + stamp.nanosec * 1e-9 - t0 == pytest.approx(0.1, abs=1e-6)  # sim clock: 0.1 s a step
    # Every camera's frame, info and homography of that step, and the ground truth, carry its stamp.
    for cam in CAMERAS:
        for name in (names.camera_image(cam), names.camera_info(cam), names.camera_homography(cam)):
            ros_node.wait_for(lambda n=name: probe.of_stamp(n, stamp), 10, f'{name} of step 1')
        img_msg = probe.of_stamp(names.camera_image(cam), stamp)[0]
        assert img_msg.header.frame_id == names.camera_frame(cam) and img_msg.encoding == 'rgb8'
        h = np.array(probe.of_stamp(names.camera_homography(cam), stamp)[0].table_to_image).reshape(3, 3)
        agent = np.array([[state.tool_pose.position.x, state.tool_pose.position.y]])
        u, v = np.rint(project(h, agent)[0]).astype(int)
        assert tuple(_image(img_msg)[v, u]) == PALETTE['agent'], cam
    truth = ros_node.wait_for(lambda: probe.of_stamp(names.GROUND_TRUTH, stamp), 10, 'ground truth')[0]
    assert truth.step == 1 and 0.0 <= truth.score <= 1.0 and len(truth.task_state) == 3

    # Bad commands never step the sim and never kill the node.
    probe.send(float('nan'), 10.0)
    probe.send(600.0, 10.0)
    probe.send(10.0, 10.0, frame='map')
    probe.send(float('inf'), 10.0)
    probe.send(0, 0, values=(10.0, 10.0, 0.0))
    probe.send(100.0, 120.0)
    state = probe.wait_state(lambda m: list(m.commanded) == [100.0, 120.0], 'the good one after the bad ones')
    assert state.step == 2
    with probe.lock:
        assert max(m.step for m in probe.msgs[names.CELL_STATE]) == 2
    ros_node.wait_for(lambda: 'rejected command' in node_processes.log('cell_a'), 30, 'the rejection log')
    assert node_processes.procs[0][1].poll() is None


def test_placement_service_and_camera_faults(node_processes, ros_node):
    _start(node_processes, 'cell_b')
    probe = CellProbe(ros_node, 'cell_b')
    probe.wait_connected()
    probe.send(200.0, 200.0)
    probe.wait_state(lambda m: m.step == 1, 'step 1')

    ok = probe.call_place((256.0, 256.0, math.pi / 4), (80.0, 80.0))
    assert ok.success, ok.message
    truth = ros_node.wait_for(lambda: next((m for m in probe.msgs[names.GROUND_TRUTH] if m.step == 0
                                            and m.tool[0] == 80.0), None), 10, 'placed ground truth')
    placed = tuple(truth.task_state)
    assert placed == pytest.approx((256, 256, math.pi / 4), abs=1e-6)
    assert truth.score == pytest.approx(1.0) and truth.success
    for block, agent, why in [((float('nan'), 1.0, 0.0), (80.0, 80.0), 'non-finite'),
                              ((256.0, 256.0, 0.0), (900.0, 80.0), 'outside'),
                              ((20.0, 256.0, 0.0), (300.0, 400.0), 'walls'),
                              ((256.0, 256.0, 0.0), (256.0, 270.0), 'overlap')]:
        bad = probe.call_place(block, agent)
        assert not bad.success and why in bad.message, bad.message
    for block, agent, name, why in [((256.0, 256.0), (80.0, 80.0), 'block', "got ['block'(2)]"),
                                    ((256.0, 256.0, 0.0), (80.0, 80.0), 'ball', "got ['ball'(3)]"),
                                    ((256.0, 256.0, 0.0), (80.0, 80.0, 0.0), 'block', 'got 3')]:
        bad = probe.call_place(block, agent, name)
        assert not bad.success and why in bad.message, bad.message

    # Faults switched on at run time: top drops every frame, oblique goes stale.
    result = probe.set_faults('{top: {dropout: 1.0}, oblique: {stale: true}}')
    assert result.successful, result.reason
    assert not probe.set_faults('{nosuchcam: {dropout: 1.0}}').successful
    for i in range(3):
        probe.send(100.0 + 10 * i, 100.0)
    last = probe.wait_state(lambda m: m.step == 3, 'three more steps')
    stamp = last.header.stamp
    ros_node.wait_for(lambda: probe.of_stamp(names.camera_image('wrist'), stamp), 10, 'wrist frame')
    assert not probe.of_stamp(names.camera_image('top'), stamp)
    # The stale camera keeps sending its frozen frame with the stamp of its capture, never the current one.
    ros_node.wait_for(lambda: len(probe.msgs[names.camera_image('oblique')]) >= 4, 10, 'stale oblique frames')
    with probe.lock:
        recent = probe.msgs[names.camera_image('oblique')][-3:]
    oblique = [_image(m) for m in recent]
    assert all(np.array_equal(oblique[0], o) for o in oblique[1:])  # the agent moved, the image did not
    assert all(m.header.stamp == recent[0].header.stamp for m in recent)
    assert not probe.of_stamp(names.camera_image('oblique'), stamp)


def test_real_time_pacing_steps_at_10_hz(node_processes, ros_node):
    _start(node_processes, 'cell_c', 'pacing:=real_time')
    probe = CellProbe(ros_node, 'cell_c')
    probe.wait_connected()
    probe.send(300.0, 300.0)
    first = probe.wait_state(lambda m: list(m.commanded) == [300.0, 300.0], 'the command taken up')
    import time
    time.sleep(1.0)
    last = probe.latest(names.CELL_STATE)
    assert 6 <= last.step - first.step <= 13  # about 10 steps in a second of wall clock
    assert math.hypot(last.tool_pose.position.x - 300.0, last.tool_pose.position.y - 300.0) < 5.0


@pytest.mark.parametrize('param, expected', [
    ('task:=nosuchtask', "unknown task 'nosuchtask'; known tasks: "),
    ('initial_distribution:=nowhere', "unknown pusht distribution 'nowhere'"),
])
def test_an_unknown_task_or_distribution_is_refused_at_start_with_a_clear_error(node_processes, param,
                                                                               expected):
    proc = _start(node_processes, 'cell_bad', param)
    proc.wait(timeout=60)
    log = node_processes.log('cell_bad')
    assert proc.returncode != 0 and expected in log, log[-2000:]
    if param.startswith('task'):
        assert 'pusht' in log.split(expected, 1)[1].splitlines()[0]   # the error lists the installed tasks


def test_an_empty_task_is_refused_where_several_tasks_are_installed(node_processes):
    """'' names the one installed task only where there is one; with Push-T and peg insertion installed
    the node asks for a name (bringup files always give one)."""
    from enpire_common import task_registry
    assert {'pusht', 'peg_insertion'} <= set(task_registry.names())
    with pytest.raises(task_registry.UnknownTask, match='name the task'):
        task_registry.sole()
    proc = node_processes.start('cell_unnamed', ['-m', 'enpire_sim.sim_cell_node', '--ros-args',
                                                 '-r', '__ns:=/cell_unnamed'])
    assert proc.wait(timeout=60) != 0
    assert 'name the task (parameter `task`)' in node_processes.log('cell_unnamed')
