"""`ros2 launch launch/sim_cells.launch.py` from a checkout: the installed enpire_bringup sim_cells.launch.py
(the launch files live in the package, so `ros2 launch enpire_bringup sim_cells.launch.py` finds them too)."""
from enpire_bringup.launch_description import include_installed


def generate_launch_description():
    return include_installed('sim_cells.launch.py')
