"""The cell's reset and verifier over the ROS graph, for the agents' tools (`cell_tools.CellControl`).

The node must be spun by the caller's executor. A cell whose servers are not on the graph answers
`unreachable()` with the reason within `discovery_s` (first look) or `probe_s` seconds, so a tool call
never hangs on a cell that is not up.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from enpire_common import names
from enpire_common.action_client import ActionClient

from enpire_agents.cell_tools import CellUnreachable, ResetReport, VerifyReport
from enpire_interfaces.action import ResetCell, RunTrial
from enpire_interfaces.msg import FusedVerdict
from enpire_interfaces.srv import Verify

VERDICTS = {FusedVerdict.SUCCESS: 'success', FusedVerdict.FAILURE: 'failure',
            FusedVerdict.UNCERTAIN: 'uncertain'}


class GraphCellControl:
    def __init__(self, node, cells: list[str], probe_s: float = 3.0, call_timeout_s: float = 120.0,
                 discovery_s: float = 15.0):
        self.node = node
        self.probe_s, self.call_timeout_s = probe_s, call_timeout_s
        # A fresh participant may need several seconds to discover a cell on a loaded machine: the first
        # look at a cell waits `discovery_s`, later ones (the cell seen before) only `probe_s`.
        self.discovery_s = discovery_s
        self._seen: set[str] = set()
        self._trial = {c: ActionClient(node, RunTrial, names.cell_name(c, names.RUN_TRIAL)) for c in cells}
        self._reset = {c: ActionClient(node, ResetCell, names.cell_name(c, names.RESET)) for c in cells}
        self._verify = {c: node.create_client(Verify, names.cell_name(c, names.VERIFY)) for c in cells}

    def unreachable(self, cell: str) -> str:
        """'' when the cell's run_trial, reset and verify servers are on the graph, else which are not."""
        deadline = time.monotonic() + (self.probe_s if cell in self._seen else self.discovery_s)
        missing = ['run_trial', 'reset', 'verify']
        while missing and time.monotonic() < deadline:
            ready = {'run_trial': self._trial[cell].server_is_ready(),
                     'reset': self._reset[cell].server_is_ready(),
                     'verify': self._verify[cell].service_is_ready()}
            missing = [name for name in missing if not ready[name]]
            if missing:
                time.sleep(0.1)
        if not missing:
            self._seen.add(cell)
            return ''
        return (f'{cell} has no {", ".join(missing)} server on the graph (ROS_DOMAIN_ID '
                f'{os.environ.get("ROS_DOMAIN_ID", "0")}): is the cell up?')

    def reset(self, cell: str, task: str, seed: int, distribution: str) -> ResetReport:
        t0 = time.monotonic()
        goal = ResetCell.Goal(task=task, seed=int(seed), distribution=distribution, max_tries=3)
        handle = _wait(self._reset[cell].send_goal_async(goal), 30.0)
        if handle is None or not handle.accepted:
            raise CellUnreachable(f'{cell} did not accept the reset goal')
        wrapped = _wait(handle.get_result_async(), self.call_timeout_s)
        if wrapped is None:
            handle.cancel_goal_async()
            raise CellUnreachable(f'{cell} gave no reset result within {self.call_timeout_s:.0f} s')
        r = wrapped.result
        errors = {str(n): float(e) for n, e in zip(r.error_names, r.errors, strict=False)}
        return ResetReport(success=r.success, tries_used=r.tries_used, errors=errors,
                           failure_reason=r.failure_reason, seconds=time.monotonic() - t0)

    def verify(self, cell: str, task: str) -> VerifyReport:
        t0 = time.monotonic()
        response = _wait(self._verify[cell].call_async(Verify.Request(task=task, save_evidence=True)),
                         self.call_timeout_s)
        if response is None:
            raise CellUnreachable(f'{cell} gave no verdict within {self.call_timeout_s:.0f} s')
        if not response.ok:
            return VerifyReport(verdict='uncertain', reason=f'verify refused the request: {response.error}',
                                seconds=time.monotonic() - t0)
        v = response.verdict
        evidence = sorted(Path(v.evidence_path).glob('*.png')) if v.evidence_path else []
        cameras = [f'{c.camera}: {VERDICTS.get(c.state, "uncertain")} score {c.score:.3f} {c.reason}'.strip()
                   for c in v.cameras]
        return VerifyReport(verdict=VERDICTS.get(v.state, 'uncertain'), score=v.score,
                            confidence=v.confidence, reason=v.reason, cameras=cameras,
                            evidence_png=evidence[0].read_bytes() if evidence else None,
                            seconds=time.monotonic() - t0)

    def close(self) -> None:
        for client in [*self._trial.values(), *self._reset.values()]:
            client.destroy()
        for client in self._verify.values():
            self.node.destroy_client(client)


def _wait(future, timeout: float):
    event = threading.Event()
    future.add_done_callback(lambda _: event.set())
    return future.result() if event.wait(timeout) else None
