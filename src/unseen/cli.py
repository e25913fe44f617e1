"""The `unseen` command line: train, eval, report, sweep, show, bench."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import NoReturn

from unseen.agents import algos
from unseen.config import PRESETS, ReportConfig, apply_overrides, make_config
from unseen.errors import Interrupted, Stopped, UserError


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is reported as one line (what is wrong and where to look)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the shifts' data comes from: every environment family's data options (`EnvFamily.source_options`)
    as `--flags` (default: each family's own; DMControl: procedural videos and images, our colour tables)."""
    from unseen.envs import all_source_options, source_flag

    for name, text in all_source_options().items():
        parser.add_argument(source_flag(name), help=text)


def source_options(args: argparse.Namespace) -> dict[str, str]:
    """The data-source options given on the command line, as `make_env` options."""
    from unseen.envs import all_source_options

    return {name: getattr(args, name) for name in all_source_options() if getattr(args, name, None) is not None}


REPORTS = ("tables", "grad", "disentangle", "traverse")
"""`unseen report`'s subcommands."""


def add_report_parsers(report: argparse.ArgumentParser) -> None:
    """`unseen report tables|grad|disentangle|traverse`."""
    jobs = report.add_subparsers(dest="report", required=True, parser_class=Parser)
    tables = jobs.add_parser(
        "tables",
        help="paper-format tables, learning curves and rliable statistics from finished runs (docs/reports.md)",
    )
    tables.add_argument("dirs", nargs="*", type=Path, help="run directories, or folders that hold them at any depth")
    tables.add_argument("--out", type=Path, help="folder for report.md, the tables and the figures (required)")
    tables.add_argument("--reps", type=int, default=ReportConfig.reps,
                        help=f"bootstrap resamples (default: {ReportConfig.reps})")
    tables.add_argument("--bootstrap-seed", type=int, default=ReportConfig.seed,
                        help="seed of the bootstrap (default: 0)")
    grad = jobs.add_parser(
        "grad", help="a CG2A run's gradient magnitudes, pairwise cosines, weights and conflicts (PNG, Markdown, CSV); "
        "several runs (seeds): each in OUT/<run> and their means across runs in grad_seeds.md (docs/cg2a.md)",
    )
    grad.add_argument("dirs", nargs="*", type=Path, metavar="RUN_DIR", help="CG2A run directories")
    grad.add_argument("--out", type=Path, help="folder for the plots (required)")
    disentangle = jobs.add_parser(
        "disentangle", help="MIG, InfoM, InfoC of a run's latents against the simulator's true factors "
        "(writes disentangle.md/.csv/.json and heat maps to --out, default RUN_DIR/disentangle; "
        "docs/disentanglement.md)",
    )
    disentangle.add_argument("dirs", nargs="*", type=Path, metavar="RUN_DIR", help="one run directory")
    disentangle.add_argument("--out", type=Path, help="folder for the outputs (default: RUN_DIR/disentangle)")
    disentangle.add_argument("--shift", "--shifts", dest="shifts", nargs="+", metavar="SHIFT",
                             help="shifts to measure under (default: none color_hard distracting_cs)")
    disentangle.add_argument("--samples", type=int, metavar="N", help="observations per shift (default: 2000)")
    disentangle.add_argument("--per-episode", type=int, metavar="N",
                             help="observations per episode (default: 20)")
    disentangle.add_argument("--bins", type=int, metavar="N",
                             help="equal-frequency bins per continuous variable (default: 20)")
    add_source_arguments(disentangle)
    traverse = jobs.add_parser(
        "traverse", help="an ALDA or SAC+AE run's latent traversals, one latent swept per row and decoded "
        "(writes traversal.png to --out, default RUN_DIR/traversal; docs/alda.md)",
    )
    traverse.add_argument("dirs", nargs="*", type=Path, metavar="RUN_DIR", help="one run directory")
    traverse.add_argument("--out", type=Path, help="folder for traversal.png (default: RUN_DIR/traversal)")


def report_argv(argv: list[str]) -> list[str]:
    """`argv` with the flags of the one-command `unseen report` (before its subcommands) in the new form:
    `report DIR...` is `report tables DIR...`, `report --grad RUN...` is `report grad RUN...`, and the same for
    `--disentangle` and `--traverse`."""
    if not argv or argv[0] != "report" or (len(argv) > 1 and argv[1] in (*REPORTS, "-h", "--help")):
        return argv
    rest = argv[1:]
    for job in ("grad", "disentangle", "traverse"):
        if f"--{job}" in rest:
            rest.remove(f"--{job}")
            return ["report", job, *rest]
    return ["report", "tables", *rest]


RAY_FLAGS = {"address": "--address", "cpus": "--cpus-per-run", "gpus": "--gpus-per-run",
             "memory_gb": "--memory-per-run", "retries": "--retries"}
"""The Ray backend's options (`sweep_ray.RayOptions` fields) and their flags."""


def add_ray_arguments(sweep: argparse.ArgumentParser) -> None:
    """`unseen sweep --backend ray`: each cell a Ray task (docs/sweep.md)."""
    sweep.add_argument("--backend", choices=("local", "ray"), default="local",
                       help="local: a worker pool on this machine (default); ray: Ray tasks on a Ray cluster")
    sweep.add_argument("--address", help="ray: the cluster's head, HOST:PORT or auto (default: start Ray here)")
    sweep.add_argument("--cpus-per-run", dest="cpus", type=float, metavar="N",
                       help="ray: CPUs each run reserves and uses as threads (default: 1)")
    sweep.add_argument("--gpus-per-run", dest="gpus", type=float, metavar="N",
                       help="ray: GPUs each run reserves, e.g. 0.25: four runs share a GPU (default: 0)")
    sweep.add_argument("--memory-per-run", dest="memory_gb", type=float, metavar="GB",
                       help="ray: memory each run reserves, in GB (default: none)")
    sweep.add_argument("--retries", type=int, metavar="N",
                       help="ray: times a cell whose worker or node died runs again, resuming (default: 3)")


def build_parser() -> Parser:
    parser = Parser(prog="unseen",
                    description="Zero-shot generalization in visual RL on DeepMind Control and xArm manipulation.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    train = commands.add_parser(
        "train", help="train an agent; writes one run directory",
        description="Train an agent into a run directory (--out), continue a stopped run (--resume), or start one "
        "again from its saved config (--restart: after a failure before its first checkpoint, or when a file it "
        "needs is damaged; it deletes only the files unseen wrote there).",
    )
    train.add_argument("--algo", choices=algos(), help="algorithm (required unless --resume or --restart)")
    train.add_argument("--task", help="task, e.g. cartpole_swingup or xarm_reach (required unless --resume or "
                       "--restart)")
    train.add_argument("--preset", choices=PRESETS, help="defaults of docs/protocol.md (default: cpu)")
    train.add_argument("--seed", type=int, help="seed of everything random, 0..2^32-1 (default: 0)")
    train.add_argument("--steps", type=int, help="agent steps to train for (default: the preset's)")
    train.add_argument("--out", type=Path, help="run directory, new or empty "
                       "(default: runs/<task>/<algo>-<preset>-seed<N>-<time>)")
    train.add_argument(
        "--set", dest="overrides", nargs="+", default=[], metavar="SECTION.FIELD=VALUE",
        help="override config fields, e.g. --set train.batch_size=64 env.image_size=84",
    )
    train.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a stopped run from its last checkpoint")
    train.add_argument("--restart", type=Path, metavar="RUN_DIR",
                       help="start a run again from its saved config, from step 0: deletes the files unseen wrote in "
                       "RUN_DIR (checkpoint, replay, logs, videos, TensorBoard events, summary) and nothing else")
    train.add_argument("--image-dir", help="overlay images of CG2A's augmentations, a folder at any depth "
                       "(Places365: paper-comparable numbers); the same as --set agent.overlay_dir=DIR "
                       "(default: agent.overlay_source, photos)")

    evaluate = commands.add_parser("eval", help="zero-shot evaluation of a trained run")
    evaluate.add_argument("run_dir", type=Path, help="a run directory made by unseen train")
    evaluate.add_argument("--shifts", nargs="+", default=["none"], help="shifts to evaluate on (default: none)")
    evaluate.add_argument("--episodes", type=int, default=10, help="episodes per shift (default: 10)")
    evaluate.add_argument("--workers", type=int, default=0, help="processes running episodes (default: one per core)")
    evaluate.add_argument(
        "--adapt", action="store_true",
        help="also evaluate with test-time adaptation (PAD): rows with adapted=True, summary.json's adapted_returns",
    )
    add_source_arguments(evaluate)
    report = commands.add_parser(
        "report", help="tables: paper-format tables, curves and statistics of finished runs; grad: CG2A's gradient "
        "plots; disentangle: latents against the true factors; traverse: latent traversals",
    )
    add_report_parsers(report)

    sweep = commands.add_parser("sweep", help="run a grid of methods x tasks x seeds from a YAML file, then report")
    sweep.add_argument("file", type=Path, help="the sweep file (docs/sweep.md)")
    sweep.add_argument("--workers", type=int,
                       help="local backend: runs at a time, each with cores // N threads (default: 1)")
    sweep.add_argument("--dry-run", action="store_true",
                       help="print what each run still needs and the commands; run nothing")
    add_ray_arguments(sweep)

    show = commands.add_parser("show", help="draw what the agent sees under each shift (a PNG)")
    show.add_argument("--task", required=True, help="task, e.g. walker_walk or xarm_reach")
    show.add_argument("--shifts", nargs="+", help="shifts, one row each (default: all)")
    show.add_argument("--out", type=Path, required=True, help="the PNG file to write")
    show.add_argument("--frames", type=int, default=5,
                      help="frames per shift (1 to 20), spread over a quarter of an episode (default: 5)")
    show.add_argument("--seed", type=int, default=0, help="seed of the episode and its random actions (default: 0)")
    show.add_argument("--image-size", type=int, default=84, help="frame size in pixels (default: 84, what agents see)")
    add_source_arguments(show)

    bench = commands.add_parser(
        "bench", help="measure the machine's peaks and unseen's throughput (updates, environments, evaluation, "
        "thread sharing), as ratios measured in one run; prints Markdown tables",
    )
    bench.add_argument("--quick", action="store_true", help="fewer repetitions: about 5 minutes on 2 idle cores")
    bench.add_argument("--json", type=Path, help="also write the results to this JSON file")
    bench.add_argument("--out", type=Path,
                       help="also write OUT/<machine>.json and OUT/<machine>.md, named after the CPU, its widest "
                       "vector feature and its cores (e.g. amd-epyc-avx2-2cores)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(report_argv(sys.argv[1:] if argv is None else argv))
    try:
        commands = {"train": run_train, "eval": run_eval, "report": run_report, "sweep": run_sweep, "show": run_show,
                    "bench": run_bench}
        return commands[args.command](args)
    except UserError as error:
        print(f"unseen {args.command}: error: {error}", file=sys.stderr)
        return 2
    except Stopped as stop:
        print(f"unseen {args.command}: stopped by signal {stop.signum}; nothing was written, run it again",
              file=sys.stderr)
        return 128 + stop.signum
    except Interrupted as stop:
        run_dir = args.resume or args.restart or args.out
        print(f"unseen: stopped at step {stop.step}; continue with: unseen train --resume {run_dir}", file=sys.stderr)
        return 128 + stop.signum
    except KeyboardInterrupt:  # before training installed its own handler, or in another command
        print(f"unseen {args.command}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT


NEW_RUN_FLAGS = ("algo", "task", "preset", "seed", "steps", "out", "image_dir")
"""`unseen train`'s flags that make a new run's config (with --set): refused with --resume and --restart."""


def run_train(args: argparse.Namespace) -> int:
    # Imported per command so that `unseen --help` and usage errors answer without loading torch and MuJoCo.
    from unseen import train

    if args.resume is not None or args.restart is not None:
        flag, run_dir = ("--resume", args.resume) if args.resume is not None else ("--restart", args.restart)
        given = [f"--{name.replace('_', '-')}" for name in NEW_RUN_FLAGS if getattr(args, name) is not None]
        given += ["--restart"] if args.resume is not None and args.restart is not None else []
        if given or args.overrides:
            raise UserError(f"{flag} takes the run's saved config; drop {', '.join(given or ['--set'])}")
        summary = train.resume(run_dir) if args.resume is not None else train.restart(run_dir)
    else:
        if args.algo is None or args.task is None:
            raise UserError("--algo and --task are required (or --resume RUN_DIR, or --restart RUN_DIR)")
        if args.steps is not None and args.steps <= 0:
            raise UserError(f"--steps must be positive, got {args.steps}")
        preset, seed = args.preset or "cpu", 0 if args.seed is None else args.seed
        cfg = make_config(args.algo, args.task, preset, seed, args.steps)
        if args.image_dir and not hasattr(cfg.agent, "overlay_dir"):
            raise UserError(f"--image-dir sets the overlay images of agents that overlay, not {args.algo}'s; drop it")
        overrides = args.overrides + ([f"agent.overlay_dir={args.image_dir}"] if args.image_dir else [])
        cfg = apply_overrides(cfg, overrides)
        name = f"{args.algo}-{preset}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir = args.out or Path("runs") / args.task / name
        args.out = run_dir
        summary = train.start(cfg, run_dir)
    if summary is None:  # a run without `stop_at` always trains to its end
        raise RuntimeError(f"training of {run_dir} stopped before its last step")
    print(f"run directory: {run_dir}")
    print(f"return on the training environment: {summary['returns']['none']['mean']:.1f} "
          f"+- {summary['returns']['none']['std']:.1f} over {summary['returns']['none']['episodes']} episodes "
          f"({summary['frames']} frames, {summary['wall_time_s'] / 60:.1f} min)")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from unseen.evaluate import evaluate_run

    rows = evaluate_run(args.run_dir, args.shifts, args.episodes, source_options(args), args.workers, args.adapt)
    success = all("success" in row for row in rows)  # families whose environments report success (xArm)
    width = 26 if args.adapt else 16  # room for "distracting_cs (adapted)"
    print(f"{'shift':<{width}}{'return':>10}{'std':>8}{'episodes':>10}" + (f"{'success':>9}" if success else "")
          + "  source")
    for row in rows:
        shift = row["shift"] + (" (adapted)" if row.get("adapted") else "")
        rate = f"{row['success']:>9.0%}" if success else ""
        print(f"{shift:<{width}}{row['return_mean']:>10.1f}{row['return_std']:>8.1f}{row['episodes']:>10}{rate}  "
              f"{row['source']}")
    print(f"written to {args.run_dir / 'eval.csv'} and {args.run_dir / 'summary.json'}")
    return 0


def one_run(args: argparse.Namespace, what: str) -> Path:
    """The single RUN_DIR of `report disentangle` and `report traverse`."""
    if len(args.dirs) != 1:
        raise UserError(f"report {args.report} RUN_DIR {what}; pass exactly one run directory")
    return Path(args.dirs[0])


def run_disentangle(args: argparse.Namespace) -> int:
    from unseen.disentangle_report import DEFAULT_SHIFTS, DisentangleConfig, write_disentangle_report

    run_dir = one_run(args, "measures one run")
    given = {"samples": args.samples, "samples_per_episode": args.per_episode, "bins": args.bins}
    options = DisentangleConfig(**{key: value for key, value in given.items() if value is not None})
    shifts = args.shifts or list(DEFAULT_SHIFTS)
    written = write_disentangle_report(run_dir, args.out or run_dir / "disentangle", shifts, options,
                                       source_options(args))
    print(written[0].read_text(), end="")
    print(f"written to {', '.join(str(path) for path in written)}")
    return 0


def run_traverse(args: argparse.Namespace) -> int:
    from unseen.traverse import write_traversal

    run_dir = one_run(args, "draws one run's latents")
    print(f"written to {write_traversal(run_dir, args.out or run_dir / 'traversal')}")
    return 0


def run_grad(args: argparse.Namespace) -> int:
    from unseen.grad_report import write_grad_reports

    if args.out is None:
        raise UserError("--out is required: the folder for the plots")
    if not args.dirs:
        raise UserError("pass the CG2A run directories to plot")
    for written in write_grad_reports(args.dirs, args.out):
        print(f"written to {written}")
    return 0


def run_tables(args: argparse.Namespace) -> int:
    from unseen.report import write_report

    if args.out is None:
        raise UserError("--out is required: the folder for the tables (or the plots)")
    if not args.dirs:
        raise UserError("pass run directories (or folders that hold them)")
    if args.reps <= 0:
        raise UserError(f"--reps must be positive, got {args.reps}")
    report = write_report(args.dirs, args.out, ReportConfig(args.reps, args.bootstrap_seed))
    print(report.table.read_text(), end="")
    for note in report.notes:
        print(f"aggregates: {note}")
    print(f"written to {args.out} (report.md lists every table and figure)")
    return 0


def run_report(args: argparse.Namespace) -> int:
    jobs = {"tables": run_tables, "grad": run_grad, "disentangle": run_disentangle, "traverse": run_traverse}
    return jobs[args.report](args)


def run_sweep(args: argparse.Namespace) -> int:
    from functools import partial

    from unseen.sweep import run_sweep

    given = {name: getattr(args, name) for name in RAY_FLAGS if getattr(args, name) is not None}
    if args.backend == "local":
        if given:
            raise UserError(f"{', '.join(RAY_FLAGS[name] for name in given)}: only with --backend ray")
        return run_sweep(args.file, 1 if args.workers is None else args.workers, args.dry_run)
    from unseen.sweep_ray import RayOptions, RaySweep

    if args.workers is not None:
        raise UserError("--workers is the local backend's; with --backend ray set --cpus-per-run (and the cluster "
                        "runs as many runs at a time as its CPUs allow)")
    return run_sweep(args.file, dry_run=args.dry_run, backend=partial(RaySweep, options=RayOptions(**given)))


def run_show(args: argparse.Namespace) -> int:
    from unseen.envs import family_of
    from unseen.show import draw_gallery

    path = draw_gallery(args.task, args.shifts or list(family_of(args.task).shifts), args.out, args.frames, args.seed,
                        image_size=args.image_size, **source_options(args))
    print(f"written to {path}")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from unseen.bench import machine_slug, markdown, run
    from unseen.rundir import output_folder, write_json

    for folder in ([args.json.parent] if args.json is not None else []) + ([args.out] if args.out is not None else []):
        output_folder(folder)  # before minutes of measuring
    result = run(args.quick)
    table = markdown(result)
    print(table, end="")
    written: list[Path] = []
    if args.json is not None:
        write_json(args.json, result)
        written.append(args.json)
    if args.out is not None:
        stem = args.out / machine_slug(result["machine"])
        write_json(stem.with_suffix(".json"), result)
        stem.with_suffix(".md").write_text(table)
        written += [stem.with_suffix(".json"), stem.with_suffix(".md")]
    for path in written:
        print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
