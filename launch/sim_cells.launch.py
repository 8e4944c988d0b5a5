"""`ros2 launch launch/sim_cells.launch.py` from a checkout: includes the installed
enpire_bringup/launch/sim_cells.launch.py; every launch argument (bringup, cells, only, skip,
use_sim_time) passes through unchanged. The launch files live in the enpire_bringup package, so that
`ros2 launch enpire_bringup sim_cells.launch.py` finds them in its share directory."""
from ament_index_python.packages import get_package_share_directory
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource

from launch import LaunchDescription


def generate_launch_description():
    share = get_package_share_directory('enpire_bringup')
    return LaunchDescription([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(f'{share}/launch/sim_cells.launch.py'))])
