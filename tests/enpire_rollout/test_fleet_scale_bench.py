"""bench/fleet_scale.py's own logic, without cells: the participant figures it reports and its final JSON
line, written and printed also when an N could not finish a trial or the bench is stopped."""
from __future__ import annotations

import json

from bench import fleet_scale


def row(n: int, **extra) -> dict:
    return {'cells': n, 'up': True, 'participants': n, 'participants_per_cell': 1,
            'cells_with_one_participant': n, 'extra_participants': {}, 'idle_cores_per_cell': 0.02,
            'active_cores_per_cell': 0.1, 'rtf_mean': 1.0, 'rtf_min': 1.0, 'trials_per_hour': 0.0, **extra}


def test_participants_per_cell_is_the_most_in_any_cell_and_names_the_nodes_behind_a_second():
    figures = fleet_scale.participant_figures({
        'cell_0': {'01': {'/cell_0/sim_cell', '/cell_0/safety'}},
        'cell_1': {'02': {'/cell_1/sim_cell'}, '03': {'/cell_1/recorder'}},
        'cell_2': {}})                                    # not discovered: no participant
    assert figures['participants'] == 3 and figures['participants_per_cell'] == 2
    assert figures['cells_with_one_participant'] == 1
    assert figures['extra_participants'] == {
        'cell_1': {'02': ['/cell_1/sim_cell'], '03': ['/cell_1/recorder']}}


def test_the_summary_takes_the_worst_n_and_says_whether_every_cell_had_one():
    rows = [row(1), row(2, participants_per_cell=2, cells_with_one_participant=1), row(32, rtf_mean=0.3)]
    summary = fleet_scale.summary(rows)
    assert summary['participants_per_cell'] == 2 and summary['one_participant_every_cell'] is False
    assert summary['cells_up_32'] is True and summary['rtf_32_cells'] == 0.3
    assert fleet_scale.summary([row(1), row(2)])['one_participant_every_cell'] is True


def test_the_final_line_comes_when_the_bench_is_stopped_mid_run(tmp_path, monkeypatch, capsys):
    def measure(n, args, work, say):
        if n == 2:
            raise KeyboardInterrupt          # SIGINT (SIGTERM raises SystemExit) while N = 2 runs
        return row(n, up_s=1.0, processes=n, participant_ports=n, time_source=['clock'], load_avg_1m=1.0)
    monkeypatch.setattr(fleet_scale, 'measure', measure)
    # the bench's process-wide handlers (SIGTERM, SIGINT, SIGUSR1) are not the test process's to change
    monkeypatch.setattr(fleet_scale.signal, 'signal', lambda *args: None)
    monkeypatch.setattr(fleet_scale.faulthandler, 'register', lambda *args, **kwargs: None)
    monkeypatch.setattr(fleet_scale, 'plot', lambda rows, path: (_ for _ in ()).throw(RuntimeError('no')))
    monkeypatch.setattr('sys.argv', ['fleet_scale.py', '--cells', '1', '2', '4', '--out', str(tmp_path)])
    assert fleet_scale.main() == 143
    final = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert final['interrupted'].startswith('interrupted at N=2')
    assert [r['cells'] for r in final['per_n']] == [1] and final['participants_per_cell'] == 1
    assert json.loads((tmp_path / 'fleet_scale.json').read_text()) == final
