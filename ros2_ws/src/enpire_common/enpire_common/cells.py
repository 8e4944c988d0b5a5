"""Cells started from a bringup file under the supervisor: what `enpire up`, the demo, the benchmark,
the benches and the graph tests use, so a cell is described once (config/bringup/*.yaml of enpire_bringup).

    with simulated_cells(['cell_0'], log_dir, bag_dir=lambda cell: out / 'bags' / cell) as cells:
        if not cells.wait_ready(120):
            ...  # cells.problems() says which node did not come up

Ready checks on topics, services and actions, and the lifecycle manager's part (configure and activate a
managed node), go through `GraphProbe`, a private rclpy node with its own context.
"""
from __future__ import annotations

import os
import random
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from enpire_common import bringup_file
from enpire_common.supervisor import ProcessSpec, Restart, Supervisor

SIM_CELLS = 'sim_cells'


class GraphProbe:
    """Answers 'is this topic published / service or action served yet' with a private rclpy node."""

    def __init__(self):
        self._node = None
        self._context = None
        self._lock = threading.Lock()

    def _ensure(self):
        if self._node is None:
            import rclpy
            import rclpy.executors
            from rclpy.signals import SignalHandlerOptions

            self._context = rclpy.Context()
            rclpy.init(context=self._context, signal_handler_options=SignalHandlerOptions.NO)
            self._node = rclpy.create_node('enpire_up_probe', context=self._context,
                                           start_parameter_services=False, enable_rosout=False)
            self._executor = rclpy.executors.SingleThreadedExecutor(context=self._context)
            self._executor.add_node(self._node)
        return self._node

    def topic(self, name: str) -> bool:
        return self._ensure().count_publishers(name) > 0

    def service(self, name: str) -> bool:
        return any(n == name for n, _ in self._ensure().get_service_names_and_types())

    def activate(self, fully_qualified_name: str) -> bool:
        """Configure and activate a managed node (lifecycle services); True once it is active."""
        from enpire_common.lifecycle import ACTIVE, bring_up

        node = self._ensure()

        def wait(future, timeout_s):
            self._executor.spin_until_future_complete(future, timeout_sec=timeout_s)
            if not future.done():
                raise TimeoutError(f'{fully_qualified_name}: no answer from its lifecycle services')
            return future.result()
        try:
            return bring_up(node, fully_qualified_name, wait, timeout_s=5.0) == ACTIVE
        except TimeoutError:
            return False

    def action(self, name: str) -> bool:
        return self.service(f'{name}/_action/send_goal') and self.service(f'{name}/_action/get_result')

    def close(self):
        if self._node is not None:
            import rclpy

            self._executor.shutdown()
            self._node.destroy_node()
            rclpy.try_shutdown(context=self._context)
            self._node = None


def process_specs(expansion: bringup_file.Expansion, probe: GraphProbe | None = None,
                  python: str = sys.executable, ready_timeout_s: float | None = None,
                  compose: bool | None = None) -> list[ProcessSpec]:
    """The supervisor's view of an expansion: one spec per process (a composed cell is one; `compose`
    as in `Expansion.processes`); graph ready checks go through `probe`."""
    specs = []
    for process in expansion.processes(compose):
        hook = None
        if (process.ready_names or process.managed) and probe is not None:
            # the lifecycle manager's part first: ready means configured and active
            checks = [(probe.activate, name) for name in process.managed]
            checks += [(getattr(probe, kind), name) for kind, name in process.ready_names]
            hook = (lambda checks=checks: all(check(name) for check, name in checks))
        restart = Restart(**process.restart.model_dump())
        timeout = ready_timeout_s or process.ready_timeout_s or 60.0
        specs.append(ProcessSpec(
            label=process.label, argv=process.argv(python), env=process.env, restart=restart,
            ready_log=process.ready_log, ready_delay_s=process.ready_delay_s, ready_hook=hook,
            ready_timeout_s=timeout, after=process.after, required=process.required))
    return specs


def isolated_graph_env() -> dict[str, str]:
    """Loopback discovery and a fresh ROS_DOMAIN_ID (not the current one), set in this process before
    rclpy loads; returns the environment for the cells' processes. The domain is drawn from 110..159, or
    from the band ENPIRE_TEST_DOMAIN_BASE/_SPAN when set (checkouts sharing a machine keep apart)."""
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ.pop('ROS_LOCALHOST_ONLY', None)
    base = int(os.environ.get('ENPIRE_TEST_DOMAIN_BASE', '110'))
    span = int(os.environ.get('ENPIRE_TEST_DOMAIN_SPAN', '50'))
    current = os.environ.get('ROS_DOMAIN_ID', '0')
    domain = random.SystemRandom().choice([d for d in range(base, base + span) if str(d) != current])
    os.environ['ROS_DOMAIN_ID'] = str(domain)
    return {**os.environ, 'PYTHONUNBUFFERED': '1'}


def cell_expansion(cells: list[str], *, bag_dir: Callable[[str], Path] | None = None,
                   parameters: Mapping[str, Mapping[str, Any]] | None = None,
                   bringup: str | os.PathLike = SIM_CELLS,
                   task: str | None = None) -> bringup_file.Expansion:
    """The bringup file's cell nodes for `cells` (its global nodes, such as the agent team, left out),
    running `task` (None: the file's), each trial server's bags in `bag_dir(cell)`, and run-specific
    parameters by node name."""
    expansion = bringup_file.expand(bringup_file.load(bringup), cells=cells, task=task)
    expansion = expansion.select(skip=[n.label for n in expansion.nodes if n.cell is None])
    for node in expansion.nodes:
        node.parameters.update((parameters or {}).get(node.name, {}))
        if bag_dir is not None and node.name == 'trial_server':
            node.parameters['bag_dir'] = str(bag_dir(node.cell))
    return expansion


class RunningCells:
    """The supervised processes of a set of cells, run in a background thread."""

    def __init__(self, expansion: bringup_file.Expansion, log_dir: Path, *, ready_timeout_s: float,
                 say: Callable[[str], None] | None, console: TextIO | None, compose: bool | None = None):
        self.expansion = expansion
        self.probe = GraphProbe()
        self._say = say
        self._quiet = None if console is not None else open(os.devnull, 'w')   # events stay in the log
        self.supervisor = Supervisor(
            process_specs(expansion, self.probe, ready_timeout_s=ready_timeout_s, compose=compose), log_dir,
            grace_s=expansion.bringup.defaults.shutdown_grace_s, echo=False,
            console=console or self._quiet, on_event=self._event)
        self._problems: list[str] = []
        self._thread = threading.Thread(target=self.supervisor.run, name='cells-supervisor', daemon=True)

    def _event(self, label: str, kind: str, detail: str) -> None:
        if kind in ('failed', 'exited', 'warning'):
            self._problems.append(f'{label}: {detail}')
            if self._say is not None:
                self._say(f'{label}: {detail}')

    def start(self) -> RunningCells:
        self._thread.start()
        return self

    def wait_ready(self, timeout_s: float) -> bool:
        """Every node ready (lifecycle nodes active) within `timeout_s`."""
        return self.supervisor.wait_all_ready(timeout_s)

    def problems(self) -> list[str]:
        """What went wrong so far (a node that exited, failed or was not ready in time), with its log."""
        return [f'{p} (logs in {self.supervisor.log_dir})' for p in self._problems]

    def stop(self) -> None:
        self.supervisor.request_shutdown(signal.SIGINT)
        self.supervisor.wait_finished(self.supervisor.grace_s + 30)
        self._thread.join(timeout=5)
        self.probe.close()
        if self._quiet is not None:
            self._quiet.close()


@contextmanager
def simulated_cells(cells: list[str], log_dir: str | os.PathLike, *,
                    bag_dir: Callable[[str], Path] | None = None,
                    parameters: Mapping[str, Mapping[str, Any]] | None = None,
                    bringup: str | os.PathLike = SIM_CELLS, ready_timeout_s: float = 120.0,
                    say: Callable[[str], None] | None = None, console: TextIO | None = None,
                    compose: bool | None = None, task: str | None = None) -> Iterator[RunningCells]:
    """Start the cells' nodes from the bringup file, running `task` (None: the file's; a composed cell as
    one process, unless `compose` is False); every process is stopped on leaving the block."""
    running = RunningCells(cell_expansion(cells, bag_dir=bag_dir, parameters=parameters, bringup=bringup,
                                          task=task),
                           Path(log_dir), ready_timeout_s=ready_timeout_s, say=say, console=console,
                           compose=compose)
    running.start()
    try:
        yield running
    finally:
        running.stop()
