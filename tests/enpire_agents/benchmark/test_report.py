"""The matrix's JSON, plot and one self-contained HTML page."""
import base64
import re

from enpire_agents.benchmark import report
from enpire_agents.benchmark.aggregate import ReplayStats, RunRecord
from enpire_agents.benchmark.matrix import load_matrix


def _results(write_matrix, replayed=False):
    matrix = load_matrix(write_matrix(repeats=2))
    records = [RunRecord(spec=s, status='done', reached_bar=True, time_to_success_s=100.0 / s.team_size,
                         tokens=500 * s.team_size, wall_s=120.0, token_throughput=500 * s.team_size / 120.0,
                         mru=0.4, curve=[(0.0, 0.0), (100.0 / s.team_size, 1.0)], replayed=replayed,
                         replay=ReplayStats(exchanges=3) if replayed else None)
               for s in matrix.runs()[:-1]]
    records.append(RunRecord(spec=matrix.runs()[-1], status='failed',
                             error='RuntimeError: cells <b>down</b>'))
    return matrix, report.build(matrix, records)


def test_html_is_self_contained_with_the_plot_and_tables(write_matrix, tmp_path):
    _, results = _results(write_matrix)
    report.write(results, tmp_path / 'out')
    page = (tmp_path / 'out' / 'tiny_bench.html').read_text()
    assert not re.search(r'(src|href)\s*=\s*["\'](?!data:)', page)     # nothing fetched from elsewhere
    assert '<script' not in page and '<link' not in page
    image = re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1)
    assert base64.b64decode(image).startswith(b'\x89PNG')
    assert 'held-out confirmation is OFF' in page and 'Closing note' in page
    assert 'cells &lt;b&gt;down&lt;/b&gt;' in page and 'REPLAYED' not in page


def test_json_holds_every_run_groups_and_notes(write_matrix, tmp_path):
    matrix, results = _results(write_matrix)
    report.write(results, tmp_path)
    loaded = report.BenchResults.model_validate_json((tmp_path / 'results.json').read_text())
    assert loaded.runs_planned == 6 and len(loaded.runs) == 6
    assert [g.team_size for g in loaded.groups] == [1, 4, 8]
    assert loaded.groups[2].failed_runs == 1 and loaded.groups[2].reached.n == 1
    assert any('1 run(s) failed' in n for n in loaded.notes)
    assert loaded.groups[1].mtu.mean is not None and loaded.closing_note


def test_replayed_runs_are_marked(write_matrix, tmp_path):
    _, results = _results(write_matrix, replayed=True)
    report.write(results, tmp_path)
    page = (tmp_path / 'tiny_bench.html').read_text()
    assert 'class="replayed">REPLAYED' in page and '[replayed]' not in page   # the legend is in the PNG
    assert all(r.replayed for r in results.runs if r.status == 'done')
    assert results.notes[0].startswith('REPLAYED') and results.groups[0].replayed
    rows = report.run_rows(results)
    assert rows[1][2].startswith('yes')
