"""camera_calibration: a real cell's camera calibrations on the graph, the way ROS tools expect them.

Loads `<calibration_dir>/<camera>.yaml` for every camera in `cameras` (files written by
`enpire calibrate`) and publishes
- each camera's pose as a static transform `table` -> `<camera>_optical_frame` on /tf_static
  (tf2_msgs/TFMessage, all in one latched message, as tf2's StaticTransformBroadcaster sends them);
- each camera's intrinsics as sensor_msgs/CameraInfo on `cameras/<camera>/camera_info` (latched, and
  again every `info_period_s` for readers that do not ask for latched messages).
The verify node derives each camera's table-to-image mapping from the two. A missing or broken file
stops the node at start-up (exit status 2, one line naming the file): a camera never runs uncalibrated.

Run: python -m enpire_bringup.adapters.camera_calibration_node --ros-args -r __ns:=/cell_0 \
       -p cameras:=[top,oblique] -p calibration_dir:=$HOME/.config/enpire/calibration
"""
from __future__ import annotations

import os
from pathlib import Path

from enpire_common import names
from enpire_common.node_main import run_node
from enpire_common.parameters import describe
from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import CameraInfo
from tf2_msgs.msg import TFMessage

from enpire_env.calibration import calibration_file
from enpire_env.calibration.transforms import fill_transform

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def default_calibration_dir() -> Path:
    return Path(os.environ.get('ENPIRE_CALIBRATION_DIR', '~/.config/enpire/calibration')).expanduser()


class CameraCalibrationNode(Node):
    def __init__(self, **node_options):
        super().__init__('camera_calibration', **node_options)
        cameras = list(self.declare_parameter('cameras', ['top'], describe(
            "the cell's camera names (one <camera>.yaml each)", read_only=True)).value)
        folder = Path(self.declare_parameter('calibration_dir', '', describe(
            "folder of enpire calibrate's YAML files ('' = $ENPIRE_CALIBRATION_DIR or "
            '~/.config/enpire/calibration)', read_only=True)).value or default_calibration_dir())
        period = float(self.declare_parameter('info_period_s', 1.0, describe(
            'seconds between CameraInfo messages', read_only=True, low=0.01, high=60.0)).value)
        self.calibrations = {}
        for camera in cameras:
            path = folder / f'{camera}.yaml'
            if not path.is_file():
                raise FileNotFoundError(f'no calibration for camera {camera!r}: {path} does not exist (make '
                                        f'it with: enpire calibrate --camera {camera} ... --out {path})')
            cal = calibration_file.load(path)
            if cal.child_frame != names.camera_frame(camera):
                raise ValueError(f'{path}: the pose is of frame {cal.child_frame!r}, the cell names camera '
                                 f'{camera!r} frame {names.camera_frame(camera)!r}')
            self.calibrations[camera] = cal
        stamp = self.get_clock().now().to_msg()
        self.tf_pub = self.create_publisher(TFMessage, names.TF_STATIC, LATCHED)
        self.tf_pub.publish(TFMessage(transforms=[
            fill_transform(TransformStamped(), c.parent_frame, c.child_frame, c.table_from_optical, stamp)
            for c in self.calibrations.values()]))
        self.info_pubs = {c: self.create_publisher(CameraInfo, names.camera_info(c), LATCHED)
                          for c in cameras}
        self.publish_camera_info()
        if period > 0:
            self.create_timer(period, self.publish_camera_info)
        self.get_logger().info('camera calibration ready: ' + ', '.join(
            f'{c} ({folder / (c + ".yaml")})' for c in cameras))

    def publish_camera_info(self) -> None:
        stamp = self.get_clock().now().to_msg()
        for camera, cal in self.calibrations.items():
            info = cal.intrinsics.fill_camera_info(CameraInfo())
            info.header.stamp, info.header.frame_id = stamp, cal.child_frame
            self.info_pubs[camera].publish(info)


def main(args=None) -> int:
    return run_node(CameraCalibrationNode, args=args, name='camera_calibration')


if __name__ == '__main__':
    raise SystemExit(main())
