"""Camera relay: any sensor_msgs/Image topics in, the cell's camera names out.

A real cell's cameras publish wherever their drivers do (`/camera/color/image_raw`, ...); the cell's
nodes read `names.camera_image(<camera>)` (e.g. /cell_0/cameras/top/image_raw) in rgb8. Parameters:
`cameras` (the cell's names) and `sources` (input topics, same order), optionally `info_sources`
(sensor_msgs/CameraInfo, same order, '' for none). Frames are converted to rgb8 (cv_bridge where a
system ROS 2 provides it, numpy otherwise; an rgb8 frame passes unchanged), stamped as they came and
given the frame id `names.camera_frame(<camera>)`. Inputs are read best effort (matches any driver),
outputs are reliable (matches any reader). Each camera's relayed frame rate goes to /diagnostics as a
frequency status (ERROR: no frames; WARN: below `min_frame_rate_hz`).

A managed node (enpire_common.lifecycle): nothing is relayed before `activate` nor after `deactivate`; an
error transition latches the cell's e-stop.

Run: python -m enpire_bringup.adapters.camera_relay_node --ros-args -r __ns:=/cell_0 \
       -p cameras:=[top] -p sources:=[/camera/color/image_raw] -p autostart:=true
"""
from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticArray
from enpire_common import names
from enpire_common.lifecycle import ManagedCellNode
from enpire_common.node_main import run_node
from enpire_common.parameters import describe, refuse_non_finite
from enpire_common.rate_status import FrequencyStatus, diagnostic_status
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from enpire_bringup.adapters.image_convert import fill_rgb8, to_rgb8

try:  # a system ROS 2 (lab machines) has a working cv_bridge; the PyPI one is ROS 1 code
    from cv_bridge import CvBridge
except Exception:  # ImportError, or numpy ABI errors of a mismatched build
    CvBridge = None


class CameraRelay(ManagedCellNode):
    def __init__(self, **node_options):
        super().__init__('camera_relay', **node_options)
        ro = dict(read_only=True)
        self.cameras = list(self.declare_parameter('cameras', ['top'], describe(
            "the cell's camera names (verify and the trial server use them)", **ro)).value)
        self.sources = list(self.declare_parameter('sources', ['/camera/image_raw'], describe(
            "the drivers' image topics, one per camera, same order", **ro)).value)
        self.info_sources = list(self.declare_parameter('info_sources', [''], describe(
            "the drivers' CameraInfo topics, same order ('' for none)", **ro)).value)
        self.use_cv_bridge = bool(self.declare_parameter('use_cv_bridge', True, describe(
            'convert with cv_bridge where a system ROS 2 provides it (numpy otherwise)', **ro)).value)
        self.min_rate_hz = self.declare_parameter('min_frame_rate_hz', 5.0, describe(
            'diagnostics: a camera relaying fewer frames per second than this is WARN, none is ERROR',
            low=0.0, high=1000.0, **ro)).value
        self.diagnostics_period_s = self.declare_parameter('diagnostics_period_s', 1.0, describe(
            'seconds between diagnostics messages', low=0.1, high=60.0, **ro)).value
        self.add_on_set_parameters_callback(refuse_non_finite)
        self.relayed = dict.fromkeys(self.cameras, 0)
        self.rates = {c: FrequencyStatus(min_hz=self.min_rate_hz) for c in self.cameras}
        self._entities: list = []

    def configure(self) -> None:
        if len(self.sources) != len(self.cameras):
            raise ValueError(f'{len(self.cameras)} cameras but {len(self.sources)} sources: '
                             'give one source each')
        info_sources = (self.info_sources + [''] * len(self.cameras))[:len(self.cameras)]
        self.bridge = CvBridge() if (self.use_cv_bridge and CvBridge is not None) else None
        self._pubs = []
        for camera, source, info in zip(self.cameras, self.sources, info_sources, strict=True):
            image_pub = self.create_lifecycle_publisher(Image, names.camera_image(camera),
                                                        qos_profile_sensor_data)
            self._pubs.append(image_pub)
            self._entities.append(self.create_subscription(
                Image, source, lambda msg, c=camera, pub=image_pub: self.on_image(c, pub, msg),
                qos_profile_sensor_data))
            if info:
                info_pub = self.create_lifecycle_publisher(CameraInfo, names.camera_info(camera),
                                                           qos_profile_sensor_data)
                self._pubs.append(info_pub)
                self._entities.append(self.create_subscription(
                    CameraInfo, info, lambda msg, c=camera, pub=info_pub: self.on_info(c, pub, msg),
                    qos_profile_sensor_data))
        self.diag_pub = self.create_lifecycle_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        self._timer = self.create_timer(self.diagnostics_period_s, self.publish_diagnostics)
        self.get_logger().info('camera relay configured: ' + ', '.join(
            f'{s} -> {names.camera_image(c)}' for c, s in zip(self.cameras, self.sources, strict=True))
            + f' (conversion: {"cv_bridge" if self.bridge else "numpy"})')

    def activate(self) -> None:
        self.get_logger().info('camera relay ready')

    def cleanup(self) -> None:
        self.destroy_timer(self._timer)
        for sub in self._entities:
            self.destroy_subscription(sub)
        for pub in [*self._pubs, self.diag_pub]:
            self.destroy_lifecycle_publisher(pub)
        self._entities = []

    def publish_diagnostics(self) -> None:
        if not self.active:
            return
        now = time.monotonic()
        array = DiagnosticArray(status=[
            diagnostic_status(f'{self.get_fully_qualified_name()}: {camera} frame rate',
                              names.camera_frame(camera), rate.report(now))
            for camera, rate in self.rates.items()])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)

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
        if not self.active:
            return
        try:
            out = self.convert(msg)
        except ValueError as exc:
            self.get_logger().error(f'{camera}: {exc}', throttle_duration_sec=5.0)
            return
        out.header.frame_id = names.camera_frame(camera)
        pub.publish(out)
        self.relayed[camera] += 1
        self.rates[camera].tick()

    def on_info(self, camera: str, pub, msg: CameraInfo) -> None:
        if not self.active:
            return
        msg.header.frame_id = names.camera_frame(camera)
        pub.publish(msg)


def main(args=None) -> int:
    return run_node(CameraRelay, args=args)


if __name__ == '__main__':
    raise SystemExit(main())
