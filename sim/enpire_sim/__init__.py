"""The simulated cell: Push-T as mock hardware behind the same ROS interfaces as a real cell."""
