"""The sim_cell node with the peg task (a self-rendering MuJoCo simulator) on a real graph: its three
cameras with CameraInfo and their poses on /tf_static in frame `world`, camera faults, and parity with
plain metaworld: the same layout and the same actions through the node give the same states."""
import os
import pickle
import threading
import time

import numpy as np
import pytest
from enpire_common import names
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage

from enpire_interfaces.msg import CellState, Command, GroundTruth, ObjectPose
from enpire_interfaces.srv import PlaceObjects

os.environ.setdefault('MUJOCO_GL', 'egl')
pytestmark = pytest.mark.graph
CAMERAS = ('mouth_left', 'mouth_right', 'behind_arm')
ENV = 'peg-insert-side-v3'


class PegProbe:
    """Keeps what a peg cell publishes, by topic; sends its commands and placements."""

    def __init__(self, ros_node, cell: str, cameras=True):
        self.ros, self.lock, node = ros_node, threading.Lock(), ros_node.node
        self.msgs: dict[str, list] = {}
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        topics = [(CellState, names.CELL_STATE, 50), (GroundTruth, names.GROUND_TRUTH, 1000),
                  (TFMessage, names.TF_STATIC, latched)]
        camera_qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.BEST_EFFORT)
        for cam in CAMERAS if cameras else ():
            topics += [(Image, names.camera_image(cam), camera_qos),
                       (CameraInfo, names.camera_info(cam), camera_qos)]
        self.subs = []
        for msg_type, name, qos in topics:
            self.msgs[name] = []
            topic = name if name.startswith('/') else names.cell_name(cell, name)
            self.subs.append(node.create_subscription(msg_type, topic, self._keep(name), qos))
        self.cmd = node.create_publisher(Command, names.cell_name(cell, names.CELL_COMMAND), 10)
        self.place = node.create_client(PlaceObjects, names.cell_name(cell, names.PLACE_OBJECTS))

    def _keep(self, name):
        def callback(msg):
            with self.lock:
                self.msgs[name].append(msg)
        return callback

    def wait_connected(self):
        self.ros.wait_for(lambda: all(s.get_publisher_count() > 0 for s in self.subs)
                          and self.cmd.get_subscription_count() > 0, 60, 'the peg cell topics')
        assert self.place.wait_for_service(timeout_sec=30)
        self.ros.wait_for(lambda: self.msgs[names.CELL_STATE], 30, 'a first cell state')

    def latest(self, name):
        with self.lock:
            return self.msgs[name][-1] if self.msgs[name] else None

    def send(self, values, frame='world'):
        msg = Command(values=[float(v) for v in values])
        msg.header.frame_id = frame
        self.cmd.publish(msg)

    def truth_of_step(self, step, timeout=30.0):
        def found():
            with self.lock:
                return next((m for m in reversed(self.msgs[names.GROUND_TRUTH]) if m.step == step), None)
        return self.ros.wait_for(found, timeout, f'the ground truth of step {step}')


def _start(node_processes, cell, *params):
    args = ['-m', 'enpire_sim.sim_cell_node', '--ros-args', '-r', f'__ns:=/{cell}',
            '-p', 'task:=peg_insertion']
    for p in params:
        args += ['-p', p]
    return node_processes.start(cell, args, env={'MUJOCO_GL': os.environ['MUJOCO_GL']})


def _image(msg):
    return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)


def test_the_peg_cell_publishes_three_cameras_their_calibration_and_poses(node_processes, ros_node):
    from enpire_task_peg.cell import PegCell
    from enpire_task_peg.distributions import HAND_START, sample_initial_state
    from enpire_task_peg.render import camera

    _start(node_processes, 'peg_a', 'initial_seed:=3',
           "camera_faults:='{mouth_left: {occlusion: 0.25}, behind_arm: {dropout: 1.0}}'")
    probe = PegProbe(ros_node, 'peg_a')
    probe.wait_connected()
    state = probe.latest(names.CELL_STATE)
    assert state.header.frame_id == 'world' and state.step == 0
    hand = (state.tool_pose.position.x, state.tool_pose.position.y, state.tool_pose.position.z)
    assert np.allclose(hand, HAND_START, atol=0.02)

    tf = ros_node.wait_for(lambda: probe.latest(names.TF_STATIC), 30, 'the cameras on /tf_static')
    poses = {t.child_frame_id: t for t in tf.transforms}
    assert set(poses) == {names.camera_frame(cam) for cam in CAMERAS}
    for cam in CAMERAS:
        transform = poses[names.camera_frame(cam)]
        assert transform.header.frame_id == 'world'
        t = transform.transform.translation
        assert np.allclose((t.x, t.y, t.z), camera(cam).position)

    seen = ('mouth_left', 'mouth_right')
    for cam in seen:
        ros_node.wait_for(lambda c=cam: (probe.latest(names.camera_image(c))
                                         and probe.latest(names.camera_info(c))),
                          60, f'a frame and CameraInfo of {cam}')
    local = PegCell()
    initial = sample_initial_state(3)
    local.place_objects(initial.scene(), initial.tool())
    for cam in seen:
        img, info = probe.latest(names.camera_image(cam)), probe.latest(names.camera_info(cam))
        assert (img.width, img.height, img.encoding) == (96, 96, 'rgb8')
        assert img.header.frame_id == info.header.frame_id == names.camera_frame(cam)
        assert np.allclose(np.array(info.k).reshape(3, 3), camera(cam).intrinsics(96, 96))
        frame, clean = _image(img), local.render(cam)
        if cam == 'mouth_left':         # the occlusion fault: a dark square over a quarter of the image
            assert np.all(frame[48, 48] == (30, 30, 30)) and np.all(frame[2, 2] == clean[2, 2])
        else:                           # the same scene as the simulator renders it here
            assert np.abs(frame.astype(int) - clean).mean() < 1.0
    local.close()
    assert not probe.msgs[names.camera_image('behind_arm')]       # dropped out, every frame


def _plain_state(env) -> np.ndarray:
    """The task-state vector read off plain metaworld (simulator.TASK_STATE's entries)."""
    return np.concatenate([env.get_endeff_pos(), [env._get_curr_obs_combined_no_goal()[3]],
                           env._get_pos_objects(), env._get_site_pos('pegHead'), env.data.body('box').xpos])


def test_the_same_layout_and_actions_give_the_same_states_as_plain_metaworld(node_processes, ros_node):
    """A metaworld seed's layout placed through the node, metaworld's scripted expert run on plain metaworld
    and its actions sent to the node one by one: every step's state equals plain metaworld's, bit for bit,
    and the cell's ground truth (the task's rule) agrees with metaworld's success."""
    import metaworld
    from enpire_task_peg.distributions import HAND_START
    from metaworld.policies.sawyer_peg_insertion_side_v3_policy import SawyerPegInsertionSideV3Policy

    _start(node_processes, 'peg_b', 'initial_seed:=1')
    probe = PegProbe(ros_node, 'peg_b', cameras=False)
    probe.wait_connected()

    mt1 = metaworld.MT1(ENV, seed=5)
    task = mt1.train_tasks[2]
    rand_vec = pickle.loads(task.data)['rand_vec']
    plain = mt1.train_classes[ENV]()
    plain.set_task(task)
    obs, _ = plain.reset()
    request = PlaceObjects.Request(objects=[ObjectPose(name='peg', pose=list(map(float, rand_vec[:3]))),
                                            ObjectPose(name='box', pose=list(map(float, rand_vec[3:])))],
                                   tool=list(HAND_START))
    placed = ros_node.call(probe.place, request)
    assert placed.success, placed.message
    placed_step = ros_node.wait_for(lambda: probe.latest(names.GROUND_TRUTH), 30, 'the placed state').step
    assert placed_step == 0
    assert np.array_equal(np.array(probe.latest(names.GROUND_TRUTH).task_state), _plain_state(plain))

    expert, successes, steps = SawyerPegInsertionSideV3Policy(), 0, 150
    t0 = time.monotonic()
    for step in range(1, steps + 1):
        action = np.clip(expert.get_action(obs), -1.0, 1.0)    # commands in the action bounds
        obs, _, _, _, info = plain.step(action)
        probe.send(action)
        truth = probe.truth_of_step(step)
        assert np.array_equal(np.array(truth.task_state), _plain_state(plain)), f'step {step} differs'
        assert truth.success == bool(info['success']), step
        successes += truth.success
    elapsed = time.monotonic() - t0
    plain.close()
    assert successes > 0, 'the expert never succeeded: parity was only seen on failures'
    print(f'{steps} lockstep steps through the node in {elapsed:.2f} s ({steps / elapsed:.0f} steps/s)')


def test_a_real_time_peg_cell_applies_a_displacement_once_then_holds(node_processes, ros_node):
    """Real-time pacing steps the cell on its own clock: a displacement command is applied on one tick, the
    ticks after it hold the hand (zero displacement, the gripper as commanded), never repeat the move."""
    _start(node_processes, 'peg_c', 'pacing:=real_time', 'placement_lockout_s:=0.0')
    probe = PegProbe(ros_node, 'peg_c', cameras=False)
    probe.wait_connected()

    def state_where(predicate, what):
        def found():
            with probe.lock:
                return next((m for m in probe.msgs[names.CELL_STATE] if predicate(m)), None)
        return ros_node.wait_for(found, 30, what)
    probe.send((1.0, 0.0, 0.0, 0.5))
    moved = state_where(lambda m: list(m.commanded) == [1.0, 0.0, 0.0, 0.5], 'the displacement applied')
    held = state_where(lambda m: m.step > moved.step and list(m.commanded) == [0.0, 0.0, 0.0, 0.5],
                       'the next tick holding')
    assert held.step == moved.step + 1
    with probe.lock:
        moves = [m for m in probe.msgs[names.CELL_STATE] if list(m.commanded)[:3] == [1.0, 0.0, 0.0]]
    assert len({m.step for m in moves}) == 1, 'the displacement was applied more than once'
