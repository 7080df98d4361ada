"""Gain surface G = f(w, d) of FP and binary nets, and the equilibrium depth (DWR Sec. 3.3).

Rooms: ``study`` (grid, configs, presets, run, records -> DataFrame), ``fit`` (surface
families, iso-OPs widths, optimal and balance depths, bootstrap), ``tables`` (equilibrium
depths, family selection, properties a)-d)), ``plots`` (heat maps, iso-OPs curves, fitted
surfaces; ``report`` writes them all; learning curves along the diagonal) and ``__main__`` (CLI: ``python -m analysis.gain_surface
{plan,sweep} --preset NAME``). The notebook is ``notebooks/gain_surface.ipynb``.
"""
from . import fit, plots, study, tables
from .fit import FAMILIES, Fit, OpsModel, fit_surface, iso_width, optimal_depth, select_family
from .plots import heatmaps, iso_curves, learning_curves, optimum_over_training, report, save_tables, surfaces
from .study import (METRICS, PRECISIONS, TAG, Shape, config_means, count_ops, iso_slices, load_preset,
                    curves_frame, load_runs, make_configs, make_grid, ops_model, points, resolve_dataset, run,
                    runs_frame, seed_groups, shape_spec, study_configs)
from .tables import equilibrium_table, fit_table, ops_models, properties_table, raw_properties

__all__ = ["fit", "plots", "study", "tables",
           "FAMILIES", "Fit", "OpsModel", "fit_surface", "iso_width", "optimal_depth", "select_family",
           "heatmaps", "iso_curves", "learning_curves", "optimum_over_training", "report",
           "save_tables", "surfaces", "curves_frame",
           "METRICS", "PRECISIONS", "TAG", "Shape", "config_means", "count_ops", "iso_slices",
           "load_preset", "load_runs", "make_configs", "make_grid", "ops_model", "points",
           "resolve_dataset", "run", "runs_frame", "seed_groups", "shape_spec", "study_configs",
           "equilibrium_table", "fit_table", "ops_models", "properties_table", "raw_properties"]
