"""One source of truth for the names the package chooses between.

* ``MODELS``: the model families, in the column order of Tables III-V.
* ``TABLE_I``: per paper dataset, the model input after the 10-pixel random crop, the conv0
  stride (Sec. III.A) and the softmax heads.  Keys are the canonical dataset names of
  :mod:`mstrnn_jax.data.pipeline` (whose ``ALIASES`` resolve e.g. ``3acwd``).
* ``ANALOGUE``: the paper dataset whose protocol each dataset follows.
* The string options of the model and the evaluation, as ``str`` enums validated once by
  :func:`choose` (an enum member compares equal to its string value).
"""

from __future__ import annotations

import enum
from typing import TypeVar

MODELS = ('mstrnn', 'lrcn', 'mstnn')  # the column order of Tables III-V

# Table I (canonical dataset names; aliases live in data.pipeline.ALIASES).
TABLE_I = {
  'weizmann_3acwd': dict(input_size=73, conv0_stride=2, heads=(('action', 27),)),
  'cl1ad': dict(input_size=108, conv0_stride=3, heads=(('ado', 4), ('action', 9))),
  'cl2ad': dict(input_size=108, conv0_stride=3, heads=(('ado', 4), ('action', 4), ('modifier', 6))),
}
PAPER_DATASETS = tuple(TABLE_I)
ANALOGUE = {
  'synth3a': 'weizmann_3acwd',
  'synthcl1': 'cl1ad',
  'synthcl2': 'cl2ad',
  **{d: d for d in PAPER_DATASETS},
}


class Option(str, enum.Enum):
  """A string option: compares equal to, prints and serialises as its value."""

  def __repr__(self) -> str:
    return repr(self.value)

  def __str__(self) -> str:
    return self.value


class TimeLayout(Option):
  """How a model lays its work out over time (``ModelConfig.time_layout``).

  HOISTED: feed-forward work over all frames at once, only the recurrences scanned.
  ALL_IN_SCAN: every layer inside one scan over time (the reference / baseline).
  """

  HOISTED = 'hoisted'
  ALL_IN_SCAN = 'all_in_scan'


class ConvImpl(Option):
  """Convolution implementation (``ops.conv2d``): AUTO = gemm on CPU/GPU, native on TPU."""

  AUTO = 'auto'
  NATIVE = 'native'
  GEMM = 'gemm'


class LeakyScan(Option):
  """Feature-unit linear recurrence (``scan.leaky_integrate``)."""

  SEQUENTIAL = 'sequential'
  ASSOCIATIVE = 'associative'


class FcInput(Option):
  """What the first FC layer reads (``ModelConfig.fc_input``, ``configs.fc_input_layers``).

  TOP: the top context layer's context units (the paper preset).
  CONTEXTS: the context units of every context layer, concatenated (the quick preset).
  POOL: the top context layer's pooled feature units (its feed-forward output).
  MSTNN and LRCN always read their last pooling layer (their configs say TOP).
  """

  TOP = 'top'
  CONTEXTS = 'contexts'
  POOL = 'pool'


class VoteRule(Option):
  """Voting-period prediction rule (``evaluate`` module docstring)."""

  VOTE = 'vote'
  MEAN_PROB = 'mean_prob'


E = TypeVar('E', bound=enum.Enum)


def choose(kind: type[E], value, where: str) -> E:
  """``kind(value)``, or a one-line ValueError naming ``where`` and the valid values."""
  try:
    return kind(value)
  except ValueError:
    valid = ', '.join(repr(m.value) for m in kind)
    raise ValueError(f'{where}: {value!r} is not a {kind.__name__}; use one of {valid}.') from None
