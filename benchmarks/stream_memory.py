"""Peak host memory of streaming batches (data/stream.py) vs loading a prepared dataset whole.

  python benchmarks/stream_memory.py --budget_mib=64 --videos=720 --workdir=/tmp/stream_bench
  python benchmarks/stream_memory.py --budget_mib=64 --videos=720 --workdir=/tmp/stream_bench --train

Writes a toy folder dataset (toy_videos: 64x64 clips of --length frames), prepares it, then in
fresh processes (a) streams two epochs of [R, B, T, 64, 64, 3] batches covering every video with
`BatchStream(memory_budget=budget)` and (b) loads the dataset into memory, printing each
process's resident memory before and its peak (VmHWM, reset after the imports) during the work.
With --train it instead trains (launch.launch, tiny preset, one epoch of the run holding out
subject 0, frames 64 cropped to 58) once with --config.stream=always and the budget, once with
--config.stream=never (the whole dataset in memory and on the device), and prints the same.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import time


def _status(key: str) -> int:
  """VmRSS / VmHWM of this process in bytes."""
  for line in pathlib.Path('/proc/self/status').read_text().splitlines():
    if line.startswith(key + ':'):
      return int(line.split()[1]) * 1024
  raise KeyError(key)


def _reset_peak() -> None:
  pathlib.Path('/proc/self/clear_refs').write_text('5')  # resets VmHWM to the current RSS


def child(mode: str, name: str, data_dir: str, budget: int, runs: int, batch: int) -> dict:
  import numpy as np

  from mstrnn_jax.data import pipeline, stream

  source = stream.open_source(name, data_dir, frame_size=64)  # opens; prepared already
  n = len(source)
  rng = np.random.default_rng(0)
  steps = -(-n // batch)
  _reset_peak()
  base = _status('VmRSS')
  t0 = time.perf_counter()
  total = 0
  if mode == 'stream':
    for _ in range(2):  # two epochs, each run a permutation of all videos
      rows = np.stack([np.resize(rng.permutation(n), steps * batch).reshape(steps, batch)
                       for _ in range(runs)])  # fmt: skip
      with stream.BatchStream(source, rows, memory_budget=budget) as batches:
        for videos in batches:
          total += videos.nbytes
  else:
    ds = pipeline.load_dataset(name, data_dir, frame_size=64)
    total = ds.videos.nbytes
  return _report(mode, base, total, t0)


def train_child(mode: str, name: str, data_dir: str, budget_mib: float, out: str) -> dict:
  """One epoch of the tiny preset on the prepared folder, streamed or in memory."""
  from mstrnn_jax import experiment_configs as ec
  from mstrnn_jax import launch

  config = ec.override(ec.get_config("tiny", name), {
      "data.folder.frame_size": 64, "data.folder.crop_margin": 6, "subjects": (0,), "epochs": 1,
      "stream": "always" if mode == "train-stream" else "never",
      "data_memory_budget_mib": budget_mib})  # fmt: skip
  _reset_peak()
  base = _status('VmRSS')
  t0 = time.perf_counter()
  launch.launch(config, workdir=out, data_dir=data_dir, progress=False, log=lambda s: None)
  return _report(mode, base, 0, t0)


def _report(mode: str, base: int, total: int, t0: float) -> dict:
  return {"mode": mode, "rss_before_mib": base / 2**20, "peak_mib": _status("VmHWM") / 2**20,
          "peak_minus_before_mib": (_status("VmHWM") - base) / 2**20,
          "bytes_delivered_mib": total / 2**20, "seconds": time.perf_counter() - t0}  # fmt: skip


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--budget_mib', type=float, default=64)
  p.add_argument('--videos', type=int, default=720, help='clips written (multiple of 2*subjects)')
  p.add_argument('--length', type=int, default=30)
  p.add_argument('--subjects', type=int, default=6)
  p.add_argument('--runs', type=int, default=4)
  p.add_argument('--batch', type=int, default=8)
  p.add_argument('--workdir', default='/tmp/stream_bench')
  p.add_argument('--train', action='store_true', help='measure training (stream vs in memory)')
  p.add_argument('--child', default=None, help=argparse.SUPPRESS)
  a = p.parse_args()
  work = pathlib.Path(a.workdir)
  name, data_dir = f'folder:{work / "videos"}', str(work / 'data')
  budget = int(a.budget_mib * 2**20)
  if a.child and a.child.startswith('train-'):
    out = str(work / f'run-{a.child}-{time.time_ns()}')
    print(json.dumps(train_child(a.child, name, data_dir, a.budget_mib, out)))
    return
  if a.child:
    print(json.dumps(child(a.child, name, data_dir, budget, a.runs, a.batch)))
    return
  from mstrnn_jax.data import folder, stream, toy_videos

  if not (work / 'videos').is_dir():
    toy_videos.make_folder(
      work / 'videos',
      subjects=a.subjects,
      clips_per_class=a.videos // (2 * a.subjects),
      length=a.length,
      size=64,
    )
  t0 = time.perf_counter()
  prepared = folder.prepare(name, data_dir, frame_size=64)
  src = folder.Records(prepared)
  size = stream.dataset_nbytes(len(src), src.t_max, src.frame_size)
  on_disk = sum(f.stat().st_size for f in prepared.iterdir())
  print(
    f'prepared {len(src)} videos [T_max={src.t_max}, 64, 64, 3] in '
    f'{time.perf_counter() - t0:.1f} s: {size / 2**20:.1f} MiB in memory '
    f'({size / budget:.1f}x the {a.budget_mib:g} MiB budget), '
    f'{on_disk / 2**20:.1f} MiB on disk'
  )
  for mode in ('train-stream', 'train-memory') if a.train else ('stream', 'load'):
    out = subprocess.run(
      [
        sys.executable,
        __file__,
        f'--child={mode}',
        f'--workdir={work}',
        f'--budget_mib={a.budget_mib}',
        f'--runs={a.runs}',
        f'--batch={a.batch}',
      ],
      capture_output=True,
      text=True,
      check=True,
    )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(
      f'{mode:6s}: RSS before {r["rss_before_mib"]:.0f} MiB, peak {r["peak_mib"]:.0f} MiB '
      f'(+{r["peak_minus_before_mib"]:.1f} MiB), delivered {r["bytes_delivered_mib"]:.0f} MiB '
      f'in {r["seconds"]:.1f} s'
    )


if __name__ == '__main__':
  main()
