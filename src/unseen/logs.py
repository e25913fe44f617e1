"""Run logs: CSV files (always) and TensorBoard (by default), both cut back cleanly on resume."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd

from unseen.errors import Damaged
from unseen.rundir import EVAL_LOG, TENSORBOARD_DIR, TRAIN_LOG, write_atomic


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
    """Append rows of scalars to a CSV file; new columns widen the file (rewritten once when they appear). `rows`
    counts its complete rows: a checkpoint records it, and a resumed run keeps exactly those (`kept`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] = []
        self.rows = 0
        self._read_shape()

    def _read_shape(self) -> None:
        """Columns and complete rows as the file holds them now."""
        header, lines = complete_lines(self.path)
        self.columns = next(csv.reader([header.decode()])) if header else []
        self.rows = len(lines)

    def write(self, row: dict[str, Any]) -> None:
        new = [key for key in row if key not in self.columns]
        if new:
            self.columns += new
            if self.path.exists():
                widened = pd.read_csv(self.path).reindex(columns=self.columns)
                write_atomic(self.path, widened.to_csv(index=False).encode())
        exists = self.path.exists()
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns)
            if not exists:
                writer.writeheader()
            writer.writerow(row)
        self.rows += 1

    def kept(self, step: int, rows: int | None) -> bytes | None:
        """The file as a checkpoint at `step` that counted `rows` of it left it: its header and first `rows` rows
        (None: it had none). Rows after them were written after the checkpoint; a half-written last line is one of
        them. A checkpoint from before the count (`rows` None) keeps the rows logged up to `step`. `Damaged` when
        the file holds fewer complete rows than the checkpoint counted."""
        header, lines = complete_lines(self.path)
        if rows is None:
            rows = sum(1 for number in self.steps(lines) if number <= step)
        if len(lines) < rows:
            state = f"holds {len(lines)} complete rows" if self.path.exists() else "is missing"
            raise Damaged(f"{self.path} {state}, the checkpoint counted {rows}")
        return header + b"".join(lines[:rows]) if rows else None

    def steps(self, lines: list[bytes]) -> list[int]:
        """The step column of `lines` (rows of this file)."""
        if not lines:
            return []
        try:
            index = self.columns.index("step")
            return [int(float(fields[index])) for fields in csv.reader(line.decode() for line in lines)]
        except (ValueError, IndexError):
            raise Damaged(f"{self.path} has a row without a step, or no step column") from None

    def restore(self, content: bytes | None) -> None:
        """Make the file `content` (a result of `kept`; None: no file)."""
        if content is None:
            self.path.unlink(missing_ok=True)
        elif not self.path.exists() or self.path.read_bytes() != content:
            write_atomic(self.path, content)
        self._read_shape()


def complete_lines(path: Path) -> tuple[bytes, list[bytes]]:
    """The header and the rows of a CSV file, each line with its ending; a last line without one (cut off while it
    was written) is left out. An absent file has neither."""
    if not path.exists():
        return b"", []
    *complete, _ = path.read_bytes().split(b"\n")
    lines = [line + b"\n" for line in complete]
    return (lines[0], lines[1:]) if lines else (b"", [])


class RunLogger:
    """train.csv, eval.csv and TensorBoard scalars of one run directory."""

    def __init__(
        self, run_dir: Path, tensorboard: bool, resume_step: int | None = None, rows: dict[str, int] | None = None
    ) -> None:
        """`resume_step`: the step of the checkpoint a resumed run continues from, `rows` the rows it counted in each
        log (`rows()`; None for a checkpoint from before the count): the logs are cut back to them, or `Damaged`
        (and nothing changed) when one of them holds fewer."""
        self.train = CsvLog(run_dir / TRAIN_LOG)
        self.eval = CsvLog(run_dir / EVAL_LOG)
        if resume_step is not None:
            # Every log is checked before any is cut back: a refused resume leaves them as they were.
            kept = [log.kept(resume_step, None if rows is None else rows[log.path.name]) for log in self.logs]
            for log, content in zip(self.logs, kept, strict=True):
                log.restore(content)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step hides events written after the checkpoint when a run resumes.
            self.writer = SummaryWriter(str(run_dir / TENSORBOARD_DIR), purge_step=resume_step)

    @property
    def logs(self) -> tuple[CsvLog, CsvLog]:
        return self.train, self.eval

    def rows(self) -> dict[str, int]:
        """Complete rows of each log by its file name, for a checkpoint to record."""
        return {log.path.name: log.rows for log in self.logs}

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
