"""Test-session setup: one fresh JAX persistent compilation cache shared by the whole session.

Most of the suite's time is XLA compiling the same tiny programs again: in each subprocess the
tests spawn (experiments/run.py, sweep.py, analyze.py, the notebook kernel) and for each new jit
object. The cache is switched on through the environment before JAX is imported, so this process,
every pytest-xdist worker and every subprocess (all inherit os.environ) read and write one
directory. The directory is new for each session (created by the controller, removed at its end):
never a stale cache from an earlier checkout or JAX version. A cached executable is the compiled
program itself, so results stay bit-identical (the reproducibility tests check that across
processes). A size limit (never reached) turns on JAX's file lock around cache reads and writes:
without it a process could read an entry another one is still writing (a warning on stderr, which
some tests check, and a needless recompile).

The suite also compiles with XLA:CPU's older fusion emitters (``TEST_XLA_FLAGS``, appended to
``XLA_FLAGS`` and so inherited like the cache): the engine's programs compile ~30% faster that
way (a tiny-preset run: 29 s instead of 41 s; benchmarks/RESULTS.md, "The flag again, and for
the test suite"), and the suite's time is mostly compiling. The tests compare programs with
each other and with float64 references, never with numbers measured under the default
emitters. Users keep XLA's defaults (the flag's effect on the step time is not settled:
benchmarks/RESULTS.md).
"""

import os
import shutil
import tempfile

SETTINGS = {  # JAX config name: value; the environment variable is the name in capitals
  'jax_persistent_cache_min_compile_time_secs': 0,  # cache every program, however fast
  'jax_persistent_cache_min_entry_size_bytes': 0,
  'jax_compilation_cache_max_size': 1 << 40,  # bytes; any limit means locked access
}
TEST_XLA_FLAGS = ('--xla_cpu_use_fusion_emitters=false',)
_OWNED = 'MSTRNN_TEST_OWNS_JAX_CACHE'  # set by the process that created (and removes) the directory


def _cache_dir() -> str:
  """The session's cache directory: inherited by xdist workers, else created here."""
  if os.environ.get(_OWNED) is None and 'PYTEST_XDIST_WORKER' not in os.environ:
    os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(prefix='mstrnn-jax-cache-')
    os.environ[_OWNED] = str(os.getpid())
  return os.environ['JAX_COMPILATION_CACHE_DIR']


os.environ.update({name.upper(): str(value) for name, value in SETTINGS.items()})
os.environ['JAX_COMPILATION_CACHE_DIR'] = _cache_dir()
_flags = os.environ.get('XLA_FLAGS', '').split()
os.environ['XLA_FLAGS'] = ' '.join(_flags + [f for f in TEST_XLA_FLAGS if f not in _flags])


def pytest_configure(config):
  import jax  # after the environment above; the updates also cover a JAX imported earlier

  jax.config.update('jax_compilation_cache_dir', os.environ['JAX_COMPILATION_CACHE_DIR'])
  for name, value in SETTINGS.items():
    jax.config.update(name, value)


def pytest_unconfigure(config):
  if os.environ.get(_OWNED) == str(os.getpid()):
    shutil.rmtree(os.environ['JAX_COMPILATION_CACHE_DIR'], ignore_errors=True)
