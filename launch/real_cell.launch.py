"""`ros2 launch launch/real_cell.launch.py` from a checkout: the installed enpire_bringup real_cell.launch.py
(the launch files live in the package, so `ros2 launch enpire_bringup real_cell.launch.py` finds them too)."""
from enpire_bringup.launch_description import include_installed


def generate_launch_description():
    return include_installed('real_cell.launch.py')
