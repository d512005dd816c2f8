"""Model configurations: Table I presets and `derive_config` for any frame size and head set.

Spatial rules (Sec. III.A). conv0 is 3x3 valid with stride `conv0_stride` (2 for 3ACWD,
3 for CL1AD/CL2AD), then a 2x2/2 max pool (floor). Then

* MSTRNN, per context layer: feature units (3x3 valid) -> pool 2x2/2 -> context units (2x2
  valid; recurrent 3x3 'SAME'); the next layer's feature units also read this layer's context
  units through a 2x2 valid kernel (sizes agree: pool - 1 - 1 = pool - 2). For CL1AD:
  108 -> 36 -> 18; layer 1: feature 16, pool 8, context 7; layer 2: feature 6, pool 3, context 2.
* MSTNN: per leaky conv layer: conv 3x3 valid (leaky integrator, eq. 5 without `z`) -> pool.
  CL1AD: 18 -> 16 -> 8 -> 6 -> 3.
* LRCN: per conv layer: conv 3x3 valid -> pool (no leaky integration). Same sizes as MSTNN.

Widths (Table II asks for ~3.0M / 4.6M / 4.6M parameters on CL1AD; the paper gives no
per-layer widths except the context maps in Fig. 3: 128 (tau=2) and 256 (tau=100)). Chosen:

* MSTRNN: conv0 32; features (64, 128); contexts (128, 256); FC (1024, 832).
* MSTNN: conv0 32; leaky convs (128, 256); FC (1280, 1024).
* LRCN: conv0 32; convs (128, 256); FC 1024; LSTM (256, 256).

`experiments/summary.py --dataset=cl1ad` prints the resulting counts next to Table II
(all within 10%).
"""

from __future__ import annotations

import dataclasses

from mstrnn_jax import ops
from mstrnn_jax.names import MODELS, TABLE_I, ConvImpl, FcInput, LeakyScan, TimeLayout, choose

# Table II (CL1AD) parameter counts, for summaries and tests.
TABLE_II_PARAMS = {'mstrnn': 3.0e6, 'lrcn': 4.6e6, 'mstnn': 4.6e6}

# Paper-size widths (see module docstring).
PAPER_WIDTHS = {
  'mstrnn': dict(
    conv0_width=32,
    feature_widths=(64, 128),
    context_widths=(128, 256),
    fc_widths=(1024, 832),
    lstm_widths=(),
    taus=(2.0, 100.0),
  ),
  'mstnn': dict(
    conv0_width=32,
    feature_widths=(128, 256),
    context_widths=(),
    fc_widths=(1280, 1024),
    lstm_widths=(),
    taus=(2.0, 100.0),
  ),
  'lrcn': dict(
    conv0_width=32,
    feature_widths=(128, 256),
    context_widths=(),
    fc_widths=(1024,),
    lstm_widths=(256, 256),
    taus=(),
  ),
}

# Default number of per-step BN statistics for the paper presets; pass the dataset's padded
# length T_max (`bn_steps=`) when it is known. Training on longer videos raises an error.
DEFAULT_BN_STEPS = 128


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Static description of one model (hashable: usable as a `jit` static argument).

  Attributes:
    model: 'mstrnn' | 'mstnn' | 'lrcn'.
    input_size: model input height == width (after cropping).
    heads: ordered `((head_name, classes), ...)`.
    bn_steps: time steps with their own stored BN statistics (>= training video length).
    conv0_stride: stride of the 3x3 preprocessing conv.
    conv0_width: channels of conv0.
    feature_widths: MSTRNN: feature maps per context layer; MSTNN: maps per leaky conv layer;
      LRCN: maps per conv layer after conv0. Its length is the number of such layers.
    context_widths: MSTRNN: context maps per context layer (same length); () otherwise.
    fc_widths: hidden fully-connected widths (MSTRNN/MSTNN: two in the paper; LRCN: one).
    lstm_widths: LRCN LSTM widths (paper: (256, 256)); () otherwise.
    taus: default time constants, one per context / leaky layer; () for LRCN. (The model
      takes taus as an array argument; these are only the defaults.)
    conv_impl: `names.ConvImpl` ('auto' | 'native' | 'gemm', see `ops.conv2d`).
    time_layout: `names.TimeLayout`: 'hoisted' (feed-forward work over all frames, only
      recurrences scanned) or 'all_in_scan' (every layer inside one scan over time; the
      reference/baseline).
    leaky_scan: `names.LeakyScan` ('sequential' | 'associative', feature-unit recurrence).
    remat: `jax.checkpoint` the scan bodies.
    fc_input: `names.FcInput`: what MSTRNN's first FC layer reads ('top' in the paper preset,
      matching Table II's parameter count; 'contexts' in the quick preset; `fc_input_layers`).
      MSTNN and LRCN always read their last pool: set to 'top' for them.
    bn_momentum: running statistics update `new = momentum * old + (1 - momentum) * batch`.
      0.9: a LOSO epoch has only a few mini-batches (Sec. II.E batch sizes 27-90), so a
      slower average would lag the weights by many epochs.
    bn_epsilon: added to the variance in every BN.
  """

  model: str
  input_size: int
  heads: tuple[tuple[str, int], ...]
  bn_steps: int
  conv0_stride: int
  conv0_width: int
  feature_widths: tuple[int, ...]
  context_widths: tuple[int, ...]
  fc_widths: tuple[int, ...]
  lstm_widths: tuple[int, ...]
  taus: tuple[float, ...]
  conv_impl: ConvImpl = ConvImpl.AUTO
  time_layout: TimeLayout = TimeLayout.HOISTED
  leaky_scan: LeakyScan = LeakyScan.SEQUENTIAL
  remat: bool = False
  fc_input: FcInput = FcInput.TOP
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  def __post_init__(self):
    where = 'mstrnn_jax/configs.py'
    for name, kind in (
      ('conv_impl', ConvImpl),
      ('time_layout', TimeLayout),
      ('leaky_scan', LeakyScan),
      ('fc_input', FcInput),
    ):
      object.__setattr__(self, name, choose(kind, getattr(self, name), f'{where}: {name}'))
    if self.model not in MODELS:
      raise ValueError(f'{where}: unknown model {self.model!r}; use one of {MODELS}.')
    if self.model != 'mstrnn':
      # fc_input chooses among MSTRNN's layers; the baselines always read their last pool, so
      # one experiment setting (e.g. the quick preset's) serves all three models.
      object.__setattr__(self, 'fc_input', FcInput.TOP)
    if not self.heads or any(n < 1 for _, n in self.heads):
      raise ValueError(
        f'{where}: heads must be a non-empty tuple of (name, classes>=1), got {self.heads}.'
      )
    if self.bn_steps < 1:
      raise ValueError(f'{where}: bn_steps must be >= 1, got {self.bn_steps}.')
    if not self.feature_widths:
      raise ValueError(f'{where}: feature_widths must name at least one layer.')
    if self.model == 'mstrnn' and len(self.context_widths) != len(self.feature_widths):
      raise ValueError(
        f'{where}: MSTRNN needs one context width per context layer: feature_widths='
        f'{self.feature_widths}, context_widths={self.context_widths}.'
      )
    if self.model != 'mstrnn' and self.context_widths:
      raise ValueError(f'{where}: context_widths is for MSTRNN only (got {self.context_widths}).')
    expected_taus = 0 if self.model == 'lrcn' else len(self.feature_widths)
    if len(self.taus) != expected_taus:
      raise ValueError(
        f'{where}: {self.model} with {len(self.feature_widths)} layers needs '
        f'{expected_taus} taus, got {self.taus}.'
      )
    if self.model == 'lrcn' and not self.lstm_widths:
      raise ValueError(f'{where}: LRCN needs lstm_widths (paper: (256, 256)).')
    if self.model != 'lrcn' and self.lstm_widths:
      raise ValueError(f'{where}: lstm_widths is for LRCN only (got {self.lstm_widths}).')
    if not self.fc_widths and self.model != 'lrcn':
      raise ValueError(f'{where}: {self.model} needs at least one FC width.')
    layer_shapes(self)  # raises if a map would vanish

  @property
  def head_names(self) -> tuple[str, ...]:
    return tuple(name for name, _ in self.heads)

  @property
  def num_layers(self) -> int:
    """Number of context layers (MSTRNN) / leaky conv layers (MSTNN) / conv layers after conv0 (LRCN)."""
    return len(self.feature_widths)


def _vanish_error(cfg_desc: str, sizes: list[str]) -> ValueError:
  return ValueError(
    f'mstrnn_jax/configs.py: {cfg_desc}: a feature map vanishes ({" -> ".join(sizes)}). '
    'Use larger frames, a smaller conv0_stride, or fewer layers.'
  )


def layer_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
  """Per-frame output shape `(H, W, C)` or `(features,)` of every layer, in forward order.

  Keys equal the activation names of `models.apply(..., return_activations=True)`.
  Raises ValueError naming the sizes if any map would be smaller than 1x1.
  """
  desc = f'{cfg.model} on {cfg.input_size}x{cfg.input_size}, conv0 stride {cfg.conv0_stride}'
  shapes: dict[str, tuple[int, ...]] = {}
  trail = [str(cfg.input_size)]

  def need(size: int, what: str) -> int:
    trail.append(f'{what} {size}')
    if size < 1:
      raise _vanish_error(desc, trail)
    return size

  s = need(ops.conv_output_size(cfg.input_size, 3, cfg.conv0_stride), 'conv0')
  shapes['conv0'] = (s, s, cfg.conv0_width)
  s = need(s // 2, 'pool0')
  shapes['pool0'] = (s, s, cfg.conv0_width)
  if cfg.model == 'mstrnn':
    for i, (f, c) in enumerate(zip(cfg.feature_widths, cfg.context_widths), start=1):
      s = need(s - 2, f'feature{i}')
      shapes[f'feature{i}'] = (s, s, f)
      s = need(s // 2, f'pool{i}')
      shapes[f'pool{i}'] = (s, s, f)
      shapes[f'context{i}'] = (need(s - 1, f'context{i}'),) * 2 + (c,)
  else:
    for i, f in enumerate(cfg.feature_widths, start=1):
      s = need(s - 2, f'conv{i}')
      shapes[f'conv{i}'] = (s, s, f)
      s = need(s // 2, f'pool{i}')
      shapes[f'pool{i}'] = (s, s, f)
  for i, w in enumerate(cfg.fc_widths, start=1):
    shapes[f'fc{i}'] = (w,)
  for i, w in enumerate(cfg.lstm_widths, start=1):
    shapes[f'lstm{i}'] = (w,)
  return shapes


def fc_input_layers(cfg: ModelConfig) -> tuple[str, ...]:
  """Names of the layers the first FC layer reads, flattened and concatenated in this order.

  `fc_input='top'` (default): MSTRNN reads the top context layer's *context units*
  (`context{L}`). The paper (Fig. 1, 3) sends the context layers' output to the FC stage
  without saying whether the pooling or the context units feed it; the context units are the
  layer's recurrent output and the ones the next context layer reads (through `z`), so we use
  them. MSTNN / LRCN read the last pooling layer. The alternatives (docs/fidelity.md section
  0b): 'contexts' = `context1..context{L}` (the quick preset: at width 1/8 the top context
  layer alone is 1x1x32); 'pool' = `pool{L}`, the top layer's pooled feature units.
  """
  top = f'pool{cfg.num_layers}'
  if cfg.model != 'mstrnn':
    return (top,)
  if cfg.fc_input == FcInput.CONTEXTS:
    return tuple(f'context{i}' for i in range(1, cfg.num_layers + 1))
  if cfg.fc_input == FcInput.POOL:
    return (top,)
  return (f'context{cfg.num_layers}',)


def _scaled(widths: tuple[int, ...], scale: float) -> tuple[int, ...]:
  return tuple(max(1, int(round(w * scale))) for w in widths)


def _canonical_dataset(dataset: str) -> str:
  from mstrnn_jax.data import pipeline  # the dataset names and aliases

  return pipeline.canonical_name(dataset)


def default_conv0_stride(input_size: int, num_context_layers: int = 2) -> int:
  """Largest conv0 stride in (3, 2, 1) for which an MSTRNN with that many context layers fits.

  Reproduces the paper's choices (73 -> 2, 108 -> 3) and gives 1 for small synthetic frames.
  The same stride is used for all three models so they see the same preprocessing.
  """
  for stride in (3, 2, 1):
    try:
      layer_shapes(
        ModelConfig(
          model='mstrnn',
          input_size=input_size,
          heads=(('x', 1),),
          bn_steps=1,
          conv0_stride=stride,
          conv0_width=1,
          feature_widths=(1,) * num_context_layers,
          context_widths=(1,) * num_context_layers,
          fc_widths=(1,),
          lstm_widths=(),
          taus=(1.0,) * num_context_layers,
        )
      )
    except ValueError:
      continue
    return stride
  raise ValueError(
    f'mstrnn_jax/configs.py: no conv0 stride fits an MSTRNN with {num_context_layers} '
    f'context layers on {input_size}x{input_size} frames; use larger frames.'
  )


def derive_config(
  model: str,
  input_size: int,
  heads: tuple[tuple[str, int], ...],
  bn_steps: int,
  conv0_stride: int | None = None,
  width_scale: float = 1.0,
  **overrides,
) -> ModelConfig:
  """A config for any input size and head set (synthetic datasets, notebooks).

  Args:
    model: 'mstrnn' | 'mstnn' | 'lrcn'.
    input_size: model input height == width (after cropping).
    heads: ordered `((name, classes), ...)`.
    bn_steps: time steps with their own BN statistics (the dataset's padded length).
    conv0_stride: None -> `default_conv0_stride(input_size, layers)`.
    width_scale: multiplies every width of the paper-size model (conv, feature, context, FC,
      LSTM), rounding, at least 1. 0.25 gives a narrow "quick" model.
    **overrides: any other `ModelConfig` field, e.g. `feature_widths=(8, 16, 32)`,
      `context_widths=(8, 16, 32)`, `taus=(2., 20., 100.)` for a third context layer, or
      `conv_impl`, `time_layout`, `leaky_scan`, `remat`, `fc_input`. Explicit widths are used as given (not scaled).
  """
  if model not in MODELS:
    raise ValueError(f'mstrnn_jax/configs.py: unknown model {model!r}; use one of {MODELS}.')
  if width_scale <= 0:
    raise ValueError(
      f'mstrnn_jax/configs.py: width_scale (--config.width_scale) must be > 0, got {width_scale}.'
    )
  fields = dict(PAPER_WIDTHS[model])
  fields['conv0_width'] = _scaled((fields['conv0_width'],), width_scale)[0]
  for name in ('feature_widths', 'context_widths', 'fc_widths', 'lstm_widths'):
    fields[name] = _scaled(fields[name], width_scale)
  fields.update(overrides)
  if conv0_stride is None:
    conv0_stride = default_conv0_stride(input_size, len(fields['feature_widths']))
  return ModelConfig(
    model=model,
    input_size=input_size,
    heads=tuple(tuple(h) for h in heads),
    bn_steps=bn_steps,
    conv0_stride=conv0_stride,
    **fields,
  )


def get_model_config(
  model: str, dataset: str, bn_steps: int = DEFAULT_BN_STEPS, **overrides
) -> ModelConfig:
  """Paper preset (Table I input/heads, Sec. III.A strides, widths of the module docstring).

  Args:
    model: 'mstrnn' | 'mstnn' | 'lrcn'.
    dataset: 'weizmann_3acwd' (alias '3acwd'), 'cl1ad' or 'cl2ad'.
    bn_steps: stored per-step BN statistics; pass the dataset's padded length T_max.
    **overrides: `derive_config` arguments (e.g. `width_scale`) or other `ModelConfig` fields
      (e.g. `conv_impl`, `time_layout`).
  """
  name = _canonical_dataset(dataset)
  if name not in TABLE_I:
    raise ValueError(
      f'mstrnn_jax/configs.py: {dataset!r} is not a paper dataset ({", ".join(TABLE_I)}); '
      'use config_for_dataset or derive_config.'
    )
  spec = TABLE_I[name]
  return derive_config(
    model,
    spec['input_size'],
    spec['heads'],
    bn_steps,
    conv0_stride=spec['conv0_stride'],
    **overrides,
  )


def config_for_dataset(
  model: str, dataset: str, width_scale: float = 1.0, **overrides
) -> ModelConfig:
  """Config for a paper dataset (Table I preset) or a synthetic one (derived from its spec).

  Synthetic datasets are looked up with `mstrnn_jax.data.pipeline.dataset_spec` (input =
  crop size, heads, bn_steps = padded length); the conv0 stride follows
  `default_conv0_stride`. Paper presets use `DEFAULT_BN_STEPS` unless `bn_steps=` is given.
  """
  if _canonical_dataset(dataset) in TABLE_I:
    return get_model_config(model, dataset, width_scale=width_scale, **overrides)
  from mstrnn_jax.data import pipeline

  spec = pipeline.dataset_spec(dataset)
  if spec.t_max is None:
    raise ValueError(
      f'mstrnn_jax/configs.py: dataset {dataset!r} is not prepared, its length is unknown; '
      'prepare it first (see data/README.md) or pass bn_steps=.'
    )
  overrides.setdefault('bn_steps', spec.t_max)
  return derive_config(model, spec.crop_size, spec.heads, width_scale=width_scale, **overrides)
