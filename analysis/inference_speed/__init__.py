"""Inference-speed study (issue 13): are DWR backbones faster on XNOR-popcount kernels?

Rooms: ``study`` (nets, protocol, ``run`` writing one record per measurement under
``results/<preset>/inference_speed/``), ``tables`` (latency, DWR vs original round-paired,
per-layer breakdown, latency-vs-OPs/activations correlations, published numbers),
``plots``, ``paper`` (published engine numbers as data) and ``__main__`` (CLI:
``python -m analysis.inference_speed``). The notebook is ``notebooks/inference_speed.ipynb``;
the engine is ``bnnlib.deploy`` (OpenVINO, optional ``deploy`` extra).
"""
from .paper import HARDWARE, PUBLISHED
from .plots import plot_breakdown, plot_latency, plot_vs_complexity
from .study import BACKBONES, ENGINES, KINDS, STUDY, load, run, variant_specs
from .tables import (breakdown_table, correlations, dwr_vs_original, latency_table,
                     published_comparison, verdicts)

__all__ = ["BACKBONES", "KINDS", "ENGINES", "STUDY", "run", "load", "variant_specs", "latency_table",
           "dwr_vs_original", "verdicts", "breakdown_table", "correlations", "published_comparison",
           "plot_latency", "plot_breakdown", "plot_vs_complexity", "PUBLISHED", "HARDWARE"]
