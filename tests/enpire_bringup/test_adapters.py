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
    from geometry_msgs.msg import PointStamped

    msg = PointStamped()
    msg.header.frame_id = 'table'
    msg.point.x, msg.point.y = float(x), float(y)
    pub.publish(msg)


@pytest.mark.graph
@pytest.mark.parametrize('interface', ['pose', 'twist', 'joint_trajectory'])
def test_command_adapter_against_mock_controller(interface, node_processes, ros_node):
    from geometry_msgs.msg import PointStamped
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from enpire_interfaces.msg import CellState

    feedback = 'joint_state' if interface == 'joint_trajectory' else 'pose'
    node_processes.start('adapter', [
        '-m', 'enpire_bringup.adapters.command_adapter_node', '--ros-args', '-r', f'__ns:={NS}',
        '-p', f'interface:={interface}', '-p', f'feedback:={feedback}', '-p', 'publish_cell_state:=true'])
    controller = MockController(ros_node.node, interface, NS)
    states = []
    ros_node.node.create_subscription(CellState, f'{NS}/cell_state', states.append,
                                      QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    pub = ros_node.node.create_publisher(PointStamped, f'{NS}/cmd/target', 10)
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
    if interface == 'joint_trajectory':
        assert list(controller.received[-1].points[0].positions) == pytest.approx(expected[:2])
    # proprioception back: the cell state reports the measured position in table pixels
    ros_node.wait_for(lambda: states and math.dist((states[-1].agent_position.x, states[-1].agent_position.y),
                                                   target_px) < 2.5, 10, 'cell_state at the target')
    assert (states[-1].commanded_target.x, states[-1].commanded_target.y) == pytest.approx(target_px)

    # commands in another frame are ignored (after the in-flight ones have landed)
    if interface != 'twist':
        time.sleep(0.5)
        n = len(controller.received)
        bad = PointStamped()
        bad.header.frame_id = 'map'
        pub.publish(bad)
        time.sleep(0.5)
        assert len(controller.received) == n


@pytest.mark.graph
def test_camera_relay_turns_a_driver_topic_into_the_cells_rgb8_camera(node_processes, ros_node):
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from enpire_env import names

    node_processes.start('relay', [
        '-m', 'enpire_bringup.adapters.camera_relay_node', '--ros-args', '-r', f'__ns:={NS}',
        '-p', 'cameras:=[top]', '-p', 'sources:=[/driver/color/image_raw]',
        '-p', 'info_sources:=[/driver/color/camera_info]'])
    node = ros_node.node
    got, infos = [], []
    node.create_subscription(Image, f'{NS}/{names.camera_image("top")}', got.append, 10)
    node.create_subscription(CameraInfo, f'{NS}/{names.camera_info("top")}', infos.append, 10)
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
