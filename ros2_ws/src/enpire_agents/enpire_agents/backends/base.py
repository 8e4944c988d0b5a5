"""What every backend takes and gives: a request describing the state of the search, a proposal back."""
from __future__ import annotations

import hashlib
from typing import Protocol

from pydantic import BaseModel, Field

from enpire_rollout.trial_outcome import TrialOutcome


class TrialSummary(BaseModel):
    """One evaluated policy, as the agent saw it."""
    node_id: str                         # hypothesis-tree commit of the policy
    hypothesis: str
    trials: int
    successes_at_1: int
    successes_at_k: int
    mean_score: float
    failure_reasons: list[str] = Field(default_factory=list)   # verdict / sandbox reasons, most common first
    rollouts: list[TrialOutcome] = Field(default_factory=list)  # each rollout's attempt scores and reasons


def code_sha256(code: str) -> str:
    """The fingerprint of a policy source: two ideas with the same code are the same idea."""
    return hashlib.sha256(code.encode()).hexdigest()


class TeamIdea(BaseModel):
    """An idea in the team's shared tree: tested, or claimed (an agent is testing it right now)."""
    agent: str
    hypothesis: str
    code_sha256: str
    result: TrialSummary | None = None   # None: claimed, its trials are still running


class ImprovementRequest(BaseModel):
    task: str
    contract: str                        # the policy contract text the code must satisfy
    agent_id: str
    round: int
    best_code: str | None = None
    best: TrialSummary | None = None
    history: list[TrialSummary] = Field(default_factory=list)   # this agent's recent nodes, newest last
    peer_best: list[TrialSummary] = Field(default_factory=list) # other agents' best nodes
    peer_code: dict[str, str] = Field(default_factory=dict)     # node_id -> code, for reuse
    key_frames_png: list[bytes] = Field(default_factory=list)   # for backends that take images (bag_evidence)
    team_ideas: list[TeamIdea] = Field(default_factory=list)    # every idea of the team, tested or claimed
    seed: int = 0


class Proposal(BaseModel):
    hypothesis: str                      # one line: what this idea changes and why
    code: str                            # the complete policy source
    parent: str | None = None            # node_id it revises (own or a peer's: reuse)
    regime: str = 'heuristic_code'
    tokens_in: int = 0                   # from the API's usage fields (offline backend: its own count)
    tokens_out: int = 0


class PolicyBackend(Protocol):
    name: str

    def propose(self, request: ImprovementRequest) -> Proposal: ...
