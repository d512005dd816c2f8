"""scan: leaky integration (sequential == associative == NumPy loop), time_scan with remat."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mstrnn_jax import scan


def numpy_leaky(drive, tau, initial):
  state, out = initial, []
  for t in range(drive.shape[1]):
    state = (1 - 1 / tau) * state + drive[:, t] / tau
    out.append(state)
  return np.stack(out, axis=1)


@pytest.mark.parametrize('method', scan.LEAKY_SCANS)
@pytest.mark.parametrize('tau', [1.0, 2.0, 100.0])
def test_leaky_integrate_matches_loop(method, tau):
  rng = np.random.default_rng(0)
  drive = rng.standard_normal((2, 9, 3, 4))
  initial = rng.standard_normal((2, 3, 4))
  with jax.enable_x64(True):
    got = scan.leaky_integrate(
      jnp.asarray(drive), jnp.asarray(1.0 / tau), jnp.asarray(initial), method
    )
  np.testing.assert_allclose(got, numpy_leaky(drive, tau, initial), rtol=1e-12, atol=1e-12)


def test_sequential_and_associative_gradients_agree():
  drive = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 5))
  loss = lambda method: jax.jit(
    jax.grad(
      lambda d, it: jnp.sum(jnp.sin(scan.leaky_integrate(d, it, jnp.zeros((2, 5)), method))),
      argnums=(0, 1),
    )
  )
  for a, b in zip(loss('sequential')(drive, 0.3), loss('associative')(drive, 0.3)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_leaky_integrate_errors():
  with pytest.raises(ValueError, match='leaky scan'):
    scan.leaky_integrate(jnp.zeros((1, 2, 3)), jnp.asarray(0.5), jnp.zeros((1, 3)), 'parallel')
  with pytest.raises(ValueError, match='initial'):
    scan.leaky_integrate(jnp.zeros((1, 2, 3)), jnp.asarray(0.5), jnp.zeros((1, 4)))


def test_time_scan_remat_same_values_and_grads():
  xs = jax.random.normal(jax.random.PRNGKey(0), (6, 3))

  def run(w, remat):
    def step(carry, x):
      carry = jnp.tanh(w * carry + x)
      return carry, carry**2

    final, ys = scan.time_scan(step, jnp.zeros(3), xs, remat)
    return jnp.sum(ys) + jnp.sum(final)

  for remat in (False, True):
    np.testing.assert_allclose(jax.grad(run)(0.7, remat), jax.grad(run)(0.7, False), rtol=1e-6)
  # Against an unrolled Python loop.
  carry, total = jnp.zeros(3), 0.0
  for x in xs:
    carry = jnp.tanh(0.7 * carry + x)
    total += jnp.sum(carry**2)
  np.testing.assert_allclose(run(0.7, True), total + jnp.sum(carry), rtol=1e-6)


def test_time_major_round_trip():
  x = jnp.arange(24).reshape(2, 3, 4)
  assert scan.batch_to_time_major(x).shape == (3, 2, 4)
  np.testing.assert_array_equal(scan.time_to_batch_major(scan.batch_to_time_major(x)), x)
