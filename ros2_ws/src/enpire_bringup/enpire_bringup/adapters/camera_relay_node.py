"""Camera relay: any sensor_msgs/Image topics in, the cell's camera names out.

A real cell's cameras publish wherever their drivers do (`/camera/color/image_raw`, ...); the cell's
nodes read `names.camera_image(<camera>)` (e.g. /cell_0/cameras/top/image_raw) in rgb8. Parameters:
`cameras` (the cell's names) and `sources` (input topics, same order), optionally `info_sources`
(sensor_msgs/CameraInfo, same order, '' for none). Frames are converted to rgb8 (cv_bridge where a
system ROS 2 provides it, numpy otherwise; an rgb8 frame passes unchanged), stamped as they came and
given the frame id `names.camera_frame(<camera>)`. Inputs are read best effort (matches any driver),
outputs are reliable (matches any reader).

Run: python -m enpire_bringup.adapters.camera_relay_node --ros-args -r __ns:=/cell_0 \
       -p cameras:=[top] -p sources:=[/camera/color/image_raw]
"""
from __future__ import annotations

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from enpire_bringup.adapters.image_convert import fill_rgb8, to_rgb8
from enpire_env import names
from enpire_env.executors import SubmitOnceExecutor

try:  # a system ROS 2 (lab machines) has a working cv_bridge; the PyPI one is ROS 1 code
    from cv_bridge import CvBridge
except Exception:  # ImportError, or numpy ABI errors of a mismatched build
    CvBridge = None


class CameraRelay(Node):
    def __init__(self):
        super().__init__('camera_relay')
        self.cameras = list(self.declare_parameter('cameras', ['top']).value)
        sources = list(self.declare_parameter('sources', ['/camera/image_raw']).value)
        info_sources = list(self.declare_parameter('info_sources', ['']).value)
        use_cv_bridge = bool(self.declare_parameter('use_cv_bridge', True).value)
        if len(sources) != len(self.cameras):
            raise ValueError(f'{len(self.cameras)} cameras but {len(sources)} sources: give one source each')
        info_sources = (info_sources + [''] * len(self.cameras))[:len(self.cameras)]
        self.bridge = CvBridge() if (use_cv_bridge and CvBridge is not None) else None
        self.relayed = dict.fromkeys(self.cameras, 0)
        for camera, source, info in zip(self.cameras, sources, info_sources, strict=True):
            image_pub = self.create_publisher(Image, names.camera_image(camera), 10)
            self.create_subscription(Image, source, lambda msg, c=camera, pub=image_pub:
                                     self.on_image(c, pub, msg), qos_profile_sensor_data)
            if info:
                info_pub = self.create_publisher(CameraInfo, names.camera_info(camera), 10)
                self.create_subscription(CameraInfo, info, lambda msg, c=camera, pub=info_pub:
                                         self.on_info(c, pub, msg), qos_profile_sensor_data)
        self.get_logger().info('camera relay ready: ' + ', '.join(
            f'{s} -> {names.camera_image(c)}' for c, s in zip(self.cameras, sources, strict=True))
            + f' (conversion: {"cv_bridge" if self.bridge else "numpy"})')

    def convert(self, msg: Image) -> Image:
        if msg.encoding == 'rgb8':
            out = msg
        elif self.bridge is not None:
            out = self.bridge.cv2_to_imgmsg(self.bridge.imgmsg_to_cv2(msg, desired_encoding='rgb8'),
                                            encoding='rgb8')
        else:
            out = fill_rgb8(Image(), to_rgb8(msg))
        out.header.stamp = msg.header.stamp
        return out

    def on_image(self, camera: str, pub, msg: Image) -> None:
        try:
            out = self.convert(msg)
        except ValueError as exc:
            self.get_logger().error(f'{camera}: {exc}', throttle_duration_sec=5.0)
            return
        out.header.frame_id = names.camera_frame(camera)
        pub.publish(out)
        self.relayed[camera] += 1

    def on_info(self, camera: str, pub, msg: CameraInfo) -> None:
        msg.header.frame_id = names.camera_frame(camera)
        pub.publish(msg)


def main(args=None) -> None:
    try:
        with rclpy.init(args=args):
            node = CameraRelay()
            executor = SubmitOnceExecutor()
            executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


if __name__ == '__main__':
    main()
