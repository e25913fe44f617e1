"""Time whole training steps of xarm_reach at the cpu preset, one thread, by wall clock and process CPU time: how the
xArm cpu preset was sized (docs/presets.md, "xArm"; results in timing.json).

    OMP_NUM_THREADS=1 MUJOCO_GL=egl python results/xarm/timing.py sac,svea,cg2a UPDATES OUT.json

Per algorithm: a Trainer of make_config(algo, "xarm_reach", "cpu", seed=1) with 60 random seed steps (the environment
alone), then UPDATES steps with an update (the first 5 are not counted), then 4 evaluation episodes (none, test1).
"""
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from unseen.config import make_config, validate
from unseen.evaluate import evaluate
from unseen.train import Trainer

algos = sys.argv[1].split(",")
updates = int(sys.argv[2])
out = {}
for algo in algos:
    cfg = make_config(algo, "xarm_reach", "cpu", seed=1)
    cfg.train.seed_steps = 60
    cfg.train.steps = 60 + updates
    cfg.train.eval_every = 0
    cfg.train.checkpoint_every = 0
    cfg.train.tensorboard = False
    cfg.train.video = False
    cfg.train.threads = 1
    cfg.agent.precision = "float32"
    validate(cfg)
    run = Path(tempfile.mkdtemp(prefix=f"xm-{algo}-"))
    t = Trainer(cfg, run)
    env_wall, env_cpu = [], []
    for _ in range(cfg.train.seed_steps):
        w, c = time.perf_counter(), time.process_time()
        t.train_step()
        env_wall.append(time.perf_counter() - w)
        env_cpu.append(time.process_time() - c)
    wall, cpu = [], []
    for _ in range(updates):
        w, c = time.perf_counter(), time.process_time()
        t.train_step()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    skip = 5
    ev_w, ev_c = time.perf_counter(), time.process_time()
    for shift in ("none", "test1"):
        evaluate(t.agent, cfg, shift, 2)
    ev_w, ev_c = (time.perf_counter() - ev_w) / 4, (time.process_time() - ev_c) / 4
    t.close()
    out[algo] = {
        "seed_step_ms_wall": 1000 * np.mean(env_wall), "seed_step_ms_cpu": 1000 * np.mean(env_cpu),
        "step_ms_wall": 1000 * np.mean(wall[skip:]), "step_ms_cpu": 1000 * np.mean(cpu[skip:]),
        "step_ms_wall_median": 1000 * np.median(wall[skip:]),
        "eval_episode_s_wall": ev_w, "eval_episode_s_cpu": ev_c, "updates": updates - skip,
    }
    print(algo, json.dumps(out[algo]), flush=True)
Path(sys.argv[3]).write_text(json.dumps(out, indent=1))
