"""Hands the XLA compiler's freed host memory back to the operating system after each compile.

XLA frees its compile-time memory (HLO passes, LLVM modules) when a compile ends, but glibc's
allocator keeps the freed pages in its arenas, so the process's resident set stays ~200 MiB
higher and the program's first execution allocates its buffers on top of it: on the 2-core box
the SMALL anchor step peaked at 737 MiB with the pages kept and at 598 MiB with them returned,
the LARGE one at 1358 vs 1138 MiB (benchmarks/RESULTS.md, "Peak RSS"). :func:`release_after_compiles`
registers a JAX monitoring listener that calls glibc's ``malloc_trim(0)`` when a backend compile
finishes, before the compiled program first runs. Where there is no glibc (macOS, musl) it does
nothing. The values computed are untouched: only free pages are returned.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Callable

import jax

# The event JAX records when XLA has compiled a program (jax._src.dispatch.BACKEND_COMPILE_EVENT),
# just before the executable is first run.
BACKEND_COMPILE_EVENT = '/jax/core/compile/backend_compile_duration'


@functools.cache
def malloc_trim() -> Callable[[], None] | None:
  """glibc's ``malloc_trim(0)`` as a no-argument function, or None without glibc."""
  name = ctypes.util.find_library('c')
  try:
    libc = ctypes.CDLL(name)
    trim = libc.malloc_trim
  except (OSError, AttributeError, TypeError):
    return None
  trim.argtypes = [ctypes.c_size_t]
  trim.restype = ctypes.c_int
  return lambda: trim(0)


def _on_duration_event(event: str, duration: float, **kwargs) -> None:
  del duration, kwargs
  if event == BACKEND_COMPILE_EVENT:
    malloc_trim()()


@functools.cache
def release_after_compiles() -> bool:
  """Returns freed pages to the OS after every XLA compile in this process (once; idempotent).

  Returns whether the listener was installed (False without glibc's ``malloc_trim``).
  """
  if malloc_trim() is None:
    return False
  jax.monitoring.register_event_duration_secs_listener(_on_duration_event)
  return True
