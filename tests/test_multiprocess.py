"""Two real processes on localhost (`experiments/run.py --multihost`, jax.distributed, gloo).

Each process owns one CPU device, so the run axis (3 LOSO folds, padded to 4) is split over
two processes; the results must equal a single-process run over two simulated devices (the
same per-device programs; `test_parallel.py` shows N simulated devices == one device), and
only process 0 may write files outside the checkpoints (which orbax writes from every process).
"""

import json
import socket
import subprocess
import sys
import textwrap

from mstrnn_jax import parallel

import subproc

ROOT = subproc.ROOT
ARGS = ['--preset=tiny', '--epochs=1']

# Runs experiments/run.py in this interpreter, logging every file write / mkdir / rename /
# removal under the workdir (argv[2]) to argv[1], one JSON line each (Python audit hooks).
AUDITED_RUN = textwrap.dedent("""
    import json, os, runpy, sys
    log_path, workdir = sys.argv[1], os.path.realpath(sys.argv[2])
    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def under_workdir(path):
      return isinstance(path, (str, bytes, os.PathLike)) and os.path.realpath(
          os.fsdecode(path)).startswith(workdir)

    def hook(event, args):
      if event == 'open':
        path, mode, flags = args
        writes = any(c in (mode or '') for c in 'wax+') or bool((flags or 0) & WRITE_FLAGS)
        paths = [path] if writes else []
      elif event in ('os.mkdir', 'os.remove', 'os.rmdir', 'shutil.rmtree'):
        paths = [args[0]]
      elif event in ('os.rename', 'os.replace'):
        paths = list(args[:2])
      else:
        return
      for path in paths:
        if under_workdir(path):
          with open(log_path, 'a') as f:  # outside the workdir: not logged itself
            f.write(json.dumps([event, os.path.relpath(os.fsdecode(path), workdir)]) + '\\n')

    sys.addaudithook(hook)
    sys.argv = ['experiments/run.py'] + sys.argv[3:]
    runpy.run_path('experiments/run.py', run_name='__main__')
""")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


# One thread per XLA:CPU op in all three processes. With Eigen's thread pool the reference (two
# devices in one process) and the two processes (one device each) are bit-equal on 2 cores but
# round differently when pinned to one core (a train loss 3.3665805 vs 3.3665807, measured
# 2026-12-06 with `taskset -c 1`); with this flag they are equal either way.
ONE_THREAD_PER_OP = '--xla_cpu_multi_thread_eigen=false'


def _env(devices: int | None = None, **extra) -> dict:
  """This environment without multi-process settings (see ``subproc.cpu_env``), one thread
  per op (``ONE_THREAD_PER_OP``)."""
  env = subproc.cpu_env(devices, drop=parallel.PROCESS_ENV, **extra)
  env['XLA_FLAGS'] = ' '.join([*env['XLA_FLAGS'].split(), ONE_THREAD_PER_OP])
  return env


def _audited(log, workdir, args, env):
  return subprocess.Popen(
    [sys.executable, '-c', AUDITED_RUN, str(log), str(workdir), *args],
    cwd=ROOT,
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )


def _results(workdir):
  with open(workdir / 'results.json') as f:
    results = json.load(f)
  model = results['models']['mstrnn']
  return {
    'history': model['history'],
    'summary': model['summary'],
    'runs': model['runs'],
    'tables': results['tables'],
  }


def _written(log):
  if not log.exists():
    return set()
  return {tuple(json.loads(line)) for line in log.read_text().splitlines()}


def test_two_processes_equal_one_and_only_process_0_writes(tmp_path):
  multi, single = tmp_path / 'multi', tmp_path / 'single'
  port = _free_port()
  procs = [
    _audited(
      tmp_path / f'writes{i}.jsonl',
      multi,
      ['--multihost', *ARGS, f'--workdir={multi}'],
      _env(
        JAX_COORDINATOR_ADDRESS=f'127.0.0.1:{port}', JAX_NUM_PROCESSES='2', JAX_PROCESS_ID=str(i)
      ),
    )
    for i in range(2)
  ]
  reference = subprocess.run(
    [sys.executable, 'experiments/run.py', *ARGS, f'--workdir={single}'],
    cwd=ROOT,
    env=_env(devices=2),
    capture_output=True,
    text=True,
    timeout=600,
  )
  outputs = [p.communicate(timeout=600) for p in procs]
  for p, (_, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]
  assert reference.returncode == 0, reference.stderr[-3000:]
  assert '2 device(s)' in outputs[0][0] and '2 device(s)' in reference.stdout

  assert _results(multi) == _results(single)
  writes0, writes1 = _written(tmp_path / 'writes0.jsonl'), _written(tmp_path / 'writes1.jsonl')
  assert any(path == 'results.json' for _, path in writes0), writes0
  outside_checkpoints = {(e, p) for e, p in writes1 if not p.startswith('checkpoints')}
  assert not outside_checkpoints, f'process 1 wrote {sorted(outside_checkpoints)}'
