"""Runs a benchmark matrix on simulated cells over the ROS graph, one run at a time.

Per run: the run's simulated cells start from the bringup file under the supervisor on a fresh
ROS_DOMAIN_ID (`enpire_common.cells`, as the demo starts them), the team runs through
`agent_node.run_on_graph`, and every node process is stopped before the next run. After each run the
matrix's JSON, plot and HTML are rewritten, so a crash loses at most the run in flight; started again on
the same output folder, finished runs are kept and skipped.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from enpire_agents.backends import transcript
from enpire_agents.benchmark import aggregate, report
from enpire_agents.benchmark.aggregate import ReplayStats, RunRecord
from enpire_agents.benchmark.matrix import Matrix, RunSpec
from enpire_agents.experiment import ExperimentConfig
from enpire_agents.team import make_backend

RESULTS = 'results.json'


def transcript_root(matrix: Matrix, out_dir: Path) -> Path:
    return Path(matrix.config.transcript_dir) if matrix.config.transcript_dir else out_dir / 'transcripts'


def build_backends(run: RunSpec, config: ExperimentConfig, run_dir: Path, transcripts: Path) -> list:
    """One backend per agent; an LLM backend records or replays `<transcripts>/<run_id>/agent_<i>.jsonl`."""
    backends = []
    for i, spec in enumerate(config.team.agent_specs()):
        path = transcripts / run.run_id / f'agent_{i}.jsonl'
        if run.transcripts == 'replay':
            backends.append(transcript.ReplayBackend(path))
            continue
        backend = make_backend(spec, i, config.seed, run_dir / 'regimes')
        if run.transcripts == 'record':
            transcript.record(backend, path)
        backends.append(backend)
    return backends


def replay_stats(backends: list) -> ReplayStats | None:
    replayers = [b for b in backends if isinstance(b, transcript.ReplayBackend)]
    if not replayers:
        return None
    return ReplayStats(exchanges=sum(b.served for b in replayers),
                       prompt_mismatches=sum(b.prompt_mismatches for b in replayers),
                       stopped_agents=[f'agent_{i}: {b.stopped}' for i, b in enumerate(replayers)
                                       if b.stopped])


def finished_runs(out_dir: Path, runs: list[RunSpec]) -> dict[str, RunRecord]:
    """Runs of an earlier invocation that finished with the same spec (the ones to skip)."""
    path = out_dir / RESULTS
    if not path.is_file():
        return {}
    try:
        earlier = report.BenchResults.model_validate_json(path.read_text())
    except ValueError:
        return {}
    wanted = {r.run_id: r for r in runs}
    return {r.spec.run_id: r for r in earlier.runs
            if r.status == 'done' and wanted.get(r.spec.run_id) == r.spec}


def run_matrix(matrix: Matrix, out_dir: str | Path, *, say: Callable[[str], None] = print,
               fresh: bool = False, verbose: bool = False) -> report.BenchResults:
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = matrix.runs()
    done = {} if fresh else finished_runs(out_dir, runs)
    if done:
        say(f'resuming: {len(done)} of {len(runs)} runs already finished in {out_dir / RESULTS}')
    records: dict[str, RunRecord] = dict(done)
    results = report.write(report.build(matrix, list(records.values())), out_dir)
    t0 = time.monotonic()
    for index, run in enumerate(runs, start=1):
        if run.run_id in records:
            continue
        say(f'[run {index}/{len(runs)}] {run.run_id}: team of {run.team_size} ({run.backend}) on {run.cells} '
            f'{run.pacing} cell(s), cap {run.cap_s:.0f} s, elapsed {time.monotonic() - t0:.0f} s')
        record = run_one(matrix, run, out_dir, say=say, verbose=verbose)
        records[run.run_id] = record
        ordered = [records[r.run_id] for r in runs if r.run_id in records]
        results = report.write(report.build(matrix, ordered), out_dir)
        tts = f'{record.time_to_success_s:.1f} s' if record.time_to_success_s is not None else '-'
        say(f'[run {index}/{len(runs)}] {run.run_id}: {record.status}'
            f'{" (" + record.error + ")" if record.error else ""}; time to success {tts}, '
            f'tokens {record.tokens}, trials {record.trials}, '
            f'MRU {record.mru if record.mru is None else round(record.mru, 3)}, wall {record.wall_s:.0f} s')
    return results


def run_one(matrix: Matrix, run: RunSpec, out_dir: Path, *, say: Callable[[str], None] = print,
            verbose: bool = False) -> RunRecord:
    """One run on its own cells and ROS domain; any failure becomes a 'failed' record (to re-run later)."""
    from enpire_common.cells import isolated_graph_env, simulated_cells

    from enpire_agents.demo import cell_parameters
    run_dir = out_dir / 'runs' / run.run_id
    if run_dir.exists() and any(run_dir.iterdir()):
        # an earlier attempt at this run was interrupted or failed: keep its bags and logs for audit
        n = 1
        while (kept := run_dir.with_name(f'{run.run_id}.attempt{n}')).exists():
            n += 1
        run_dir.rename(kept)
        say(f'  {run.run_id}: the earlier attempt is kept in {kept}')
    run_dir.mkdir(parents=True, exist_ok=True)
    log = (run_dir / 'progress.log').open('w')
    t0 = time.monotonic()

    def progress(line: str) -> None:
        stamped = f'[{time.monotonic() - t0:7.1f}s] {line}'
        log.write(stamped + '\n')
        log.flush()
        if verbose or not line.startswith(' '):     # trial lines are indented: the log keeps them
            say(f'  {run.run_id} {stamped}')

    try:
        config = matrix.experiment(run)
        backends = build_backends(run, config, run_dir, transcript_root(matrix, out_dir))
        env = isolated_graph_env()
        progress(f'starting {len(config.cells)} simulated cell(s) on ROS_DOMAIN_ID={env["ROS_DOMAIN_ID"]}')
        # DDS discovery among 5 processes per cell grows quickly with the cells: 8 cells (41 participants)
        # took 215 s on 2 cores until every run_trial server was matched; not part of the measured time
        ready_s = 90.0 + 45.0 * len(config.cells)
        with simulated_cells(config.cells, run_dir / 'node_logs', bag_dir=lambda cell: run_dir / 'bags',
                             parameters=cell_parameters(config), task=config.task, ready_timeout_s=ready_s,
                             say=progress) as cells:
            if not cells.wait_ready(ready_s):
                raise RuntimeError(f'the cells did not come up: {cells.problems()}')
            result, paths = _team_on_graph(matrix, run, config, run_dir, int(env['ROS_DOMAIN_ID']),
                                           progress, backends, ready_s)
        return aggregate.run_record(run, result, config.success_bar, replayed=run.transcripts == 'replay',
                                    replay=replay_stats(backends), run_dir=str(run_dir),
                                    report_html=paths.html)
    except Exception as exc:  # noqa: BLE001 - one failed run must not end the matrix
        progress(f'run failed: {type(exc).__name__}: {exc}')
        return RunRecord(spec=run, status='failed', error=f'{type(exc).__name__}: {exc}'[:500],
                         replayed=run.transcripts == 'replay', wall_s=time.monotonic() - t0,
                         run_dir=str(run_dir))
    finally:
        log.close()


def _team_on_graph(matrix, run, config, run_dir, domain_id, progress, backends, ready_s):
    import rclpy
    from enpire_common.executors import SubmitOnceExecutor

    from enpire_agents.agent_node import run_on_graph, wait_for_cells

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    node = rclpy.create_node('enpire_bench_agent', context=context)
    executor = SubmitOnceExecutor(context=context)
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    try:
        missing = wait_for_cells(node, config.cells, timeout_s=ready_s)
        if missing:
            raise RuntimeError(f'the cells did not come up: missing {missing}')
        progress('graph up; the team starts')
        return run_on_graph(node, config, run_dir, config_path=matrix.experiment_path, progress=progress,
                            backends=backends, fleet_time=run.time_axis == 'fleet',
                            wall_cap_s=run.wall_cap_s)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
