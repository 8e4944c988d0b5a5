"""Real-robot adapters: pure mapping and image conversion; then each control interface against a mock
controller node that checks what it receives and closes the loop; and the camera relay on the graph."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
from enpire_bringup.adapters.image_convert import fill_rgb8, to_rgb8
from enpire_bringup.adapters.mapping import TableToRobot, gantry_joints, load_joint_map, twist_toward

from tests.enpire_bringup.mock_controller import MockController

NS = '/cell_0'


# ------------------------------------------------------------------------------------------- pure
def test_table_to_robot_round_trip_and_default_calibration():
    mapping = TableToRobot()
    assert mapping.to_robot(0, 0) == pytest.approx((0.3, 0.256, 0.02))
    assert mapping.to_robot(512, 512) == pytest.approx((0.812, -0.256, 0.02))
    for px in [(10.0, 20.0), (256.0, 256.0), (500.0, 3.0)]:
        x, y, _ = mapping.to_robot(*px)
        assert mapping.to_table(x, y) == pytest.approx(px)
    assert mapping.quaternion == pytest.approx((1.0, 0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match='singular'):
        TableToRobot(affine=[0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match='6 numbers'):
        TableToRobot(affine=[1, 2, 3])


def test_twist_toward_is_proportional_and_clipped():
    assert twist_toward((1.0, 0.0), (0.0, 0.0), gain=2.0, max_speed=0.25) == pytest.approx((0.25, 0.0))
    assert twist_toward((0.0, 0.05), (0.0, 0.0), gain=2.0, max_speed=0.25) == pytest.approx((0.0, 0.1))
    assert twist_toward((0.0, 0.0001), (0.0, 0.0), gain=2.0, max_speed=0.25, deadband=0.001) == (0.0, 0.0)


def test_joint_maps():
    assert gantry_joints(3)(0.1, 0.2, 0.3) == [0.1, 0.2, 0.3]
    assert load_joint_map('gantry', 2)(0.1, 0.2, 0.3) == [0.1, 0.2]
    assert load_joint_map('math:hypot', 2) is math.hypot
    with pytest.raises(ValueError):
        load_joint_map('nonsense', 2)


class FakeImage:
    def __init__(self, array, encoding, step=None, bigendian=0):
        self.height, self.width = array.shape[:2]
        self.encoding = encoding
        self.is_bigendian = bigendian
        row = array.reshape(self.height, -1).view(np.uint8)
        self.step = step or row.shape[1]
        padded = np.zeros((self.height, self.step), np.uint8)
        padded[:, :row.shape[1]] = row
        self.data = padded.tobytes()


def test_image_conversion_of_common_encodings():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (6, 5, 3), dtype=np.uint8)
    assert (to_rgb8(FakeImage(rgb, 'rgb8')) == rgb).all()
    assert (to_rgb8(FakeImage(rgb[:, :, ::-1].copy(), 'bgr8', step=20)) == rgb).all()   # padded rows
    bgra = np.concatenate([rgb[:, :, ::-1], np.full((6, 5, 1), 255, np.uint8)], axis=2)
    assert (to_rgb8(FakeImage(bgra, 'bgra8')) == rgb).all()
    mono = rgb[:, :, 0].copy()
    assert (to_rgb8(FakeImage(mono, 'mono8')) == np.repeat(mono[:, :, None], 3, 2)).all()
    depth = np.arange(30, dtype='<u2').reshape(6, 5)
    assert to_rgb8(FakeImage(depth, '16UC1'))[5, 4, 0] == 255
    with pytest.raises(ValueError, match='unsupported'):
        to_rgb8(FakeImage(rgb, 'yuv422'))
    out = fill_rgb8(FakeImage(rgb, 'rgb8'), rgb)
    assert out.step == 15 and out.encoding == 'rgb8'


# ------------------------------------------------------------------------------------------- graph
def _publish_target(ros_node, pub, x, y):
    from enpire_interfaces.msg import Command

    msg = Command(values=[float(x), float(y)])
    msg.header.frame_id = 'table'
    pub.publish(msg)


def start_adapter(node_processes, interface, *params, autostart=True, name='adapter'):
    feedback = 'pose' if interface in ('pose', 'twist') else 'joint_state'
    argv = ['-m', 'enpire_bringup.adapters.command_adapter_node', '--ros-args', '-r', f'__ns:={NS}',
            '-p', f'interface:={interface}', '-p', f'feedback:={feedback}', '-p', 'publish_cell_state:=true',
            '-p', f'autostart:={str(autostart).lower()}']
    for param in params:
        argv += ['-p', param]
    return node_processes.start(name, argv)


JOINT_INTERFACES = ['joint_trajectory', 'follow_joint_trajectory', 'forward_command']


@pytest.mark.graph
@pytest.mark.parametrize('interface', ['pose', 'twist', *JOINT_INTERFACES])
def test_command_adapter_against_mock_controller(interface, node_processes, ros_node):
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from enpire_interfaces.msg import CellState, Command

    controller = MockController(ros_node.node, interface, NS)   # the action server is up before activation
    start_adapter(node_processes, interface)
    states = []
    ros_node.node.create_subscription(CellState, f'{NS}/cell_state', states.append,
                                      QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    pub = ros_node.node.create_publisher(Command, f'{NS}/cmd/target', 10)
    ros_node.wait_for(lambda: pub.get_subscription_count() > 0, 15, 'the adapter to subscribe')

    target_px = (120.0, 300.0)
    expected = TableToRobot().to_robot(*target_px)

    def arrived():
        _publish_target(ros_node, pub, *target_px)   # a cell's command stream: repeated targets
        with controller.lock:
            return math.dist(controller.xy, expected[:2]) < 2e-3 and controller.received

    ros_node.wait_for(arrived, 15, f'the mock controller to reach the target via {interface}')
    assert controller.problems == [], controller.problems
    if interface == 'pose':
        last = controller.received[-1]
        assert (last.pose.position.x, last.pose.position.y, last.pose.position.z) == pytest.approx(expected)
    if interface in ('joint_trajectory', 'follow_joint_trajectory'):
        last = controller.received[-1]
        trajectory = last.trajectory if interface == 'follow_joint_trajectory' else last
        assert list(trajectory.points[0].positions) == pytest.approx(expected[:2])
    if interface == 'forward_command':
        assert list(controller.received[-1].data) == pytest.approx(expected[:2])
    # proprioception back: the cell state reports the measured position in table pixels
    def at_target():
        return states and math.dist((states[-1].tool_pose.position.x, states[-1].tool_pose.position.y),
                                    target_px) < 2.5
    ros_node.wait_for(at_target, 10, 'cell_state at the target')
    assert tuple(states[-1].commanded) == pytest.approx(target_px) and not states[-1].joints.name

    # commands in another frame are ignored (after the in-flight ones have landed)
    if interface != 'twist':
        time.sleep(0.5)
        n = len(controller.received)
        for frame, values in (('map', [100.0, 100.0]), ('table', [100.0, 100.0, 0.0]),
                              ('table', [math.nan, 1.0])):
            bad = Command(values=values)
            bad.header.frame_id = frame
            pub.publish(bad)
        time.sleep(0.5)
        assert len(controller.received) == n


def _targets(ros_node):
    from enpire_interfaces.msg import Command

    pub = ros_node.node.create_publisher(Command, f'{NS}/cmd/target', 10)
    ros_node.wait_for(lambda: pub.get_subscription_count() > 0, 20, 'the adapter to subscribe')
    return pub


def _wait_active(ros_node):
    """Until the autostarted adapter is active: it drops targets while inactive (activation waits for the
    controller's action server, which under load can outlast the subscription's match)."""
    from enpire_common.lifecycle import LifecycleClient
    from lifecycle_msgs.msg import State

    lifecycle = LifecycleClient(ros_node.node, f'{NS}/command_adapter', lambda f, t: _wait(ros_node, f, t))
    ros_node.wait_for(lambda: lifecycle.state(timeout_s=20) == State.PRIMARY_STATE_ACTIVE, 60,
                      'the adapter to be active')


def _diagnostics(ros_node):
    from diagnostic_msgs.msg import DiagnosticArray

    seen = []
    ros_node.node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: seen.extend(m.status), 50)
    return seen


def _wait(ros_node, future, timeout=20.0):
    return ros_node.wait_future(future, timeout)


@pytest.mark.graph
def test_managed_adapter_sends_nothing_before_activation_and_cancels_on_deactivate(node_processes, ros_node):
    from enpire_common.lifecycle import LifecycleClient
    from lifecycle_msgs.msg import State, Transition

    controller = MockController(ros_node.node, 'follow_joint_trajectory', NS)
    start_adapter(node_processes, 'follow_joint_trajectory', 'time_from_start_s:=4.0', autostart=False)
    lifecycle = LifecycleClient(ros_node.node, f'{NS}/command_adapter', lambda f, t: _wait(ros_node, f, t))
    assert lifecycle.change(Transition.TRANSITION_CONFIGURE, timeout_s=60) == State.PRIMARY_STATE_INACTIVE
    pub = _targets(ros_node)
    for _ in range(5):
        _publish_target(ros_node, pub, 200.0, 200.0)
    time.sleep(1.0)
    assert controller.received == [], 'a goal reached the controller before activation'

    assert lifecycle.change(Transition.TRANSITION_ACTIVATE, timeout_s=30) == State.PRIMARY_STATE_ACTIVE
    ros_node.wait_for(lambda: (_publish_target(ros_node, pub, 200.0, 200.0), controller.received)[1], 20,
                      'a goal once active')
    # a goal is in flight (4 s): deactivation cancels it and the controller holds where it is
    assert lifecycle.change(Transition.TRANSITION_DEACTIVATE, timeout_s=30) == State.PRIMARY_STATE_INACTIVE
    ros_node.wait_for(lambda: controller.canceled >= 1, 20, 'the goal cancelled at deactivation')
    assert controller.xy == pytest.approx([0.45, 0.0])        # it never got to the target
    assert controller.problems == [], controller.problems


@pytest.mark.graph
def test_trajectory_error_codes_reach_the_diagnostics(node_processes, ros_node):
    from control_msgs.action import FollowJointTrajectory
    from diagnostic_msgs.msg import DiagnosticStatus

    controller = MockController(ros_node.node, 'follow_joint_trajectory', NS)
    controller.fail_with = (FollowJointTrajectory.Result.GOAL_TOLERANCE_VIOLATED, 'x_joint is 0.02 m off')
    seen = _diagnostics(ros_node)
    start_adapter(node_processes, 'follow_joint_trajectory', 'diagnostics_period_s:=0.2')
    pub = _targets(ros_node)
    _wait_active(ros_node)
    _publish_target(ros_node, pub, 300.0, 100.0)       # one goal: a stream would preempt it each time

    def reported():
        return [s for s in seen if s.name.endswith('trajectory goals') and s.level == DiagnosticStatus.WARN]
    status = ros_node.wait_for(reported, 30, 'the failed goal in the diagnostics')[-1]
    assert 'GOAL_TOLERANCE_VIOLATED' in status.message and '0.02 m off' in status.message
    assert {v.key: v.value for v in status.values}.get('GOAL_TOLERANCE_VIOLATED', '0') != '0'
    rates = [s for s in seen if s.name.endswith('command rate')]
    assert rates and {v.key for v in rates[-1].values} >= {'Actual frequency (Hz)', 'Events in window'}


@pytest.mark.graph
def test_an_error_transition_latches_the_estop(node_processes, ros_node):
    from enpire_common.lifecycle import bring_up
    from lifecycle_msgs.msg import State
    from std_srvs.srv import SetBool

    latched = []

    def estop(request, response):        # the test plays the cell's safety node
        latched.append(request.data)
        response.success = True
        return response
    ros_node.node.create_service(SetBool, f'{NS}/safety/estop', estop)
    # no trajectory action server: activation fails, an error transition follows
    start_adapter(node_processes, 'follow_joint_trajectory', 'server_timeout_s:=1.0',
                  'controller:=no_such_controller', autostart=False)
    state = bring_up(ros_node.node, f'{NS}/command_adapter', lambda f, t: _wait(ros_node, f, t), timeout_s=30)
    assert state == State.PRIMARY_STATE_UNCONFIGURED
    ros_node.wait_for(lambda: latched == [True], 20, 'the e-stop latched by the error transition')
    assert 'no action server' in node_processes.log('adapter')


@pytest.mark.graph
def test_parameter_changes_are_checked_on_the_graph(node_processes, ros_node):
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import DescribeParameters, SetParameters

    MockController(ros_node.node, 'pose', NS)
    start_adapter(node_processes, 'pose')
    client = ros_node.node.create_client(SetParameters, f'{NS}/command_adapter/set_parameters')
    assert client.wait_for_service(timeout_sec=20)

    def set_param(name, value):
        kind = ParameterType.PARAMETER_STRING if isinstance(value, str) else ParameterType.PARAMETER_DOUBLE
        field = 'string_value' if isinstance(value, str) else 'double_value'
        request = SetParameters.Request(parameters=[Parameter(name=name, value=ParameterValue(
            type=kind, **{field: value}))])
        return ros_node.call(client, request).results[0]

    read_only = set_param('interface', 'twist')
    assert not read_only.successful and 'read-only' in read_only.reason
    too_fast = set_param('max_linear_speed', 50.0)
    assert not too_fast.successful and 'out of range' in too_fast.reason
    for bad in (math.nan, math.inf):
        refused = set_param('twist_gain', bad)
        assert not refused.successful and refused.reason, bad
    assert set_param('twist_gain', 3.0).successful                 # in range: taken at run time
    describe = ros_node.node.create_client(DescribeParameters, f'{NS}/command_adapter/describe_parameters')
    assert describe.wait_for_service(timeout_sec=10)
    found = ros_node.call(describe, DescribeParameters.Request(
        names=['interface', 'max_linear_speed'])).descriptors
    assert found[0].read_only and found[0].description
    assert found[1].floating_point_range[0].to_value == 2.0 and not found[1].read_only


@pytest.mark.graph
def test_camera_relay_turns_a_driver_topic_into_the_cells_rgb8_camera(node_processes, ros_node):
    from enpire_common import names
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    node_processes.start('relay', [
        '-m', 'enpire_bringup.adapters.camera_relay_node', '--ros-args', '-r', f'__ns:={NS}',
        '-p', 'cameras:=[top]', '-p', 'sources:=[/driver/color/image_raw]',
        '-p', 'info_sources:=[/driver/color/camera_info]', '-p', 'autostart:=true',
        '-p', 'diagnostics_period_s:=0.2', '-p', 'min_frame_rate_hz:=2.0'])
    seen = _diagnostics(ros_node)
    node = ros_node.node
    got, infos = [], []
    node.create_subscription(Image, f'{NS}/{names.camera_image("top")}', got.append, qos_profile_sensor_data)
    node.create_subscription(CameraInfo, f'{NS}/{names.camera_info("top")}', infos.append,
                             qos_profile_sensor_data)
    image_pub = node.create_publisher(Image, '/driver/color/image_raw', qos_profile_sensor_data)
    info_pub = node.create_publisher(CameraInfo, '/driver/color/camera_info', qos_profile_sensor_data)
    ros_node.wait_for(lambda: image_pub.get_subscription_count() > 0, 15, 'the relay to subscribe')

    # A driver's bgr8 frame: a red square on black. Out: rgb8, same stamp, the cell's frame id.
    bgr = np.zeros((6, 8, 3), dtype=np.uint8)
    bgr[1:3, 2:5] = (0, 0, 255)
    msg = Image(height=6, width=8, encoding='bgr8', is_bigendian=0, step=24, data=bgr.tobytes())
    msg.header.stamp.sec, msg.header.frame_id = 42, 'driver_optical_frame'
    info = CameraInfo(height=6, width=8)
    info.header.stamp.sec = 42

    def relayed():
        image_pub.publish(msg)
        info_pub.publish(info)
        return got and infos
    ros_node.wait_for(relayed, 15, 'the relayed frame')
    out = got[-1]
    assert (out.encoding, out.height, out.width, out.step) == ('rgb8', 6, 8, 24)
    assert out.header.stamp.sec == 42 and out.header.frame_id == names.camera_frame('top')
    rgb = np.frombuffer(bytes(out.data), dtype=np.uint8).reshape(6, 8, 3)
    assert (rgb[1:3, 2:5] == (255, 0, 0)).all() and rgb[0].sum() == 0
    assert infos[-1].header.frame_id == names.camera_frame('top') and infos[-1].width == 8
    # the relayed frame rate as a frequency status: met while frames flow, ERROR once they stop
    from diagnostic_msgs.msg import DiagnosticStatus

    def rate_met():
        image_pub.publish(msg)
        return any(s.name.endswith('top frame rate') and s.level == DiagnosticStatus.OK
                   and s.message == 'Desired frequency met' for s in seen[-5:])
    ros_node.wait_for(rate_met, 20, 'the frame rate reported as met')
    ros_node.wait_for(lambda: any(s.name.endswith('top frame rate') and s.level == DiagnosticStatus.ERROR
                                  for s in seen[-3:]), 20, 'no frames reported as ERROR')
