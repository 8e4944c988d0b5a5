"""ENPIRE-ROS bringup: the bringup file, the process supervisor behind `enpire up`, real-robot adapters."""
