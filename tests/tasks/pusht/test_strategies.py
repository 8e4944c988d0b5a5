"""The strategy library: composed policies compile, respect the contract's imports, read back, and
the library's strongest composition solves Push-T on a few seeds in the pure simulator."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from enpire_task_pusht import strategies as S

from enpire_agents import local_eval
from enpire_rollout.policy_runtime import allowed_imports


def _all_structures():
    names = list(S.SLOT_ORDER)
    for combo in itertools.product(*(list(S.SLOTS[n]) for n in names)):
        yield S.Genome(dict(zip(names, combo, strict=True)), {}).full()


def test_every_composition_compiles_and_imports_only_allowed_modules():
    for genome in _all_structures():
        code = S.compose(genome)
        compile(code, '<policy>', 'exec')
        assert S.check_imports(code, allowed_imports('pusht')) == []
        assert S.genome_from_code(code) == genome


def test_import_check_catches_forbidden_imports():
    assert S.check_imports('import os\nimport numpy as np\n', allowed_imports('pusht')) == ['os']
    assert S.check_imports('from subprocess import run\n', allowed_imports('pusht')) == ['subprocess']
    assert S.check_imports('from enpire_task_pusht import policy_tools\n', allowed_imports('pusht')) == []


def test_parameters_are_clamped_to_their_ranges():
    rng = np.random.default_rng(0)
    for name, (default, lo, hi, kind, doc) in S.PARAM_SPECS.items():
        assert lo <= default <= hi and doc
        for _ in range(20):
            v = S.mutate_param(name, default, rng, scale=3.0)
            assert lo <= v <= hi
            assert isinstance(v, int) if kind == 'int' else isinstance(v, float)


def test_policy_follows_the_contract_in_the_sim():
    code = S.compose(S.default_genome())
    res = local_eval.evaluate(code, [3], attempts=2, perception='gt', task='pusht')
    assert res.n == 1 and res.records[0].attempt_scores


@pytest.mark.parametrize('perception', ['noisy_gt'])
def test_tuned_policy_solves_a_few_seeds(perception):
    code = S.compose(S.default_genome())
    res = local_eval.evaluate(code, range(100, 106), attempts=8, perception=perception, task='pusht')
    assert res.successes_at(8) >= 5, res.summary()
    assert res.successes_at(1) >= 4, res.summary()


def test_naive_start_is_clearly_worse():
    seeds = range(100, 106)
    naive = local_eval.evaluate(S.compose(S.seed_genome()), seeds, attempts=1, perception='gt',
                                task='pusht')
    tuned = local_eval.evaluate(S.compose(S.default_genome()), seeds, attempts=1, perception='gt',
                                task='pusht')
    assert tuned.successes_at(1) > naive.successes_at(1)
