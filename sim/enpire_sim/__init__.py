"""The simulated cell: a task's simulator as mock hardware behind the same ROS interfaces as a real cell."""
