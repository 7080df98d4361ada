"""Error accumulation study (issue 4): per-layer quantization and gradient error vs depth."""
from .instruments import (BN_MODES, SHADOW_MODES, RealArg, SmoothSign, measure, probed_layers,
                          shadow_model, smooth_model)
