"""unseen: zero-shot generalization in visual reinforcement learning (CG2A, ALDA and their baselines)."""

import os

# OpenMP threads that sleep between parallel regions instead of spinning (unless the user chose otherwise). A
# spinning team holds every core it has; beside one other busy process a 2-thread DrQ update took 1.76x as long as
# a 1-thread one, and 1.0x with passive waiting, which costs nothing on an idle machine (docs/architecture.md,
# "Threads"). libgomp reads this when it loads, with torch: so here, before any of unseen imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
