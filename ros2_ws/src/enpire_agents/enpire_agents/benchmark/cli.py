"""`enpire bench <matrix.yaml>`: run a benchmark matrix and write its JSON, plot and HTML report.

    enpire bench bench/autoenvbench.yaml [--out runs/bench_<time>] [--replay DIR] [--fresh] [--dry-run]
                 [--team-sizes 1 4] [--repeats 1] [--cap 600] [--time-cap 3600] [--pacing as_fast]

It ends with one JSON line: `reached_<n>`, `median_time_to_success_s_<n>`, `mru_<n>`, `mtu_<n>`,
`tokens_<n>` per team size and `speedup_<smallest>_to_<largest>` (`aggregate.headline`).

Started again with the same `--out`, finished runs are kept and the rest run. `--replay DIR` serves
every LLM backend from the transcripts recorded under DIR (no keys, no network); such runs are marked
replayed. `--dry-run` validates the matrix and lists its runs.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('matrix', help='benchmark matrix YAML')
    parser.add_argument('--out', default=None, help='output folder (default runs/bench_<name>_<time>)')
    parser.add_argument('--replay', default=None, metavar='DIR',
                        help='serve LLM backends from the transcripts recorded under DIR')
    parser.add_argument('--fresh', action='store_true', help='ignore finished runs in --out; run all again')
    parser.add_argument('--dry-run', action='store_true', help='validate and list the runs, run nothing')
    parser.add_argument('--verbose', action='store_true', help='show every trial, not only every idea')
    parser.add_argument('--team-sizes', type=int, nargs='+', help='replace the matrix\'s team sizes')
    parser.add_argument('--repeats', type=int, help='replace the matrix\'s repeats')
    parser.add_argument('--cap', type=float, help='replace the per-run wall-clock cap, seconds')
    parser.add_argument('--time-cap', type=float, help='replace the per-run cap on the time axis, seconds')
    parser.add_argument('--pacing', choices=['real_time', 'as_fast'], help='replace the matrix\'s pacing')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from enpire_agents.benchmark import report
    from enpire_agents.benchmark.matrix import MatrixConfigError, load_matrix
    from enpire_agents.report import text_table
    try:
        matrix = load_matrix(args.matrix)
        fields = {'team_sizes': args.team_sizes, 'repeats': args.repeats, 'wall_clock_cap_s': args.cap,
                  'pacing': args.pacing, 'time_cap_s': args.time_cap}
        if any(v is not None for v in fields.values()):
            matrix = matrix.with_fields(**{k: v for k, v in fields.items() if v is not None})
        if args.replay:
            matrix = matrix.with_replay(args.replay)
    except MatrixConfigError as exc:
        print(f'enpire bench: {exc}', file=sys.stderr)
        return 2
    runs = matrix.runs()
    if args.dry_run:
        for run in runs:
            print(f'{run.run_id}: team {run.team_size} on {run.cells} {run.pacing} cell(s), seed {run.seed}, '
                  f'cap {run.cap_s:.0f} s on the {run.time_axis} clock, transcripts {run.transcripts}')
        print(f'{len(runs)} runs; at most {len(runs) * matrix.config.wall_clock_cap_s / 3600:.1f} h of caps')
        return 0
    out = Path(args.out or f'runs/bench_{matrix.config.name}_{time.strftime("%Y%m%d_%H%M%S")}').resolve()
    t0 = time.monotonic()

    def say(line: str) -> None:
        print(f'[{time.monotonic() - t0:7.1f}s] {line}', flush=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # SystemExit runs the finally: nodes stopped
    from enpire_agents.benchmark.runner import run_matrix
    say(f'{matrix.config.name}: {len(runs)} runs into {out}')
    try:
        results = run_matrix(matrix, out, say=say, fresh=args.fresh, verbose=args.verbose)
    except KeyboardInterrupt:
        say(f'interrupted: finished runs are kept in {out}; run the same command to resume')
        return 130
    print()
    print(text_table(report.group_rows(results)))
    print()
    for line in results.closing_note:
        print(line)
    where = report.paths(results, out)
    print(f'\njson:   {where.json_path}\nplot:   {where.png}\nreport: {where.html}')
    from enpire_agents.benchmark.aggregate import headline
    ours = headline(results.groups)
    for key, value in matrix.config.article.items():
        print(f'{key}: {ours.get(key)} here, {value} in the article')
    line = {**ours, **{f'article_{k}': v for k, v in matrix.config.article.items()},
            'time_axis': matrix.config.time_axis,
            'runs_failed': sum(r.status != 'done' for r in results.runs),
            'bench_wall_s': round(time.monotonic() - t0, 1), 'results': where.json_path}
    print(json.dumps(line))
    return 0 if all(r.status == 'done' for r in results.runs) else 1
