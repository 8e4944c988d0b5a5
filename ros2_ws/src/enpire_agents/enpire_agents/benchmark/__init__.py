"""AutoEnvBench: research-progress curves across tasks, backends and team sizes (`enpire bench`).

`matrix` (the config and its runs), `aggregate` (figures over repeats, MTU), `report` (JSON, plot,
HTML) are pure; `runner` starts the simulated cells and runs each team on the ROS graph; `cli` is
what `enpire bench` calls.
"""
