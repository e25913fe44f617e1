"""Run logs: CSV files (always) and TensorBoard (by default), both cut back cleanly on resume."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd

from unseen.rundir import EVAL_LOG, TENSORBOARD_DIR, TRAIN_LOG


class MetricMeans:
    """Means of an agent's metrics over a logging interval. An update's metrics may be tensors on the agent's device:
    they are summed there, and read to the host once per interval (`take`), not once per update."""

    def __init__(self) -> None:
        self.sums: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def add(self, metrics: dict[str, Any]) -> None:
        for key, value in metrics.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + 1

    def take(self) -> dict[str, float]:
        """The mean of every metric since the last `take`, in first-seen order; then start a new interval."""
        means = {key: float(total) / self.counts[key] for key, total in self.sums.items()}
        self.sums, self.counts = {}, {}
        return means

    def state_dict(self) -> dict[str, Any]:
        # Plain floats: a float32 sum converts exactly, and adding the next tensor to it rounds as before.
        return {"sums": {key: float(total) for key, total in self.sums.items()}, "counts": dict(self.counts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sums, self.counts = dict(state["sums"]), dict(state["counts"])


class CsvLog:
    """Append rows of scalars to a CSV file; new columns widen the file (rewritten once when they appear)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] = list(pd.read_csv(path, nrows=0).columns) if path.exists() else []

    def write(self, row: dict[str, Any]) -> None:
        new = [key for key in row if key not in self.columns]
        if new:
            self.columns += new
            if self.path.exists():
                pd.read_csv(self.path).reindex(columns=self.columns).to_csv(self.path, index=False)
        exists = self.path.exists()
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns)
            if not exists:
                writer.writeheader()
            writer.writerow(row)

    def truncate(self, step: int) -> None:
        """Drop rows logged after `step` (written after the checkpoint a run resumes from)."""
        if self.path.exists():
            frame = pd.read_csv(self.path)
            frame[frame["step"] <= step].to_csv(self.path, index=False)


class RunLogger:
    """train.csv, eval.csv and TensorBoard scalars of one run directory."""

    def __init__(self, run_dir: Path, tensorboard: bool, resume_step: int | None = None) -> None:
        self.train = CsvLog(run_dir / TRAIN_LOG)
        self.eval = CsvLog(run_dir / EVAL_LOG)
        if resume_step is not None:
            self.train.truncate(resume_step)
            self.eval.truncate(resume_step)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step hides events written after the checkpoint when a run resumes.
            self.writer = SummaryWriter(str(run_dir / TENSORBOARD_DIR), purge_step=resume_step)

    def log_train(self, row: dict[str, Any]) -> None:
        self.train.write(row)
        self._scalars("train", row)

    def log_eval(self, row: dict[str, Any]) -> None:
        self.eval.write(row)
        self._scalars(f"eval/{row['shift']}", row)

    def _scalars(self, prefix: str, row: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for key, value in row.items():
            if key != "step" and isinstance(value, int | float):
                self.writer.add_scalar(f"{prefix}/{key}", value, row["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
