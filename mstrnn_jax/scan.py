"""Scans over time: the leaky integrator (eqs. 5 and 7) and a generic recurrent time scan.

Once every feed-forward convolution has been hoisted out of the time loop (it runs over all
`batch * time` frames at once), the feature units of eq. (5) are a *linear* recurrence

    fhat_t = (1 - 1/tau) * fhat_{t-1} + (1/tau) * u_t,    fhat_{-1} = 0,

with `u_t` the (batch-normalised) feed-forward drive. `leaky_integrate` evaluates it either
with a sequential `lax.scan` (T tiny steps) or with `lax.associative_scan` (log T depth,
more arithmetic); both give the same numbers (tested). Only genuinely nonlinear recurrences
(context units' recurrent conv `z_tilde`, LSTM cells) go through `time_scan`, whose step
function the caller keeps small.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import chex
import jax
import jax.numpy as jnp
from jax import lax

LEAKY_SCANS = ('sequential', 'associative')
Carry = TypeVar('Carry')


def leaky_update(previous: jax.Array, drive: jax.Array, inv_tau: jax.Array) -> jax.Array:
  """One leaky-integrator step: `(1 - 1/tau) * previous + (1/tau) * drive` (eqs. 5, 7)."""
  return (1.0 - inv_tau) * previous + inv_tau * drive


def leaky_integrate(
  drive: jax.Array, inv_tau: jax.Array, initial: jax.Array, method: str = 'sequential'
) -> jax.Array:
  """Leaky integration over time.

  Args:
    drive: `[batch, time, ...]` input `u_t` of the integrator.
    inv_tau: scalar `1/tau` (a traced array, so one program serves any tau).
    initial: `[batch, ...]` state before the first step (zeros at the start of a video).
    method: 'sequential' (`lax.scan`) or 'associative' (`lax.associative_scan`).

  Returns:
    `[batch, time, ...]` internal states `fhat_t`.
  """
  chex.assert_rank(inv_tau, 0)
  if drive.ndim < 2 or initial.shape != drive.shape[:1] + drive.shape[2:]:
    raise ValueError(
      f'mstrnn_jax/scan.py: leaky_integrate needs drive [batch, time, ...] and initial '
      f'[batch, ...], got {drive.shape} and {initial.shape}.'
    )
  decay = (1.0 - inv_tau).astype(drive.dtype)
  scaled = inv_tau.astype(drive.dtype) * drive
  if method == 'sequential':

    def leaky_step(state: jax.Array, scaled_t: jax.Array) -> tuple[jax.Array, jax.Array]:
      state = decay * state + scaled_t
      return state, state

    _, states = lax.scan(leaky_step, initial, batch_to_time_major(scaled))
    return time_to_batch_major(states)
  if method == 'associative':
    # Elements (a_t, b_t) of h_t = a_t h_{t-1} + b_t; applying (a1, b1) then (a2, b2) is
    # (a1 a2, a2 b1 + b2). With a_t = decay: h_t = decay^(t+1) h_{-1} + sum_s decay^(t-s) b_s.
    t = drive.shape[1]
    shape = (1, t) + (1,) * (drive.ndim - 2)
    decays = jnp.broadcast_to(decay, shape)

    def combine(first, second):
      a1, b1 = first
      a2, b2 = second
      return a1 * a2, a2 * b1 + b2

    powers, states = lax.associative_scan(combine, (decays, scaled), axis=1)
    return states + powers * initial[:, None]
  raise ValueError(f'mstrnn_jax/scan.py: unknown leaky scan {method!r}; use one of {LEAKY_SCANS}.')


def time_scan(
  step: Callable[[Carry, Any], tuple[Carry, Any]], carry: Carry, xs: Any, remat: bool = False
) -> tuple[Carry, Any]:
  """`lax.scan` over the time axis of batch-major inputs and outputs.

  Args:
    step: `(carry, x_t) -> (carry, y_t)`; `x_t` is `xs` at one time step (leaves without the
      time axis). Keep it small: only the recurrent part of a layer belongs here.
    carry: initial carry (a NamedTuple of arrays).
    xs: pytree; leaves with a leading `[time, ...]` axis are passed as is, so pass per-step
      tables (e.g. running BN statistics `[time, channels]`) time-major and activations
      time-major too (use `batch_to_time_major`).
    remat: wrap the step in `jax.checkpoint` (recompute its internals in the backward pass,
      trading compute for memory).

  Returns:
    `(final_carry, ys)` with `ys` leaves `[time, ...]`.
  """
  body = jax.checkpoint(step) if remat else step
  return lax.scan(body, carry, xs)


def batch_to_time_major(x: jax.Array) -> jax.Array:
  """`[batch, time, ...]` -> `[time, batch, ...]`."""
  return jnp.moveaxis(x, 1, 0)


def time_to_batch_major(x: jax.Array) -> jax.Array:
  """`[time, batch, ...]` -> `[batch, time, ...]`."""
  return jnp.moveaxis(x, 0, 1)
