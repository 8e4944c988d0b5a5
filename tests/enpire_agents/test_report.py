"""The report: PNG (tree above the curve), self-contained HTML, JSON summary with intervals and seeds."""
import json

from enpire_agents import report
from enpire_agents.team import Team
from tests.enpire_agents.test_team import ScriptedBackend, ScriptedRunner, _config


def _result(tmp_path):
    return Team(_config(), ScriptedRunner(), tmp_path / 'run',
                backends=[ScriptedBackend(0.05, bad_round=2), ScriptedBackend(0.25)], evaluate_ood=True).run()


def test_report_files(tmp_path):
    result = _result(tmp_path)
    paths = report.write(result, tmp_path / 'report', mtu=0.9)
    png = open(paths.png, 'rb').read()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 10_000
    page = open(paths.html).read()
    assert 'data:image/png;base64,' in page and 'git log --graph --all' in page and 'src="http' not in page
    data = json.loads(open(paths.summary).read())
    assert data['reached_bar'] is True and data['mtu'] == 0.9 and data['mru'] == 0.8
    ev = data['evaluation']
    assert ev['pass_at_8']['seeds'] == list(range(10000, 10020))
    assert 0 <= ev['pass_at_1']['low'] <= ev['pass_at_1']['rate'] <= ev['pass_at_1']['high'] <= 1
    assert data['ood_evaluation']['distribution'] == 'out_of_distribution'
    assert data['time_to_success_s'] is not None and data['tokens_to_success'] > 0


def test_success_table_lists_intervals_and_seeds(tmp_path):
    text = report.text_table(report.success_table(_result(tmp_path)))
    assert 'held-out, in distribution' in text and '10000..10019 (20)' in text and '[' in text
