"""Real-robot adapters: the cell's safe command out to a common ROS 2 control interface, cameras in, reset."""
