"""mstrnn-jax: MSTRNN, MSTNN and LRCN (Lee, Jung & Tani) as pure JAX functions."""

from mstrnn_jax import configs
from mstrnn_jax import layers
from mstrnn_jax import models
from mstrnn_jax import ops
from mstrnn_jax import scan

__all__ = ['configs', 'layers', 'models', 'ops', 'scan']
