"""unseen: zero-shot generalization in visual reinforcement learning (CG2A, ALDA and their baselines)."""

__version__ = "0.1.0"
