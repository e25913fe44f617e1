"""`unseen sweep FILE.yaml --backend ray`: the sweep's cells as Ray tasks, on one machine or a cluster.

Ray Core, not Ray Tune: the sweep already has its grid, its run directories, its resume rules and its report, and
a run is the same `python -m unseen.cli train/eval` subprocess as under the local backend (exact resume, signal
handling, a thread count of its own). Ray only has to place each cell on a node with the resources it declares
(CPUs, GPUs or a fraction of one, memory) and to run it again when its worker or node is lost (`max_retries`).
A retried cell looks at the run directory again (`sweep.run_cell`), so it resumes from the run's last checkpoint.
Every node must see the sweep's directories at the same absolute paths (a shared filesystem: docs/sweep.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unseen.errors import UserError
from unseen.rundir import TRAIN_LOCK, held
from unseen.sweep import (
    CHILD_LOGS,
    RUNNING_ELSEWHERE,
    SWEEP_LOG,
    Job,
    State,
    Sweep,
    SweepSpec,
    failure,
    run_cell,
    start_child,
    state,
)

MISSING_RAY = "the Ray backend needs Ray, an optional extra of unseen: pip install 'unseen[ray]'"
STATUS_EVERY = 60.0
"""Seconds between the driver's status lines while cells run."""
STOP_GRACE = 120.0
"""Seconds a stopped sweep waits for its cancelled cells to checkpoint and exit before it leaves Ray."""


@dataclass(frozen=True)
class RayOptions:
    """How the sweep uses Ray (`unseen sweep --backend ray`)."""

    address: str | None = None
    """A running cluster (`HOST:PORT` of its head, or `auto`); None: start a Ray instance on this machine for the
    sweep and stop it at the end."""
    cpus: float = 1.0
    """CPUs each cell reserves; the run uses as many intra-op threads (`OMP_NUM_THREADS`, at least 1)."""
    gpus: float = 0.0
    """GPUs each cell reserves; a fraction lets several runs share one GPU."""
    memory_gb: float | None = None
    """Memory each cell reserves, in GB (Ray schedules by it; it does not cap the run)."""
    retries: int = 3
    """How many times a cell whose worker or node died is started again (a run that fails is not retried)."""
    lock_wait: float = 300.0
    """Seconds a retried cell waits for the run's `train.lock` to be released by its lost attempt."""

    def check(self) -> None:
        """A `UserError` for an option out of range."""
        if self.cpus <= 0:
            raise UserError(f"--cpus-per-run must be positive, got {self.cpus:g}")
        if self.gpus < 0:
            raise UserError(f"--gpus-per-run must be zero or positive, got {self.gpus:g}")
        if self.memory_gb is not None and self.memory_gb <= 0:
            raise UserError(f"--memory-per-run must be positive, got {self.memory_gb:g}")
        if self.retries < 0:
            raise UserError(f"--retries must be zero or positive, got {self.retries}")


def import_ray() -> Any:
    """The `ray` module, or a `UserError` naming the extra that installs it. Set first: every line of the cells
    reaches the sweep's output (Ray would merge similar ones, such as two cells' start lines), uncoloured in a file."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if not sys.stdout.isatty():
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    try:
        import ray
    except ImportError:
        raise UserError(MISSING_RAY) from None
    return ray


@dataclass
class Outcome:
    """What a cell reports back to the driver."""

    host: str
    """The node it ran on (its last attempt)."""
    error: str | None
    """What failed (a command, its exit code, its log's last line), or None: the run is complete."""
    seconds: float = 0.0
    """How long its last attempt took."""


def cell(job: Job, spec: SweepSpec, records: dict[str, dict[str, Any]], threads: int, lock_wait: float) -> Outcome:
    """One cell on a Ray worker: wait until no process trains the run (a lost attempt's child checkpoints on the
    SIGTERM its worker's death sends it), then do what the run directory still needs (`sweep.run_cell`). A
    cancelled cell (the sweep was stopped) forwards SIGTERM to its child, which checkpoints and exits."""
    import ray

    deadline = time.monotonic() + lock_wait
    while held(job.run_dir / TRAIN_LOCK):
        if time.monotonic() > deadline:
            raise UserError(f"{job.name}: another process still trains it after {lock_wait:g} s ({TRAIN_LOCK})")
        time.sleep(1.0)
    host = f"{socket.gethostname()} (node {ray.get_runtime_context().get_node_id()[:8]})"
    started = time.monotonic()
    current = state(job, spec, records)
    note(Path(spec.out), f"start  {job.name} ({current.train or 'eval'}) on {host}, pid {os.getpid()}")
    log_path = Path(spec.out) / CHILD_LOGS / f"{job.name}.log"
    errors: list[str] = []

    def call(command: list[str]) -> bool:
        child = start_child(command, log_path, threads)
        try:
            # In slices: Ray's cancel interrupts Python code (`interrupt_main`), not a blocking wait for the child.
            while child.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:  # ray.cancel
            stop_child(child)
            raise
        code = child.returncode
        if code != 0:
            errors.append(failure(command, code, log_path))
        return code == 0

    complete = run_cell(job, spec, records, threads, call)
    return Outcome(host, None if complete else errors[0], time.monotonic() - started)


def stop_child(child: subprocess.Popen) -> None:
    """SIGTERM a cancelled cell's child (it checkpoints and exits) and wait for it, through the further interrupts
    Ray may send while the cancel is pending: a cell that ends before its child leaves the run half-stopped."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGTERM)
    while True:
        try:
            child.wait()
            return
        except KeyboardInterrupt:
            continue


def note(out: Path, message: str) -> None:
    """A line from a worker: on its stdout (Ray shows it on the driver's) and in `<out>/sweep.log`."""
    line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
    print(line, flush=True)
    with (out / SWEEP_LOG).open("a") as handle:
        handle.write(line + "\n")


def absolute(spec: SweepSpec, jobs: list[Job]) -> tuple[SweepSpec, list[Job]]:
    """The sweep with absolute paths: a Ray worker's working directory is not the driver's."""
    def full(path: str | None) -> str | None:
        return None if path is None else str(Path(path).absolute())

    # A data option that names an existing file or folder (video_dir, color_file, ...) is a path; the others
    # (intensity, video_mode) are values.
    sources = {name: str(Path(value).absolute()) if Path(value).exists() else value
               for name, value in spec.eval.sources.items()}
    data = dataclasses.replace(spec.eval, sources=sources)
    spec = dataclasses.replace(spec, out=str(Path(spec.out).absolute()), export=full(spec.export),
                               report=full(spec.report), eval=data)
    return spec, [dataclasses.replace(job, run_dir=job.run_dir.absolute()) for job in jobs]


class RaySweep(Sweep):
    """The sweep with Ray as its backend: every cell that is not done is one Ray task."""

    def __init__(self, spec: SweepSpec, jobs: list[Job], options: RayOptions) -> None:
        options.check()
        spec, jobs = absolute(spec, jobs)
        super().__init__(spec, jobs, workers=1, threads=max(1, int(options.cpus)))
        self.options = options
        self.ray: Any = None
        """The `ray` module, imported when the sweep runs (a dry run needs no Ray)."""

    def header(self) -> str:
        o = self.options
        where = f"the Ray cluster at {o.address}" if o.address else "a local Ray instance"
        resources = f"{o.cpus:g} CPU" + (f", {o.gpus:g} GPU" if o.gpus else "") + (
            f", {o.memory_gb:g} GB" if o.memory_gb else "")
        return (f"{len(self.jobs)} runs as Ray tasks on {where} ({resources} each, up to {o.retries} retries), "
                f"OMP_NUM_THREADS={self.threads} each")

    def run(self) -> int:
        self.ray = import_ray()  # before anything is written
        return super().run()

    def execute(self, states: list[State]) -> None:
        ray = self.ray
        self.connect(ray)
        try:
            # Ray may install its own handlers when it starts: the sweep's come back.
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self.request_stop)
            self.wait_for(ray, self.submit(ray, states))
        finally:
            ray.shutdown()

    def connect(self, ray: Any) -> None:
        address = self.options.address or "local"
        local = {"include_dashboard": False} if address == "local" else {}
        if not local and not reachable(address):  # Ray would retry for minutes
            raise UserError(f"nothing answers at {address}; start the cluster's head there (ray start --head "
                            "--port=PORT) or drop --address to start Ray on this machine")
        try:
            ray.init(address=address, logging_level="warning", **local)
        except (ConnectionError, ValueError, RuntimeError) as error:
            raise UserError(f"cannot connect to the Ray cluster at {address}: {str(error).splitlines()[0]}; "
                            "start it with `ray start --head` or drop --address") from None
        resources = ray.cluster_resources()
        self.log(f"Ray {ray.__version__}: {len(ray.nodes())} node(s), {resources.get('CPU', 0):g} CPUs, "
                 f"{resources.get('GPU', 0):g} GPUs")
        nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
        for name, wanted in (("CPU", self.options.cpus), ("GPU", self.options.gpus)):
            largest = max((node.get(name, 0.0) for node in nodes), default=0.0)
            if wanted > largest:  # an autoscaling cluster may still add such a node: a warning, not an error
                self.log(f"warning: no node has {wanted:g} {name}s for a run (the largest has {largest:g}); the "
                         "cells wait until one joins the cluster")

    def submit(self, ray: Any, states: list[State]) -> dict[Any, Job]:
        """One task per cell that is not done; the done ones are exported and counted now."""
        o = self.options
        task = ray.remote(cell).options(
            num_cpus=o.cpus, num_gpus=o.gpus, max_retries=o.retries, retry_exceptions=False,
            memory=None if o.memory_gb is None else int(o.memory_gb * 2**30), name="unseen-cell",
        )
        pending: dict[Any, Job] = {}
        for job, current in zip(self.jobs, states, strict=True):
            if current.done:
                self.export(job)
                self.count(job, "already done")
            elif current.train == "running":
                self.failed.append(job.name)
                self.log(f"skip   {job.name}: {RUNNING_ELSEWHERE}; run the sweep again when it ends")
            else:
                reference = task.remote(job, self.spec, self.records, self.threads, o.lock_wait)
                pending[reference] = job
                self.log(f"queue  {job.name} ({current.train or 'eval'})")
        return pending

    def wait_for(self, ray: Any, pending: dict[Any, Job]) -> None:
        """Collect the cells as they end, with a status line every `STATUS_EVERY` seconds; on a stop, cancel
        them (their children checkpoint) and wait for them."""
        last_status = time.monotonic()
        while pending and self.stop_signal is None:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for reference in ready:
                job = pending.pop(reference)
                try:
                    outcome = ray.get(reference)
                except ray.exceptions.RayTaskError as error:
                    outcome = Outcome("?", f"it raised {last_line(error)}")
                except ray.exceptions.RayError as error:
                    outcome = Outcome("?", f"Ray gave up after {self.options.retries + 1} attempts: "
                                           f"{type(error).__name__}: {last_line(error)}")
                if outcome.error is None:
                    self.export(job)
                    self.count(job, f"finished in {outcome.seconds / 60:.1f} min on {outcome.host}")
                else:
                    self.failed.append(job.name)
                    self.log(f"failed {job.name}: {outcome.error}")
            if time.monotonic() - last_status > STATUS_EVERY:
                last_status = time.monotonic()
                free = ray.available_resources().get("CPU", 0)
                self.log(f"status {self.finished}/{len(self.jobs)} done, {len(pending)} queued or running, "
                         f"{free:g} CPUs free, {self.elapsed()} elapsed")
        if pending:
            for reference in pending:
                ray.cancel(reference)
            deadline = time.monotonic() + STOP_GRACE
            ray.wait(list(pending), num_returns=len(pending), timeout=STOP_GRACE)
            # and until their runs are released: a cell's end is not its child's (the run's lock is the child's)
            while any(held(job.run_dir / TRAIN_LOCK) for job in pending.values()) and time.monotonic() < deadline:
                time.sleep(0.5)


def last_line(error: Exception) -> str:
    """The last line of an error's message (a task's error ends with its exception), shortened."""
    return (str(error).strip().splitlines() or [""])[-1][:200]


def reachable(address: str) -> bool:
    """Whether a HOST:PORT address accepts connections (other forms, e.g. `auto`, are left to Ray)."""
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        return True
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError:
        return False
    return True
