"""PolicyBackends for the learning regimes: each proposal is a policy source for the same sandbox.

    BehaviourCloningBackend(bag_root, work_dir)   regime 'behaviour_cloning'  (successful trials' bags)
    OfflineRLBackend(bag_root, work_dir)          regime 'offline_rl'         (all bags, AWR on verdicts)
    OnlineRLBackend(work_dir, timesteps=...)      regime 'online_rl'          (SB3 PPO on the task's gym env)
    ToolCallingBackend()                          regime 'tool_calling'       (plans over the task's tools)
    RegimeChooser({'tool_calling': ..., ...})     picks the regime per hypothesis from the results so far

Learned regimes write weights to `work_dir` (world-readable .npz) and return a source that loads them
through the task's numpy runtime, pinned by sha256; every Proposal carries its `regime`, which the
team loop records on the hypothesis-tree node. A learned regime with nothing to learn from (no bag yet)
falls back to a tool-calling proposal and says so in the hypothesis.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from enpire_agents.backends.base import ImprovementRequest, Proposal, TrialSummary
from enpire_agents.regimes import tool_calling

REGIMES = ('behaviour_cloning', 'offline_rl', 'online_rl', 'tool_calling')


def _tokens(request: ImprovementRequest, hypothesis: str, code: str) -> dict:
    prompt = len(request.contract) + len(request.best_code or '') + 200 * len(request.history)
    return {'tokens_in': max(1, prompt // 4), 'tokens_out': max(1, (len(hypothesis) + len(code)) // 4)}


class ToolCallingBackend:
    name = 'tool_calling'

    def __init__(self, seed: int = 0):
        self.search = tool_calling.ToolCallingSearch(seed)

    def propose(self, request: ImprovementRequest) -> Proposal:
        best = request.best_code if tool_calling.spec_from_code(request.best_code) else None
        reasons = list(request.best.failure_reasons) if (best and request.best) else []
        if request.history:
            reasons += request.history[-1].failure_reasons
        why, plan, params = self.search.propose(best, reasons, request.agent_id, request.round)
        code = tool_calling.tool_policy_source(plan, params, task=request.task)
        hypothesis = f'tool calling ({plan}): {why}'[:400]
        return Proposal(
            hypothesis=hypothesis,
            code=code,
            parent=request.best.node_id if best and request.best else None,
            regime='tool_calling',
            **_tokens(request, hypothesis, code),
        )


class _LearnedBackend:
    regime = ''
    name = ''

    def __init__(self, work_dir: str | Path, seed: int = 0, max_seconds: float = 60.0):
        self.work_dir = Path(work_dir)
        self.seed = int(seed)
        self.max_seconds = float(max_seconds)
        self.fallback = ToolCallingBackend(seed)
        self.last_result = None

    def _rng(self, request):
        return np.random.default_rng([self.seed, zlib.crc32(request.agent_id.encode()), int(request.round)])

    def _fallback(self, request, why: str) -> Proposal:
        p = self.fallback.propose(request)
        return p.model_copy(
            update={'hypothesis': f'{self.regime} not possible yet ({why}); {p.hypothesis}'[:400]}
        )

    def _proposal(self, request, result, hypothesis: str) -> Proposal:
        from enpire_agents.regimes.bc import learned_policy_source

        self.last_result = result
        code = learned_policy_source(result.path, result.sha256, self.regime, hypothesis, task=request.task)
        return Proposal(
            hypothesis=hypothesis[:400],
            code=code,
            parent=None,
            regime=self.regime,
            **_tokens(request, hypothesis, code),
        )


class _BagLearnedBackend(_LearnedBackend):
    """A regime that learns from the recorded trial bags under `bag_root`."""

    def __init__(
        self,
        bag_root: str | Path,
        work_dir: str | Path,
        seed: int = 0,
        max_seconds: float = 60.0,
        epochs: int = 150,
    ):
        super().__init__(work_dir, seed, max_seconds)
        self.bag_root = Path(bag_root)
        self.epochs = epochs


class BehaviourCloningBackend(_BagLearnedBackend):
    """Clones the safe commands of successful trials (varies what it keeps and the net per round)."""

    regime = name = 'behaviour_cloning'
    VARIANTS = (
        {'successful_attempts_only': False, 'hidden': (128, 128)},
        {'successful_attempts_only': True, 'hidden': (128, 128)},
        {'successful_attempts_only': False, 'hidden': (256, 256)},
    )

    def propose(self, request: ImprovementRequest) -> Proposal:
        from enpire_agents.regimes.bc import train_bc
        from enpire_agents.regimes.dataset import build_dataset

        v = self.VARIANTS[request.round % len(self.VARIANTS)]
        ds = build_dataset(
            self.bag_root, only_success=True, successful_attempts_only=v['successful_attempts_only'],
            task=request.task,
        )
        if len(ds) == 0:
            return self._fallback(request, f'no successful trial in {self.bag_root}')
        res = train_bc(
            ds,
            self.work_dir,
            name=f'bc_{request.agent_id}_r{request.round}',
            hidden=v['hidden'],
            epochs=self.epochs,
            seed=self.seed + request.round,
            max_seconds=self.max_seconds,
        )
        hyp = (
            f'behaviour cloning: MLP {v["hidden"]} on {res.samples} steps of {res.trials} successful trials '
            f'({"successful attempts only" if v["successful_attempts_only"] else "whole trials"}), '
            f'loss {res.final_loss:.3f}'
        )
        return self._proposal(request, res, hyp)


class OfflineRLBackend(_BagLearnedBackend):
    """AWR on every recorded trial with the verifier's reward (varies the temperature per round)."""

    regime = name = 'offline_rl'
    BETAS = (0.1, 0.05, 0.3)

    def propose(self, request: ImprovementRequest) -> Proposal:
        from enpire_agents.regimes.dataset import build_dataset
        from enpire_agents.regimes.offline_rl import train_awr

        ds = build_dataset(self.bag_root, only_success=False, task=request.task)
        if len(ds) == 0:
            return self._fallback(request, f'no trial bag in {self.bag_root}')
        beta = self.BETAS[request.round % len(self.BETAS)]
        res = train_awr(
            ds,
            self.work_dir,
            name=f'awr_{request.agent_id}_r{request.round}',
            beta=beta,
            epochs=self.epochs,
            seed=self.seed + request.round,
            max_seconds=self.max_seconds,
        )
        hyp = (
            f'offline RL (AWR, beta {beta}): {res.samples} steps of {res.trials} trials '
            f'({res.info.get("successful_trials", 0)} successful), verifier reward, '
            f'mean weight {res.info.get("weight_mean", 0):.2f}'
        )
        return self._proposal(request, res, hyp)


class OnlineRLBackend(_LearnedBackend):
    """SB3 PPO on the simulated cell; each round trains a fresh actor with a larger budget."""

    regime = name = 'online_rl'

    def __init__(
        self,
        work_dir: str | Path,
        seed: int = 0,
        timesteps: int = 20_000,
        max_seconds: float = 120.0,
        n_steps: int = 2048,
    ):
        super().__init__(work_dir, seed, max_seconds)
        self.timesteps = int(timesteps)
        self.n_steps = int(n_steps)
        self.stats: dict = {}

    def propose(self, request: ImprovementRequest) -> Proposal:
        from enpire_agents.regimes.online_rl import train_ppo

        steps = self.timesteps * (1 + request.round)
        res, self.stats = train_ppo(
            self.work_dir,
            timesteps=steps,
            seed=self.seed + request.round,
            name=f'ppo_{request.agent_id}_r{request.round}',
            task=request.task,
            max_seconds=self.max_seconds,
            n_steps=self.n_steps,
        )
        hyp = (
            f'online RL (SB3 PPO): {self.stats["steps"]} sim steps, {self.stats["episodes"]} episodes, '
            f'{self.stats["successes"]} successes while training'
        )
        return self._proposal(request, res, hyp)


def _rate(s: TrialSummary) -> float:
    return (s.successes_at_1 + s.successes_at_k) / (2.0 * max(1, s.trials)) + 1e-3 * s.mean_score


class RegimeChooser:
    """Chooses the regime per hypothesis: each regime once, then mostly the regime of the best node."""

    name = 'regime_chooser'

    def __init__(self, backends: dict, seed: int = 0, explore: float = 0.3):
        unknown = set(backends) - set(REGIMES)
        if unknown:
            raise ValueError(f'unknown regimes {sorted(unknown)} (known: {REGIMES})')
        self.backends = dict(backends)
        self.seed = int(seed)
        self.explore = float(explore)
        self.regime_of: dict[str, str] = {}  # hypothesis -> regime, for this chooser's proposals
        self.choices: list[str] = []

    def choose(self, request: ImprovementRequest) -> str:
        tried = set(self.choices)
        for regime in self.backends:
            if regime not in tried:
                return regime
        scores: dict[str, float] = {}
        for s in request.history + ([request.best] if request.best else []):
            regime = self.regime_of.get(s.hypothesis)
            if regime:
                scores[regime] = max(scores.get(regime, -1.0), _rate(s))
        rng = np.random.default_rng([self.seed, zlib.crc32(request.agent_id.encode()), int(request.round)])
        names = list(self.backends)
        if not scores or rng.random() < self.explore:
            return names[int(rng.integers(len(names)))]
        return max(scores, key=scores.get)

    def propose(self, request: ImprovementRequest) -> Proposal:
        regime = self.choose(request)
        self.choices.append(regime)
        proposal = self.backends[regime].propose(request)
        self.regime_of[proposal.hypothesis] = proposal.regime
        return proposal


__all__ = [
    'REGIMES',
    'ToolCallingBackend',
    'BehaviourCloningBackend',
    'OfflineRLBackend',
    'OnlineRLBackend',
    'RegimeChooser',
]
