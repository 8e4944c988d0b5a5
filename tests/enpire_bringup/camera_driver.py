"""A stand-in for a real cell's camera drivers: Push-T scenes rendered through pinhole cameras with lens
distortion, published as a driver does (bgr8 Image + CameraInfo on `<prefix>/image_raw` and
`<prefix>/camera_info`, stamped now, the driver's own frame id, best effort, 10 Hz). No simulator: the
scene (block pose, agent) is what the test last sent on /test_driver/scene (std_msgs/String, JSON).

    python tests/enpire_bringup/camera_driver.py <config.json>
    config: {"cameras": [{"prefix": "/top_camera/color", "width", "height", "k": [9], "d": [5],
             "translation": [3], "rotation": [x, y, z, w]}], "table_pixel_m": 0.001}
"""
import json
import sys

import cv2
import rclpy
from enpire_task_pusht.render import CameraSpec, RenderState, draw
from rclpy.executors import ExternalShutdownException
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from enpire_env.calibration.camera_model import Intrinsics, Pose, table_to_image
from enpire_sim.board_views import through_lens


class Camera:
    def __init__(self, node, entry: dict, table_pixel_m: float):
        self.prefix = entry['prefix']
        self.frame_id = self.prefix.strip('/').replace('/', '_') + '_optical_frame'
        self.intrinsics = Intrinsics(width=entry['width'], height=entry['height'], k=entry['k'], d=entry['d'])
        pose = Pose.from_quaternion(entry['translation'], entry['rotation'])
        self.h = table_to_image(self.intrinsics, pose, table_pixel_m)
        self.spec = CameraSpec(name=self.frame_id, kind='oblique', width=entry['width'],
                               height=entry['height'])
        sensor = qos_profile_sensor_data
        self.image_pub = node.create_publisher(Image, f'{self.prefix}/image_raw', sensor)
        self.info_pub = node.create_publisher(CameraInfo, f'{self.prefix}/camera_info', sensor)
        self.bgr = None

    def render(self, state: RenderState) -> None:
        rgb, _ = draw(state, self.spec, h=self.h)
        self.bgr = cv2.cvtColor(through_lens(rgb, self.intrinsics), cv2.COLOR_RGB2BGR)

    def publish(self, stamp) -> None:
        if self.bgr is None:
            return
        img = Image(height=self.bgr.shape[0], width=self.bgr.shape[1], encoding='bgr8', is_bigendian=0,
                    step=self.bgr.shape[1] * 3, data=self.bgr.tobytes())
        img.header.stamp, img.header.frame_id = stamp, self.frame_id
        info = self.intrinsics.fill_camera_info(CameraInfo())
        info.header = img.header
        self.image_pub.publish(img)
        self.info_pub.publish(info)


def main() -> None:
    config = json.loads(open(sys.argv[1]).read())
    rclpy.init()
    node = rclpy.create_node('fake_camera_driver')
    cameras = [Camera(node, entry, config['table_pixel_m']) for entry in config['cameras']]

    def on_scene(msg: String) -> None:
        scene = json.loads(msg.data)
        state = RenderState(tuple(scene['block']), tuple(scene['agent']))
        for cam in cameras:
            cam.render(state)
        node.get_logger().info(f'scene {scene}')

    def tick() -> None:
        stamp = node.get_clock().now().to_msg()
        for cam in cameras:
            cam.publish(stamp)

    node.create_subscription(String, '/test_driver/scene', on_scene,
                             QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    node.create_timer(0.1, tick)
    node.get_logger().info('camera driver ready')
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


if __name__ == '__main__':
    main()
