"""Peg insertion (Meta-World peg-insert-side-v3 in MuJoCo): a task folder of ENPIRE-ROS."""
