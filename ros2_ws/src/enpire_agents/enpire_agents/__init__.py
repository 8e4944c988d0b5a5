"""Agents module (PI and E): closed-loop policy improvement, the hypothesis tree and agent teams."""
