"""`unseen report disentangle RUN_DIR`: how disentangled a trained agent's latents are against the
simulator's true factors (docs/disentanglement.md).

For each shift: a fixed, seeded set of observations with the factors that made them (`collect`), their
latents (`agent.latents`), and `unseen.disentangle.score` of the two; written as disentangle.md, .csv,
.json and one heat map per shift of the latent-factor normalised mutual information.

The observations (`collect`): `samples / samples_per_episode` episodes, the same seeds under every shift,
drawn from a stream of the run's seed of their own (apart from training and evaluation). The behaviour is
the trained policy with its own exploration noise (a sampled action), replaced by a uniform random action
with probability `random_action_prob`, so the states are those the agent visits, widened a little. From
each episode `samples_per_episode` observations at agent steps drawn without replacement from the whole
episode (the reset included): a few per episode and many episodes, because a shift draws its colours,
video and camera start once per episode, so these factors take one value per episode.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from unseen.agents import Agent
from unseen.disentangle import ALPHA, BINS, MIN_RANGE_FRACTION, PERMUTATIONS, Estimation, Scores, score
from unseen.envs import Env, check_shifts
from unseen.errors import UserError
from unseen.evaluate import make_run_env
from unseen.rundir import OpenRun, open_run, output_folder, write_json

DEFAULT_SHIFTS = ("none", "color_hard", "distracting_cs")
"""The training environment, and the two shifts of ALDA's evaluation, which carry distractor factors."""

# Collection seeds come from SeedSequence([run seed, _FACTOR_STREAM]): evaluation uses stream 1, the
# shifts' own generators stream 2.
_FACTOR_STREAM = 3
_ENCODE_BATCH = 256


@dataclass
class DisentangleConfig:
    """How observations are collected and how the metrics are estimated."""

    samples: int = 2000
    """Observations per shift."""
    samples_per_episode: int = 20
    """Observations taken from each episode (at distinct random steps); episodes = samples / this, rounded up."""
    random_action_prob: float = 0.2
    """Probability that a step takes a uniform random action instead of the policy's sampled one."""
    bins: int = BINS
    """Equal-frequency bins per continuous variable of the mutual-information estimate."""
    alpha: float = ALPHA
    """Family-wise significance level of the tests that keep normalised mutual-information entries."""
    permutations: int = PERMUTATIONS
    """Shufflings of episodes in the permutation null of the mutual-information estimates."""
    min_range_fraction: float = MIN_RANGE_FRACTION
    """Latents whose range is below this fraction of the largest are inactive (Hsu et al.; 0: off)."""

    @property
    def episodes(self) -> int:
        return math.ceil(self.samples / self.samples_per_episode)

    def validate(self) -> DisentangleConfig:
        """Check every field; `UserError` with one line naming the fix."""
        if self.samples <= 0:
            raise UserError(f"--samples must be positive, got {self.samples}")
        if self.samples_per_episode <= 0:
            raise UserError(f"--per-episode must be positive, got {self.samples_per_episode}")
        if self.bins < 2:
            raise UserError(f"--bins must be at least 2, got {self.bins}")
        if not 0 < self.alpha <= 1 or self.permutations < 2:
            raise UserError(
                f"alpha must lie in (0, 1] and permutations be at least 2, got {self.alpha} and {self.permutations}"
            )
        if not 0 <= self.random_action_prob <= 1 or not 0 <= self.min_range_fraction < 1:
            raise UserError("random_action_prob must lie in [0, 1] and min_range_fraction in [0, 1)")
        return self


@dataclass
class Samples:
    """Observations of one shift with the true factors that made their newest frame."""

    shift: str
    obs: np.ndarray
    """`[N, 3k, H, W]` uint8."""
    factors: np.ndarray
    """`[N, F]`; angles of hinges without limits wrapped into [-pi, pi) (the picture repeats every 2 pi)."""
    factor_names: list[str]
    episode: np.ndarray
    """`[N]` the episode of each observation."""
    record: dict[str, str | float]
    """The shift's data source (`ShiftConfig.record`)."""


def collection_seeds(seed: int, episodes: int) -> tuple[int, list[int]]:
    """The seed of the behaviour's randomness and the seeds of the `episodes` episodes of a run seeded `seed`."""
    state = np.random.SeedSequence([seed, _FACTOR_STREAM]).generate_state(episodes + 1)
    return int(state[0]), [int(s) for s in state[1:]]


def collect(agent: Agent, env: Env, seed: int, options: DisentangleConfig) -> Samples:
    """`options.samples` observations of `env` (made with `true_factors`) and their factors; the same for the
    same agent state, environment arguments, seed and options (the agent's generator is reseeded)."""
    behaviour_seed, episode_seeds = collection_seeds(seed, options.episodes)
    length = env.max_episode_steps + 1  # observations of an episode, the reset's included
    if options.samples_per_episode > length:
        raise UserError(
            f"--per-episode must be at most {length} (observations in one episode), got {options.samples_per_episode}"
        )
    rng = np.random.default_rng(behaviour_seed)
    agent.generator.manual_seed(behaviour_seed)
    angles = [env.factor_names.index(name) for name in env.angle_factors]
    observations, factors, episode_of = [], [], []
    remaining = options.samples
    progress = tqdm(episode_seeds, desc=f"collecting {env.shift.name}", unit="episode", mininterval=1.0)
    for episode, episode_seed in enumerate(progress):
        wanted = set(rng.choice(length, min(options.samples_per_episode, remaining), replace=False).tolist())
        remaining -= len(wanted)
        obs, info = env.reset(seed=episode_seed)
        for step in range(max(wanted) + 1):
            if step in wanted:
                observations.append(obs)
                factors.append(list(info["factors"].values()))
                episode_of.append(episode)
            if step < max(wanted):
                explore = rng.random() < options.random_action_prob
                action = rng.uniform(-1, 1, env.action_space.shape) if explore else agent.act(obs, deterministic=False)
                obs, _, _, _, info = env.step(action)
    values = np.asarray(factors, dtype=np.float64)
    values[:, angles] = (values[:, angles] + np.pi) % (2 * np.pi) - np.pi
    return Samples(
        env.shift.name, np.stack(observations), values, list(env.factor_names), np.array(episode_of), env.shift.record
    )


def encode(agent: Agent, obs: np.ndarray) -> np.ndarray:
    """`agent.latents` of uint8 observations `[N, 3k, H, W]`, in batches: `[N, D]` float64."""
    chunks = [
        agent.latents(torch.as_tensor(obs[start : start + _ENCODE_BATCH], device=agent.device)).cpu().double().numpy()
        for start in range(0, len(obs), _ENCODE_BATCH)
    ]
    return np.concatenate(chunks)


def measure(
    opened: OpenRun, shifts: list[str], options: DisentangleConfig, sources: dict[str, str] | None = None
) -> tuple[dict, list[tuple[Samples, Scores]]]:
    """Collect, encode and score every shift (checked, as `options`, by the caller); returns the run's description
    and (samples, scores) per shift."""
    cfg = opened.cfg
    agent = None
    results = []
    for shift in shifts:
        # true_factors travels with the data options: make_run_env hands all of them to make_env.
        env = make_run_env(cfg, shift, {**(sources or {}), "true_factors": True})
        try:
            if agent is None:
                agent = opened.restore(env)
            samples = collect(agent, env, cfg.seed, options)
        finally:
            env.close()
        latents = encode(agent, samples.obs)
        estimation = Estimation(options.bins, options.alpha, options.permutations, seed=cfg.seed)
        scores = score(latents, samples.factors, samples.episode, estimation, options.min_range_fraction)
        results.append((samples, scores))
    run = {"run": str(opened.path), "algo": cfg.algo, "task": cfg.env.task, "seed": cfg.seed, "step": opened.step,
           "latent": f"{type(agent).__name__}.latents"}
    return run, results


def shift_entry(samples: Samples, scores: Scores) -> dict:
    """One shift's numbers and what they were computed from, as disentangle.json holds them."""
    names = samples.factor_names
    scored = [name for name, keep in zip(names, scores.scored, strict=True) if keep]
    captured = scores.nmi[:, scores.scored].max(axis=0, initial=0.0) > 0
    return {
        "mig": scores.mig,
        "infom": scores.infom,
        "infoc": scores.infoc,
        "samples": len(samples.obs),
        "episodes": len(np.unique(samples.episode)),
        "latents": scores.nmi.shape[0],
        "active_latents": int(scores.active.sum()),
        "factors": len(names),
        "scored_factors": scored,
        "constant_factors": [name for name, constant in zip(names, scores.constant, strict=True) if constant],
        "duplicate_factors": {names[k]: names[of] for k, of in enumerate(scores.duplicate_of) if of >= 0},
        "uncaptured_factors": [name for name, hit in zip(scored, captured, strict=True) if not hit],
        "factor_names": names,
        "nmi": scores.nmi.tolist(),
        "data": samples.record,
    }


def best_latents(entry: dict) -> pd.DataFrame:
    """Per scored factor: its most informative latent, that NMI, the second largest and their gap (MIG's term)."""
    nmi = pd.DataFrame(entry["nmi"], columns=entry["factor_names"])[entry["scored_factors"]]
    rows = []
    for factor in nmi.columns:
        ordered = nmi[factor].sort_values(ascending=False)
        second = ordered.iloc[1] if len(ordered) > 1 else 0.0
        rows.append({"factor": factor, "latent": f"z{ordered.index[0]}", "nmi": ordered.iloc[0],
                     "second": second, "gap": ordered.iloc[0] - second})
    return pd.DataFrame(rows)


def markdown(run: dict, entries: dict[str, dict], options: DisentangleConfig) -> str:
    """disentangle.md: the metrics per shift, how they were measured, and the best latent of each factor."""
    lines = [
        f"# Disentanglement of {run['algo']} on {run['task']} (seed {run['seed']}, step {run['step']})",
        "",
        "| shift | MIG | InfoM | InfoC | samples | episodes | active latents | scored factors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for shift, e in entries.items():
        lines.append(f"| {shift} | {e['mig']:.3f} | {e['infom']:.3f} | {e['infoc']:.3f} | {e['samples']} "
                     f"| {e['episodes']} | {e['active_latents']} / {e['latents']} "
                     f"| {len(e['scored_factors'])} / {e['factors']} |")
    lines += [
        "",
        f"Latents: `{run['latent']}` of the run's latest checkpoint. Observations: per shift {options.samples} from "
        f"{options.episodes} episodes ({options.samples_per_episode} each, at random steps) of the policy's sampled "
        f"actions, {options.random_action_prob:.0%} of steps uniformly random, the same seeds under every shift. "
        f"Normalised mutual information: {options.bins} equal-frequency bins per continuous variable, plug-in "
        f"estimates adjusted for chance by {options.permutations} permutations of whole episodes, entries not above "
        f"chance at family-wise level {options.alpha} set to 0. "
        f"MIG: Chen et al. 2018; InfoM, InfoC: Hsu et al. 2023, over latents with a range above "
        f"{options.min_range_fraction:g} of the largest and some information. All in [0, 1], higher is more "
        "disentangled; docs/disentanglement.md has the definitions and caveats.",
    ]
    for shift, e in entries.items():
        data = ", ".join(f"{key} {value}" for key, value in e["data"].items())
        lines += ["", f"## {shift}", "", f"Shift data: {data}." if shift != "none" else "The training environment."]
        for label, key in (
            ("Constant (not scored)", "constant_factors"), ("Not captured by any latent", "uncaptured_factors")
        ):
            if e[key]:
                lines.append(f"{label}: {', '.join(e[key])}.")
        if e["duplicate_factors"]:
            duplicates = ", ".join(f"{k} = {v}" for k, v in e["duplicate_factors"].items())
            lines.append(f"Duplicates (not scored): {duplicates}.")
        table = best_latents(e)
        table = table[table["nmi"] > 0]
        if len(table):
            lines += ["", "| factor | best latent | NMI | second | gap |", "|---|---|---|---|---|"]
            lines += [
                f"| {r.factor} | {r.latent} | {r.nmi:.3f} | {r.second:.3f} | {r.gap:.3f} |" for r in table.itertuples()
            ]
    return "\n".join(lines) + "\n"


def draw_heatmap(entry: dict, title: str, path: Path) -> Path:
    """The NMI of every latent (rows, grouped by the factor each informs most) with every scored factor."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    nmi = pd.DataFrame(entry["nmi"], columns=entry["factor_names"])[entry["scored_factors"]]
    strongest = nmi.max(axis=1) if nmi.shape[1] else pd.Series(0.0, index=nmi.index)
    order = sorted(
        nmi.index,
        key=lambda j: (strongest[j] == 0, int(nmi.loc[j].to_numpy().argmax()) if nmi.shape[1] else 0, -strongest[j]),
    )
    nmi = nmi.loc[order]
    figure, axis = plt.subplots(figsize=(max(4.5, 2.4 + 0.3 * nmi.shape[1]), 2.2 + 0.15 * nmi.shape[0]))
    image = axis.imshow(nmi.to_numpy(), cmap="viridis", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    axis.set_xticks(range(nmi.shape[1]), nmi.columns, rotation=90, fontsize=7)
    axis.set_yticks(range(nmi.shape[0]), [f"z{j}" for j in nmi.index], fontsize=6)
    axis.set_xlabel("true factor", fontsize=8)
    axis.set_ylabel("latent, by its most informed factor", fontsize=8)
    axis.set_title(title, fontsize=8)
    figure.colorbar(image, ax=axis, label="normalised mutual information", fraction=0.05)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_disentangle_report(
    run_dir: Path, out: Path, shifts: list[str], options: DisentangleConfig, sources: dict[str, str] | None = None
) -> list[Path]:
    """Measure `run_dir` under `shifts` and write disentangle.md, .csv, .json and nmi_<shift>.png into `out`; every
    argument and the run's files are checked, and `out` made, before the measuring starts."""
    options.validate()
    opened = open_run(run_dir)
    check_shifts(opened.cfg.env.task, shifts, sources)
    output_folder(out)
    run, results = measure(opened, shifts, options, sources)
    entries = {samples.shift: shift_entry(samples, scores) for samples, scores in results}
    write_json(out / "disentangle.json", {**run, "options": dataclasses.asdict(options), "shifts": entries})
    columns = ["mig", "infom", "infoc", "samples", "episodes", "latents", "active_latents", "factors"]
    table = pd.DataFrame([
        {"shift": shift, **{key: e[key] for key in columns}, "scored_factors": len(e["scored_factors"])}
        for shift, e in entries.items()
    ])
    table.to_csv(out / "disentangle.csv", index=False)
    (out / "disentangle.md").write_text(markdown(run, entries, options))
    pictures = [
        draw_heatmap(
            e,
            f"{run['algo']} {run['task']}, {shift}\n"
            f"MIG {e['mig']:.2f}, InfoM {e['infom']:.2f}, InfoC {e['infoc']:.2f}",
            out / f"nmi_{shift}.png",
        )
        for shift, e in entries.items()
    ]
    return [out / "disentangle.md", out / "disentangle.csv", out / "disentangle.json", *pictures]
