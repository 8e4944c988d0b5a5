"""Helpers for graph tests: nodes in real subprocesses, and a spun client node in the test process."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


class NodeProcesses:
    """Starts node processes in their own process groups so teardown leaves no orphans (stopped as the
    supervisor stops its processes)."""

    def __init__(self, log_dir: Path):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        """Run `python argv...` (a module with -m, or a script) with the test's environment."""
        log = open(self.log_dir / f'{name}.log', 'w')
        proc = subprocess.Popen(
            [sys.executable, *argv], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, 'PYTHONUNBUFFERED': '1', 'PYTHONFAULTHANDLER': '1', **(env or {})},
            start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        return (self.log_dir / f'{name}.log').read_text()

    def wait_exit(self, name: str, proc: subprocess.Popen, timeout: float = 60.0) -> int:
        """The exit code of `proc`; one still running after `timeout` s is aborted (SIGABRT: the fault
        handler writes every thread's stack to its log) and the test fails with that log."""
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            proc.wait(timeout=30)
            stacks = self.log(name)[-6000:]
            raise AssertionError(f'{name} still ran {timeout:.0f} s later; its stacks:\n{stacks}') from None

    def kill(self, proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        """SIGINT to every node's process group, 5 s, then SIGKILL (the supervisor's stop)."""
        from enpire_common.supervisor import stop_groups

        stop_groups([proc for _, proc in self.procs], signal.SIGINT, grace_s=5.0)


def start_cell_nodes(procs: NodeProcesses, cell: str, *, bag_dir: Path, parameters: dict | None = None,
                     only: set[str] | None = None, env: dict | None = None,
                     label=None) -> dict[str, subprocess.Popen]:
    """The nodes of one simulated cell from the bringup file (sim_cells), as node processes of `procs`
    (log `<cell>.<node>` unless `label(node)` names it); `only` picks nodes by name, `parameters` sets
    per node name; managed nodes autostart (no lifecycle manager here). For a test that kills and
    restarts single nodes; the `sim_cells` fixture starts whole cells under the supervisor."""
    from enpire_common.cells import cell_expansion

    started = {}
    for node in cell_expansion([cell], bag_dir=lambda _cell: bag_dir, parameters=parameters).nodes:
        if only is not None and node.name not in only:
            continue
        if node.lifecycle:
            node.parameters['autostart'] = True
        started[node.name] = procs.start(label(node) if label else node.label, node.argv(sys.executable)[1:],
                                         env={**node.env, **(env or {})})
    return started


class RosTestNode:
    """A client node in the test process with its own context and a background executor."""

    def __init__(self, name: str):
        import rclpy
        from enpire_common.executors import SubmitOnceExecutor

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SubmitOnceExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.spin_error: BaseException | None = None
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except BaseException as exc:  # noqa: BLE001 - kept, and raised by the next wait
            self.spin_error = exc
            raise

    def wait_for(self, predicate, timeout: float = 30.0, what: str = 'condition'):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.spin_error is not None:     # nothing reaches this node any more: no use waiting
                raise RuntimeError(f'waiting for {what}: the test node stopped spinning: '
                                   f'{self.spin_error!r}') from self.spin_error
            time.sleep(0.02)
        raise TimeoutError(f'timed out after {timeout:.0f}s waiting for {what}')

    def wait_future(self, future, timeout: float = 30.0, what: str = 'future'):
        self.wait_for(future.done, timeout, what)
        return future.result()

    def call(self, client, request, timeout: float = 30.0, what: str = 'service answer',
             resend_s: float = 5.0):
        """Call an idempotent service, sending again while no answer comes (enpire_common.service_call: the
        first request to a server that has just started can lose itself or its answer)."""
        from enpire_common.service_call import call_resending

        return self.wait_future(call_resending(client, request, resend_s=resend_s, give_up_s=timeout),
                                timeout, what)

    def wait_taking_goals(self, client, probe_goal, timeout: float = 120.0, resend_s: float = 5.0) -> None:
        """Wait until the action server of `client` takes goals: `probe_goal`, one it refuses with a reason
        (an invalid goal, never run), is sent until one is accepted and its result arrives. A fresh server
        may not be ready yet, and a request that reaches it before its reply writers have matched our
        readers loses its answer (a discovery race, long on a busy machine): the first real goal is sent
        only once answers have come back on the goal's and the result's paths."""
        def taken() -> bool:
            future = client.send_goal_async(probe_goal)
            try:
                handle = self.wait_future(future, resend_s, 'the probe goal answered')
            except TimeoutError:
                return False          # lost or not served yet: the probe is harmless, sent again
            if not handle.accepted:
                return False          # a server that takes no goals yet
            for _ in range(6):
                try:
                    self.wait_future(handle.get_result_async(), resend_s, 'the probe goal refused')
                    return True
                except TimeoutError:
                    continue          # get_result is idempotent: asked again
            return False
        self.wait_for(taken, timeout, f'{client._action_name} taking goals')

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self._thread.join(timeout=30)    # its spin ends before the node and the context go under it
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
