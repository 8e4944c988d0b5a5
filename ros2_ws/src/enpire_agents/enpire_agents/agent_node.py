"""The agent node: runs an experiment's team against the cells' `run_trial` actions and writes the report.

    python -m enpire_agents.agent_node --ros-args -p experiment:=config/demo.yaml -p output_dir:=runs/demo

Parameters: `experiment` (YAML path, default the package's demo.yaml), `output_dir`, `evaluate_ood`.
Publishes one line per event on `agents/status` (std_msgs/String) and a summary on /diagnostics.
The loop itself lives in `enpire_agents.team`; this file only wires it to the graph.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from enpire_common import names
from enpire_common.node_main import run_node
from enpire_common.parameters import describe
from rclpy.node import Node
from std_msgs.msg import String

from enpire_agents import guard, report
from enpire_agents.backends.base import PolicyBackend
from enpire_agents.experiment import ExperimentConfig, config_dir, load_experiment
from enpire_agents.team import FleetTrialRunner, Team, TeamResult


def wait_for_cells(node: Node, cells: list[str], timeout_s: float = 60.0) -> list[str]:
    """Wait until every cell's run_trial action server is on the graph; returns the cells still missing."""
    from enpire_common.action_client import ActionClient

    from enpire_interfaces.action import RunTrial
    clients = {c: ActionClient(node, RunTrial, names.cell_name(c, names.RUN_TRIAL)) for c in cells}
    deadline = time.monotonic() + timeout_s
    missing = list(cells)
    while missing and time.monotonic() < deadline:
        missing = [c for c in missing if not clients[c].server_is_ready()]
        time.sleep(0.2)
    for client in clients.values():
        client.destroy()
    return missing


def run_on_graph(node: Node, config: ExperimentConfig, out_dir: Path, *,
                 config_path: str | Path | None = None,
                 progress: Callable[[str], None] | None = None, evaluate_ood: bool = False,
                 backends: Sequence[PolicyBackend] | None = None, fleet_time: bool = False,
                 wall_cap_s: float | None = None) -> tuple[TeamResult, report.ReportPaths]:
    """The team through FleetTrialRunner on `node` (which must be spun by the caller), then the report.

    `backends`: one per agent, built by the caller (e.g. wrapped to record transcripts); by default the
    team builds them from the experiment's agent specs. `fleet_time`: the team's time axis is the fleet
    clock (`enpire_rollout.scheduler.FleetClock`: trials placed by their cell-time durations), its time
    budget is on that clock and `wall_cap_s` bounds the run on the wall clock."""
    out_dir = Path(out_dir)
    protected = guard.ProtectedFiles(guard.default_protected_paths(config_path))
    runner = FleetTrialRunner(node, config.cells, out_dir / 'policies', task=config.task,
                              time_budget_s=config.trial_time_budget_s, record=config.record,
                              progress=progress, fleet_time=fleet_time)
    clock = {'clock': runner.clock(), 'clock_name': 'fleet'} if fleet_time else {}
    from enpire_agents.cell_link import GraphCellControl
    cell_control = GraphCellControl(node, config.cells)      # reset_cell / verify for tool-driven agents
    try:
        team = Team(config, runner, out_dir, progress=progress, protected=protected,
                    evaluate_ood=evaluate_ood, backends=backends, cell_control=cell_control,
                    wall_cap_s=wall_cap_s, **clock)
        result = team.run()
    finally:
        cell_control.close()
        runner.close()
    return result, report.write(result, out_dir)


class AgentNode(Node):
    """Publishes the team's progress; the team runs in a worker thread while the executor spins."""

    def __init__(self, **node_options):
        super().__init__('enpire_agent', **node_options)
        self.experiment = self.declare_parameter('experiment', str(config_dir() / 'demo.yaml'), describe(
            'the experiment YAML (cells, backends, budgets, seeds)', read_only=True)).value
        self.output_dir = self.declare_parameter('output_dir', 'runs/agent', describe(
            'where the team writes its report, hypothesis repository and transcripts', read_only=True)).value
        self.evaluate_ood = bool(self.declare_parameter('evaluate_ood', False, describe(
            'also evaluate the final policy on out-of-distribution seeds', read_only=True)).value)
        self.status_pub = self.create_publisher(String, names.AGENT_STATUS, 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        self.config = load_experiment(self.experiment)
        self.result: TeamResult | None = None
        self.done = threading.Event()

    def publish_status(self, line: str) -> None:
        """One progress line on the status topic and in the log."""
        self.get_logger().info(line)
        self.status_pub.publish(String(data=line))

    def run_team(self) -> None:
        """Wait for the cells, run the team, write the report, publish the outcome."""
        try:
            missing = wait_for_cells(self, self.config.cells)
            if missing:
                self.publish_status(f'cells without run_trial: {missing}; giving up')
                return
            self.result, paths = run_on_graph(self, self.config, Path(self.output_dir),
                                              config_path=self.experiment, progress=self.publish_status,
                                              evaluate_ood=self.evaluate_ood)
            self.publish_status(f'report: {paths.png} {paths.html} {paths.summary}')
            self._publish_diagnostics(self.result)
        finally:
            self.done.set()

    def _publish_diagnostics(self, result: TeamResult) -> None:
        level = DiagnosticStatus.OK if result.reached_bar else DiagnosticStatus.WARN
        values = [KeyValue(key='reached_bar', value=str(result.reached_bar)),
                  KeyValue(key='stop_reason', value=result.stop_reason),
                  KeyValue(key='wall_s', value=f'{result.wall_s:.1f}')]
        if result.evaluation:
            values += [KeyValue(key='pass_at_1', value=result.evaluation.pass_at_1.fmt()),
                       KeyValue(key=f'pass_at_{result.evaluation.k}',
                                value=result.evaluation.pass_at_k.fmt())]
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [DiagnosticStatus(level=level, name='enpire_agents: team', message=result.stop_reason,
                                       hardware_id=self.config.name, values=values)]
        self.diag_pub.publish(msg)


def _run_team(node: AgentNode, executor) -> int:
    """Spin while the team runs in a worker thread; exit 0 when it reached the bar, 1 otherwise."""
    worker = threading.Thread(target=node.run_team, daemon=True)
    worker.start()
    while rclpy.ok() and not node.done.is_set():
        executor.spin_once(timeout_sec=0.2)
    worker.join(timeout=1.0)
    return 0 if node.result is not None and node.result.reached_bar else 1


def main(args=None) -> int:
    return run_node(AgentNode, args=args, spin=_run_team)


if __name__ == '__main__':
    raise SystemExit(main())
