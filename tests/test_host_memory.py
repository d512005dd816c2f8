"""The compile-time memory release: wired to XLA compiles, values untouched."""

import sys

import jax.numpy as jnp
import numpy as np
import pytest

from mstrnn_jax import host_memory, train


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc malloc_trim')
def test_malloc_trim_found_on_linux():
  assert host_memory.malloc_trim() is not None
  host_memory.malloc_trim()()  # callable, returns nothing


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc malloc_trim')
def test_engine_jit_trims_after_each_new_compile_only(monkeypatch):
  calls = []
  train.jit(jnp.sin)  # installs the listener (the real malloc_trim is found)
  monkeypatch.setattr(host_memory, 'malloc_trim', lambda: lambda: calls.append(1))
  f = train.jit(lambda x: jnp.cumsum(x * 3.0 - 1.25))  # a program nobody compiled before
  x = jnp.arange(7.0)
  y = f(x)
  assert len(calls) >= 1, 'no trim after the compile'
  n = len(calls)
  f(x).block_until_ready()  # cached executable: no compile, no trim
  assert len(calls) == n
  np.testing.assert_array_equal(np.asarray(y), np.cumsum(np.arange(7.0) * 3.0 - 1.25))


def test_install_is_idempotent():
  first = host_memory.release_after_compiles()
  assert host_memory.release_after_compiles() == first
  assert host_memory.release_after_compiles.cache_info().currsize == 1
