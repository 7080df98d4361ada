"""Error accumulation study (issue 4): per-layer quantization and gradient error vs depth.

Instruments (``measure``, ``shadow_model``, ``smooth_model``) work on any bnnlib model via
hooks; the study (``grid``, ``run_study``) writes one JSON record per measurement; fits of
phi(d) (``fit_phi``) and figures (``make_figures``) are built from records only.

Rooms: ``instruments`` (hooks: shadow and smooth networks, per-layer measurement), ``study``
(configs, grid, records, run), ``fit`` (phi(d) forms, leave-one-depth-out, bootstrap),
``tables`` (record frames, fit and premise tables), ``plots`` (figures) and ``__main__`` (CLI:
``python -m analysis.error_accumulation``). The notebook is ``notebooks/error_accumulation.ipynb``.
"""
from .fit import FORMS, fit_phi, loo_rmse
from .instruments import (BN_MODES, SHADOW_MODES, RealArg, SmoothSign, measure, probed_layers,
                          shadow_model, smooth_model)
from .plots import fig_init_vs_trained, make_figures, write_trained_accuracy
from .tables import fit_table, layers_frame, premise_table, records_frame, trained_accuracy_table
from .study import (BACKBONES, BINARIZERS, config_hash, grid, load_batches, load_records,
                    make_config, make_spec, resolve_dataset, run_config, run_study,
                    select_records)

__all__ = ["FORMS", "fit_phi", "loo_rmse", "BN_MODES", "SHADOW_MODES", "RealArg", "SmoothSign",
           "measure", "probed_layers", "shadow_model", "smooth_model", "make_figures",
           "fit_table", "layers_frame", "premise_table", "records_frame", "BACKBONES", "BINARIZERS", "config_hash",
           "grid", "load_batches", "load_records", "make_config", "make_spec", "run_config",
           "run_study", "select_records", "fig_init_vs_trained", "resolve_dataset",
           "trained_accuracy_table", "write_trained_accuracy"]
