"""/tf_static speaks the standard tf2_msgs/msg/TFMessage, whether tf2_msgs comes from a ROS 2
distribution or from the workspace's stand-in (ros2_ws/compat/tf2_msgs, built where it is missing)."""
import json
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from rosbags.typesys import Stores, get_typestore


def test_tfmessage_has_the_type_hash_of_the_standard_definition():
    from tf2_msgs.msg import TFMessage  # importable: installed or built here
    assert TFMessage.__name__ == 'TFMessage'
    share = Path(get_package_share_directory('tf2_msgs'))
    described = json.loads((share / 'msg' / 'TFMessage.json').read_text())
    hashes = {h['type_name']: h['hash_string'] for h in described['type_hashes']}
    standard = get_typestore(Stores.ROS2_KILTED).hash_rihs01('tf2_msgs/msg/TFMessage')
    assert hashes['tf2_msgs/msg/TFMessage'] == standard


def test_the_stand_in_has_the_standard_definition_text():
    root = Path(__file__).resolve().parents[2]
    text = (root / 'ros2_ws/compat/tf2_msgs/msg/TFMessage.msg').read_text().split()
    assert text == ['geometry_msgs/TransformStamped[]', 'transforms']
