"""Test helper: the repository root and the environment of a child process (CPU, this
checkout, optionally a simulated device count)."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVICE_COUNT = '--xla_force_host_platform_device_count'


def cpu_env(devices: int | None = None, drop=(), **extra) -> dict:
  """This process's environment for a CPU child running this checkout.

  Any device count already in ``XLA_FLAGS`` is dropped and ``devices`` (if given) sets one;
  the other XLA flags (the suite's, tests/conftest.py) are kept. ``drop`` names variables
  left out; ``extra`` adds or replaces variables.
  """
  env = {k: v for k, v in os.environ.items() if k not in drop}
  flags = [f for f in env.get('XLA_FLAGS', '').split() if not f.startswith(DEVICE_COUNT)]
  if devices is not None:
    flags.append(f'{DEVICE_COUNT}={devices}')
  env.update(XLA_FLAGS=' '.join(flags), PYTHONPATH=ROOT, JAX_PLATFORMS='cpu', **extra)
  return env
