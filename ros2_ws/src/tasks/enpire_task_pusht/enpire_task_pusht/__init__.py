"""Push-T, the first ENPIRE-ROS task: push a T-shaped block onto its goal pose on a 512x512 px table.

Everything Push-T lives in this folder; the rest of ENPIRE-ROS finds it as `enpire_common.task_registry
.get('pusht')` (entry point in setup.py, the contract in `task.py`)."""
