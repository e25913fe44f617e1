"""`unseen sweep FILE.yaml`: a grid of methods x tasks x seeds at one preset, run by a local worker pool (or by Ray:
`unseen.sweep_ray`).

Each run is a subprocess `python -m unseen.cli train ...` into `<out>/<method>-<task>-seed<N>` (the naming of
results/cpu/runs), then `unseen eval` for the shifts its summary.json lacks; the sweep then copies each finished
run's small files into `export` and writes the report into `report`. Started again, a sweep looks at each run
directory and does only what is missing: a finished run is skipped, a stopped one resumes from its checkpoint
(`unseen train --resume`), a trained one is evaluated. SIGINT/SIGTERM are forwarded to the children (training
checkpoints and exits); the sweep then stops starting runs and exits. docs/sweep.md has the file format.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from unseen import hardware, schema
from unseen.agents import algos
from unseen.children import LAUNCHER
from unseen.config import PRESETS, RunConfig, apply_overrides, make_config, to_dict, validate
from unseen.envs import all_shifts, all_source_options, all_tasks, check_shifts, families_of, family_of, source_flag
from unseen.errors import UserError
from unseen.rundir import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    EVAL_LOG,
    SUMMARY_FILE,
    TRAIN_LOCK,
    TRAIN_LOG,
    device_of,
    exclusive,
    held,
    read_config,
    read_summary,
    read_yaml,
)
from unseen.runs import UNCOMPARED_FIELDS, flatten
from unseen.schema import param

EXPORTED_FILES = (CONFIG_FILE, TRAIN_LOG, EVAL_LOG, SUMMARY_FILE)
"""The small files of a run that `export` copies (checkpoints, replay, videos and TensorBoard stay behind);
train.csv exists once an episode has ended."""

SWEEP_LOG = "sweep.log"
SWEEP_LOCK = "sweep.lock"
CHILD_LOGS = "logs"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def default_shifts(tasks: list[str]) -> list[str]:
    """Every shift of the families of `tasks` (unknown tasks are reported later, with every other check)."""
    known = [task for task in tasks if task in all_tasks()]
    return list(dict.fromkeys(shift for family in families_of(known) for shift in family.shifts)) or ["none"]


@dataclass
class EvalSpec:
    """The final zero-shot evaluation every run of the sweep must have."""

    shifts: list[str] = param(factory=list, nonempty=True, distinct=True)
    """Shifts every run is evaluated on (`unseen eval --shifts`); a file without them: every shift of its tasks'
    families."""
    episodes: int = param(10, gt=0)
    """Episodes per shift; a shift evaluated with another count is evaluated again."""
    sources: dict[str, str] = field(default_factory=dict)
    """The shifts' data options, written in the file beside `shifts` and `episodes`: those of every registered
    environment family (`unseen.envs.all_source_options`; DMControl's video_dir, color_file, intensity,
    video_mode), each default when absent."""


@dataclass
class Variant:
    """A named method: an algorithm with config overrides (e.g. an ablation)."""

    algo: str
    """Algorithm of `unseen train --algo`."""
    overrides: list[str] = field(default_factory=list)
    """`section.field=value` overrides on top of the sweep's own."""


@dataclass
class SweepSpec:
    """A sweep file: every run is one method (an algorithm or a variant) on one task with one seed."""

    preset: str = param(choices=PRESETS)
    """Preset of every run (docs/protocol.md); a report never mixes presets."""
    tasks: list[str] = param(nonempty=True, distinct=True)
    """Tasks of registered environment families."""
    seeds: list[int] = param(nonempty=True, distinct=True, ge=0, le=2**32 - 1)
    """Seeds, distinct, in 0..2^32-1."""
    out: str = param()
    """Folder of the run directories, the sweep log and the children's logs (relative to the working directory)."""
    algos: list[str] = param(factory=list, distinct=True)
    """Algorithms run with the sweep's overrides only; each is a method named after itself."""
    variants: dict[str, Variant] = field(default_factory=dict)
    """Named methods with their own overrides, e.g. `cg2a-ac: {algo: cg2a, overrides: [agent.cg2a_gas=false]}`."""
    overrides: list[str] = field(default_factory=list)
    """`section.field=value` overrides of every run."""
    steps: int | None = param(None, gt=0)
    """Agent steps of every run (default: the preset's)."""
    eval: EvalSpec = field(default_factory=EvalSpec)
    """The final evaluation every run must have."""
    export: str | None = None
    """Folder to copy each finished run's small files into (`EXPORTED_FILES`); none when empty."""
    report: str | None = None
    """Folder for `unseen report` of the sweep's runs at the end; none when empty."""

    @property
    def methods(self) -> dict[str, Variant]:
        """Every method of the grid: the plain algorithms, then the variants."""
        return {algo: Variant(algo) for algo in self.algos} | self.variants

    @property
    def sources(self) -> dict[str, str]:
        """The data-source options of the evaluation, as `make_env` options."""
        return self.eval.sources


# ----- reading and checking a sweep file --------------------------------------------------------------------


def load_spec(path: Path) -> SweepSpec:
    """Read and check a sweep file; any mistake is a `UserError` of one line that starts with the file's name."""
    if not path.is_file():
        raise UserError(f"{path} does not exist; pass a sweep file (docs/sweep.md)")
    data = read_yaml(path, "correct it (docs/sweep.md)")
    try:
        return parse_spec(data)
    except UserError as error:
        raise UserError(f"{path}: {error}") from None


def parse_spec(data: Any) -> SweepSpec:
    """A sweep file's parsed YAML as a checked `SweepSpec` (`unseen.schema`: each key's type and declared range), then
    the rules between keys."""
    if isinstance(data, dict) and isinstance(data.get("eval"), dict):
        # The shifts' data options sit beside `shifts` and `episodes` in the file; `EvalSpec` keeps them apart.
        options = set(all_source_options())
        entry = {key: value for key, value in data["eval"].items() if key not in options}
        sources = {key: value for key, value in data["eval"].items() if key in options and value is not None}
        bad = [f"eval.{key}={value!r}" for key, value in sources.items() if not isinstance(value, str | int | float)]
        if bad or "sources" in entry:
            raise UserError(f"{(bad or ['eval.sources'])[0]}: a shift's data option is a string or number, "
                            f"written beside eval.shifts; options: {', '.join(options)}")
        data = data | {"eval": entry | {"sources": {key: str(value) for key, value in sources.items()}}}
    spec = schema.build(SweepSpec, data)
    if isinstance(data, dict) and (data.get("eval") or {}).get("shifts") is None:
        spec.eval.shifts = default_shifts(spec.tasks)
    schema.check(spec)
    for name in spec.variants:
        if not NAME.match(name):
            raise UserError(f"variant name {name!r} must be letters, digits and _ . + - (it names run directories)")
        if name in algos():
            raise UserError(f"variant {name!r} has the name of an algorithm; rename it (a variant is another method)")
    if not spec.methods:
        raise UserError("name at least one method in algos or variants")
    unknown = [shift for shift in spec.eval.shifts if shift not in all_shifts()]
    if unknown:
        raise UserError(
            f"unknown shift(s) {', '.join(unknown)} in eval.shifts; valid shifts: {', '.join(all_shifts())}"
        )
    return spec


# ----- the plan ----------------------------------------------------------------------------------------------


@dataclass
class Job:
    """One run of the grid."""

    method: str
    algo: str
    task: str
    seed: int
    overrides: list[str]
    run_dir: Path

    @property
    def name(self) -> str:
        return self.run_dir.name


def shift_records(spec: SweepSpec) -> dict[str, dict[str, Any]]:
    """Per evaluation shift what a current evaluation records about its data, every task's shifts and data options
    checked first (`unseen.envs.check_shifts`)."""
    return {shift: record for task in spec.tasks for shift, record in check_shifts(task, spec.eval.shifts,
                                                                                  spec.sources).items()}


def plan(spec: SweepSpec, here: bool = True) -> list[Job]:
    """Every run, seeds outermost (a stopped sweep has seed 1 of every method before seed 2 of any), each config
    resolved and validated against this build's algorithms, tasks and fields before anything starts; `here` (the
    local worker pool): and its `train.device` present on this machine (Ray places runs on nodes that have it)."""
    unknown = [task for task in spec.tasks if task not in all_tasks()]
    if unknown:
        raise UserError(f"unknown task(s) {', '.join(unknown)}; choose from: {', '.join(all_tasks())}")
    shift_records(spec)
    jobs = []
    for seed in spec.seeds:
        for task in spec.tasks:
            for method, variant in spec.methods.items():
                run_dir = Path(spec.out) / f"{method}-{task}-seed{seed}"
                job = Job(method, variant.algo, task, seed, spec.overrides + variant.overrides, run_dir)
                try:
                    cfg = job_config(job, spec)
                    if here:
                        device_of(cfg)
                except UserError as error:
                    raise UserError(f"method {method!r}: {error}") from None
                jobs.append(job)
    return jobs


def job_config(job: Job, spec: SweepSpec) -> RunConfig:
    """The full config `unseen train` will resolve for `job` (checked: unknown algorithm, field or value fail)."""
    return validate(apply_overrides(make_config(job.algo, job.task, spec.preset, job.seed, spec.steps), job.overrides))


@dataclass
class State:
    """What a run directory still needs."""

    train: str
    """"new" (nothing yet), "restart" (a config but no checkpoint: stopped before its first one), "resume",
    "running" (another process is training it: left alone), or "" (trained)."""
    shifts: list[str]
    """Shifts still to evaluate."""

    @property
    def done(self) -> bool:
        return not self.train and not self.shifts


def state(job: Job, spec: SweepSpec, records: dict[str, dict[str, Any]]) -> State:
    """What `job`'s run directory lacks; a run directory holding another config is an error (never overwritten).

    `records`: per shift what a current evaluation records about its data (source, intensity).
    """
    run_dir = job.run_dir
    wanted = flatten(to_dict(job_config(job, spec)))
    if not (run_dir / CONFIG_FILE).is_file():
        return State("new", after_training(wanted, spec))
    saved_config = read_config(run_dir)
    saved = flatten(to_dict(saved_config))
    # A run resolves precision "auto" for its machine when it starts: any precision it chose is what "auto" asked.
    chosen = {"agent.precision"} if wanted["agent.precision"] == "auto" else set()
    compared = set(saved) & set(wanted) - UNCOMPARED_FIELDS - {"seed"} - chosen
    differing = sorted(k for k in compared if saved[k] != wanted[k])
    if differing:
        first = differing[0]
        raise UserError(
            f"{run_dir} holds a run with another config ({first}: {saved[first]!r} there, {wanted[first]!r} in the "
            f"sweep{', and more' if len(differing) > 1 else ''}); move it away or rename the method"
        )
    if held(run_dir / TRAIN_LOCK):
        return State("running", [])
    summary = read_summary(run_dir, saved_config) if (run_dir / SUMMARY_FILE).exists() else {}
    if summary.get("steps", -1) < wanted["train.steps"]:
        train = "resume" if (run_dir / CHECKPOINT_FILE).is_file() else "restart"
        return State(train, after_training(wanted, spec))
    returns = summary.get("returns", {})
    missing = [s for s in spec.eval.shifts if not evaluated(returns.get(s), s, spec.eval.episodes, records[s])]
    return State("", missing)


def after_training(config: dict[str, Any], spec: SweepSpec) -> list[str]:
    """The shifts a run will still lack when training ends: all but those training's own final evaluation covers when
    it has the sweep's episode count: the training environment's, and every shift of `train.eval_shifts` of a family
    whose shifts take no data options (training evaluates with the default data, the sweep maybe with other). The
    sweep checks again after training, so this only informs."""
    trained = {"none"}
    if not family_of(config["env.task"]).source_options:
        trained |= {name.strip() for name in config["train.eval_shifts"].split(",")}
    covered = trained if config["train.final_eval_episodes"] == spec.eval.episodes else set()
    return [shift for shift in spec.eval.shifts if shift not in covered]


def evaluated(entry: dict[str, Any] | None, shift: str, episodes: int, record: dict[str, Any]) -> bool:
    """Whether a summary entry is an evaluation with `episodes` episodes on the data of `record` (the training
    environment has no data source: older summaries did not record one for it)."""
    if entry is None or entry["episodes"] != episodes:
        return False
    return shift == "none" or all(entry.get(key) == value for key, value in record.items())


# ----- running ------------------------------------------------------------------------------------------------

RUNNING_ELSEWHERE = f"another process is training it ({TRAIN_LOCK} is held)"


def train_command(job: Job, spec: SweepSpec, train: str) -> list[str]:
    """The `unseen train` of a run directory whose `State.train` is `train`: a new run, or `--resume` (a run another
    process trains too: it refuses, naming the lock), or `--restart` (a config without a checkpoint)."""
    command = [sys.executable, "-m", "unseen.cli", "train"]
    if train in ("resume", "running", "restart"):
        return [*command, f"--{'restart' if train == 'restart' else 'resume'}", str(job.run_dir)]
    command += ["--algo", job.algo, "--task", job.task, "--preset", spec.preset, "--seed", str(job.seed),
                "--out", str(job.run_dir)]
    command += ["--steps", str(spec.steps)] if spec.steps is not None else []
    return command + (["--set", *job.overrides] if job.overrides else [])


def eval_command(job: Job, spec: SweepSpec, shifts: list[str], workers: int) -> list[str]:
    command = [sys.executable, "-m", "unseen.cli", "eval", str(job.run_dir), "--shifts", *shifts,
               "--episodes", str(spec.eval.episodes), "--workers", str(workers)]
    for name, value in spec.sources.items():
        command += [source_flag(name), value]
    return command


def launched(command: list[str]) -> list[str]:
    """`command` as a child that dies with the sweep, even when the sweep is killed by SIGKILL: the kernel sends it
    SIGTERM (on which training checkpoints and exits) when the sweep's thread that started it ends
    (`unseen.children.LAUNCHER`; Linux, elsewhere the command runs as it is)."""
    return [sys.executable, "-c", LAUNCHER, str(os.getpid()), *command] if sys.platform == "linux" else command


def start_child(command: list[str], log_path: Path, threads: int) -> subprocess.Popen:
    """Start one child with `threads` intra-op threads, its output appended to `log_path`, in a session of its own
    (a terminal's Ctrl-C reaches the sweep only, which forwards it once)."""
    with log_path.open("a") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        return subprocess.Popen(
            launched(command), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env=os.environ | {"OMP_NUM_THREADS": str(threads)},
        )


def run_cell(job: Job, spec: SweepSpec, records: dict[str, dict[str, Any]], threads: int,
             call: Callable[[list[str]], bool]) -> bool:
    """Do what `job`'s run directory still needs (train, resume or restart, then evaluate the missing shifts),
    each command run by `call` (False: it failed or was stopped); True when the run is complete. The unit of work
    of every backend: a retried cell looks at the run directory again, so it resumes from the last checkpoint. A
    run another process trains is resumed too: `unseen train --resume` refuses it, naming the lock."""
    current = state(job, spec, records)
    if current.train and not call(train_command(job, spec, current.train)):
        return False
    current = state(job, spec, records)
    return not current.shifts or call(eval_command(job, spec, current.shifts, threads))


def available_cores() -> int:
    return hardware.usable_cores()


def failure(command: list[str], code: int, log_path: Path) -> str:
    """What failed: the command, its exit code and the last line of its log."""
    last = log_path.read_text().strip().splitlines()[-1:] or [""]
    return f"{command[3]} exited with {code}: {last[0][:200]}"


class Sweep:
    """The worker pool: `workers` runs at a time, each child with `cores // workers` threads."""

    def __init__(self, spec: SweepSpec, jobs: list[Job], workers: int, threads: int | None = None) -> None:
        self.spec, self.jobs, self.workers = spec, jobs, workers
        self.threads = threads or max(1, available_cores() // workers)
        self.records = shift_records(spec)
        self.out = Path(spec.out)
        self.lock = threading.RLock()  # re-entered by the signal handler if it interrupts a log line
        self.children: set[subprocess.Popen] = set()
        self.stop_signal: int | None = None
        self.finished = 0
        self.failed: list[str] = []
        self.start = time.monotonic()

    # ----- what is to do ----------------------------------------------------------------------------------

    def describe(self) -> list[str]:
        """The plan, one line per run: what it still needs and the commands that will do it."""
        lines = [f"{self.header()}; out: {self.out}"
                 + (f"; export: {self.spec.export}" if self.spec.export else "")
                 + (f"; report: {self.spec.report}" if self.spec.report else "")]
        for job in self.jobs:
            current = state(job, self.spec, self.records)
            if current.done:
                lines.append(f"done     {job.name}")
                continue
            if current.train == "running":
                lines.append(f"running  {job.name}: {RUNNING_ELSEWHERE}")
                continue
            commands = [train_command(job, self.spec, current.train)] if current.train else []
            commands += [eval_command(job, self.spec, current.shifts, self.threads)] if current.shifts else []
            steps = [" ".join(["unseen", *command[3:]]) for command in commands]
            lines.append(f"{current.train or 'eval':<8} {job.name}: " + " && ".join(steps))
        return lines

    def header(self) -> str:
        """How the runs are run, for the plan and the log."""
        return f"{len(self.jobs)} runs, {self.workers} at a time, OMP_NUM_THREADS={self.threads} each"

    # ----- doing it ---------------------------------------------------------------------------------------

    def run(self) -> int:
        """Run every job; returns 0, 1 if a run failed, or 128 + the signal that stopped the sweep."""
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / CHILD_LOGS).mkdir(exist_ok=True)
        with exclusive(self.out / SWEEP_LOCK, f"another sweep is running in {self.out}; wait for it or stop it"):
            return self.run_locked()

    def run_locked(self) -> int:
        states = [state(job, self.spec, self.records) for job in self.jobs]  # a foreign run directory fails here
        self.log(f"sweep of {self.header()}")
        previous = {sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.execute(states)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.stop_signal is not None:
            self.log(f"stopped by signal {self.stop_signal}; run the same command again to continue")
            return 128 + self.stop_signal
        done = [job for job in self.jobs if state(job, self.spec, self.records).done]
        if self.spec.report and done:
            self.write_report(done, Path(self.spec.report))
        if self.failed:
            self.log(f"{len(self.failed)} run(s) failed: {', '.join(self.failed)} "
                     f"(their logs: {self.out / CHILD_LOGS})")
            return 1
        self.log(f"sweep complete in {self.elapsed()}")
        return 0

    def execute(self, states: list[State]) -> None:
        """Run every job that is not done, given what each needs when the sweep starts: the local worker pool."""
        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(self.run_job, self.jobs, states))

    def run_job(self, job: Job, current: State) -> None:
        if current.done:
            self.export(job)
            self.count(job, "already done")
            return
        if self.stop_signal is not None:
            return
        if current.train == "running":
            self.failed.append(job.name)
            self.log(f"skip   {job.name}: {RUNNING_ELSEWHERE}; run the sweep again when it ends")
            return
        started = time.monotonic()
        self.log(f"start  {job.name} ({current.train or 'eval'})")
        if not run_cell(job, self.spec, self.records, self.threads, partial(self.call, job)):
            return
        self.export(job)
        self.count(job, f"finished in {(time.monotonic() - started) / 60:.1f} min")

    def call(self, job: Job, command: list[str]) -> bool:
        """Run one child (its output appended to `<out>/logs/<run>.log`); False if it failed or was stopped."""
        log_path = self.out / CHILD_LOGS / f"{job.name}.log"
        with self.lock:
            if self.stop_signal is not None:
                return False
            child = start_child(command, log_path, self.threads)
            self.children.add(child)
        code = child.wait()
        with self.lock:
            self.children.discard(child)
        if code == 0:
            return True
        if self.stop_signal is None:
            self.failed.append(job.name)
            self.log(f"failed {job.name}: {failure(command, code, log_path)}")
        return False

    def request_stop(self, signum: int, frame: Any) -> None:
        """Forward the signal to every child's process group (training checkpoints and exits); start nothing new."""
        self.stop_signal = signum
        for child in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signum)

    def export(self, job: Job) -> None:
        if self.spec.export:
            target = Path(self.spec.export) / job.name
            target.mkdir(parents=True, exist_ok=True)
            for name in EXPORTED_FILES:
                if (job.run_dir / name).is_file():
                    shutil.copyfile(job.run_dir / name, target / name)

    def write_report(self, done: list[Job], out: Path) -> None:
        from unseen.report import write_report

        root = Path(self.spec.export) if self.spec.export else self.out
        write_report([root / job.name for job in done], out)
        self.log(f"report of {len(done)} runs written to {self.spec.report}")

    # ----- progress ---------------------------------------------------------------------------------------

    def count(self, job: Job, what: str) -> None:
        with self.lock:
            self.finished += 1
            progress = f"[{self.finished}/{len(self.jobs)} done, {self.elapsed()} elapsed]"
        self.log(f"done   {job.name}: {what} {progress}")

    def elapsed(self) -> str:
        return f"{(time.monotonic() - self.start) / 60:.1f} min"

    def log(self, message: str) -> None:
        """One line on stdout and in `<out>/sweep.log`."""
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        with self.lock:
            print(line, flush=True)
            if self.out.is_dir():
                with (self.out / SWEEP_LOG).open("a") as handle:
                    handle.write(line + "\n")


def run_sweep(path: Path, workers: int = 1, dry_run: bool = False,
              backend: Callable[[SweepSpec, list[Job]], Sweep] | None = None) -> int:
    """`unseen sweep`: check the file and the whole plan, then print it (dry run) or run it, with the local worker
    pool or `backend` (e.g. `sweep_ray.RaySweep`)."""
    if workers <= 0:
        raise UserError(f"--workers must be positive, got {workers}")
    spec = load_spec(path)
    try:
        jobs = plan(spec, here=backend is None)
    except UserError as error:
        raise UserError(f"{path}: {error}") from None
    sweep = backend(spec, jobs) if backend else Sweep(spec, jobs, workers)
    if dry_run:
        print("\n".join(sweep.describe()))
        return 0
    return sweep.run()
