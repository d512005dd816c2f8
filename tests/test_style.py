"""One code style across the tree: `ruff format` with the settings in pyproject.toml."""

import os
import shutil
import subprocess
import sys

import pytest

import subproc

ROOT = subproc.ROOT


def _ruff() -> list[str]:
  exe = shutil.which('ruff') or os.path.join(os.path.dirname(sys.executable), 'ruff')
  if not os.path.exists(exe):
    pytest.fail('ruff is not installed: pip install -e ".[test]"')
  return [exe]


def test_tree_is_formatted():
  out = subprocess.run(
    _ruff() + ['format', '--check', 'mstrnn_jax', 'experiments', 'tests', 'benchmarks'],
    cwd=ROOT,
    capture_output=True,
    text=True,
  )
  assert out.returncode == 0, (
    'not formatted (run `ruff format mstrnn_jax experiments tests benchmarks`):\n'
    + out.stdout
    + out.stderr
  )
