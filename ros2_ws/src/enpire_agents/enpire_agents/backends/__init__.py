"""Policy-improvement backends: the offline strategy search and the LLM APIs, behind one protocol."""
