"""Tool-calling regime (code as policy): policies that compose the cell's documented tools.

The tools are the task's (perception: `locate`, `pose_error`, `coverage_estimate`; motion: `push_to`,
`rotate`, `push_pose`, `go_to`, each returning the next step's target); the source a plan becomes is the
task's `tool_policy_template` (`task_learning(task)`). A tool-calling policy is a short plan over the
tools -- which tool to call when -- with a few numbers; `tool_policy_source(plan, params)` writes it, and
`ToolCallingSearch` revises plan and numbers from the verifier's results like an agent would (an LLM
backend can be given the same tool docs instead).

Plans:
    pose            push_pose toward the goal every step (translation and rotation weighed together)
    rotate_first    rotate() while the angle error is above rotate_deg, then push_pose
    translate_first push_to() the goal's COM while it is farther than far_px, then push_pose
"""

from __future__ import annotations

import json
import zlib

import numpy as np

from enpire_agents.regimes import task_learning

PLANS = ('pose', 'rotate_first', 'translate_first')
# name -> (default, low, high)
PARAM_SPACE: dict[str, tuple[float, float, float]] = {
    'angle_scale': (43.0, 15.0, 150.0),
    'standoff': (6.0, 2.0, 14.0),
    'arrive_tol': (7.0, 3.0, 14.0),
    'gain': (0.5, 0.15, 1.2),
    'stroke_min': (4.0, 1.0, 10.0),
    'stroke_max': (30.0, 10.0, 50.0),
    'hysteresis': (0.15, 0.0, 0.4),
    'rotate_deg': (25.0, 8.0, 60.0),
    'far_px': (60.0, 20.0, 150.0),
    'hold_cov': (0.97, 0.95, 0.99),
    'retry_gain': (0.7, 0.4, 1.0),
}
TOOL_OPTIONS = ('angle_scale', 'standoff', 'arrive_tol', 'gain', 'stroke_min', 'stroke_max', 'hysteresis')

TEMPLATE_TITLE = '"""Tool-calling policy ('   # how a written source begins (see the task's template)

def default_params() -> dict[str, float]:
    return {k: v[0] for k, v in PARAM_SPACE.items()}


def tool_policy_source(plan: str = 'pose', params: dict | None = None, task: str | None = None) -> str:
    """A complete policy source composing the task's motion tools (passes code_check.check_code)."""
    if plan not in PLANS:
        raise ValueError(f'unknown plan {plan!r} (known: {PLANS})')
    p = default_params()
    p.update({k: float(v) for k, v in (params or {}).items() if k in PARAM_SPACE})
    literal = '{' + ', '.join(f'{k!r}: {round(v, 4)!r}' for k, v in sorted(p.items())) + '}'
    template = task_learning(task).tool_policy_template
    source = template.format(plan=plan, params=literal, tool_options=TOOL_OPTIONS)
    if not source.startswith(TEMPLATE_TITLE):
        raise ValueError(f'a tool-policy template begins with {TEMPLATE_TITLE!r} (spec_from_code reads it)')
    return source


def spec_from_code(code: str | None) -> tuple[str, dict] | None:
    """(plan, params) read back from a source written by `tool_policy_source`, else None."""
    if not code or not code.startswith(TEMPLATE_TITLE):
        return None
    plan = params = None
    for line in code.splitlines():
        if line.startswith('PLAN = '):
            plan = line.split('=', 1)[1].strip().strip('\'"')
        elif line.startswith('PARAMS = '):
            try:
                params = json.loads(line.split('=', 1)[1].strip().replace("'", '"'))
            except ValueError:
                return None
    return (plan, params) if plan in PLANS and isinstance(params, dict) else None


class ToolCallingSearch:
    """Revises a tool-calling policy: plan changes first (diagnosed from the failures), then numbers."""

    def __init__(self, seed: int = 0):
        self.seed = int(seed)
        self.tried: set[str] = set()

    def propose(
        self, best_code: str | None, failure_reasons: list[str], agent_id: str = 'agent_0', round: int = 0
    ) -> tuple[str, str, dict]:
        """(hypothesis, plan, params) of the next policy to try."""
        rng = np.random.default_rng([self.seed, zlib.crc32(agent_id.encode()), int(round)])
        spec = spec_from_code(best_code)
        if spec is None:
            plan, params, why = 'pose', default_params(), 'start: push_pose toward the goal every step'
        else:
            plan, params = spec
            text = ' '.join(failure_reasons).lower()
            plan, params, why = self._revise(plan, dict(params), text, rng)
        key = json.dumps([plan, sorted((k, round_(v)) for k, v in params.items())])
        for _ in range(10):
            if key not in self.tried:
                break
            params = self._mutate(params, [], rng)
            why += ' (+ random tweak)'
            key = json.dumps([plan, sorted((k, round_(v)) for k, v in params.items())])
        self.tried.add(key)
        return why, plan, params

    def _revise(self, plan, params, text, rng):
        if 'angle' in text and plan != 'rotate_first':
            key = json.dumps(['rotate_first', sorted((k, round_(v)) for k, v in params.items())])
            if key not in self.tried:
                return 'rotate_first', params, 'angle errors remain: rotate() before pushing'
        if ('far from' in text or 'no progress' in text) and plan != 'translate_first':
            key = json.dumps(['translate_first', sorted((k, round_(v)) for k, v in params.items())])
            if key not in self.tried:
                return 'translate_first', params, 'far from goal: push_to() the goal first'
        focus = []
        if 'angle' in text:
            focus += ['angle_scale', 'rotate_deg']
        if 'position' in text or 'close' in text:
            focus += ['gain', 'stroke_min', 'hold_cov']
        if 'fell' in text or 'far from' in text:
            focus += ['standoff', 'arrive_tol', 'stroke_max']
        params = self._mutate(params, focus, rng)
        return plan, params, f'tune {", ".join(sorted(set(focus))) or "tool options"}'

    @staticmethod
    def _mutate(params, focus, rng):
        out = dict(params)
        names = list(PARAM_SPACE)
        for _ in range(int(rng.integers(1, 3))):
            name = (
                focus[int(rng.integers(len(focus)))]
                if focus and rng.random() < 0.7
                else names[int(rng.integers(len(names)))]
            )
            _, lo, hi = PARAM_SPACE[name]
            value = float(out.get(name, PARAM_SPACE[name][0])) * float(np.exp(rng.normal(0.0, 0.25)))
            out[name] = float(np.clip(value, lo, hi))
        return out


def round_(v) -> float:
    return round(float(v), 4)


__all__ = [
    'PLANS',
    'PARAM_SPACE',
    'tool_policy_source',
    'spec_from_code',
    'ToolCallingSearch',
    'default_params',
]
