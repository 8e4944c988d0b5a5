SHELL := /bin/bash
.PHONY: setup test demo lint bench clean

setup:
	@bash scripts/setup.sh

test: setup
	@. ./env.sh && ruff check . && python -m pytest tests

demo: setup
	@. ./env.sh && python -m enpire_agents.demo $(if $(TASK),--task $(TASK))

lint: setup
	@. ./env.sh && ruff check .

clean:
	rm -rf ros2_ws/build ros2_ws/install ros2_ws/log .venv/.enpire-stamps
