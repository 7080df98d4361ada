"""Complexity study (no training): Tables 1, 3 and 8 of the DWR paper checked on real models.

Rooms: ``study`` (the measured Table 1/3 ratios, ``scaling_rows``), ``paper`` (the paper's
predictions and Table 8 numbers as data), ``tables`` (wide views, error summary, Table 8
recomputed, original vs DWR backbones), ``plots`` (figures) and ``__main__`` (CLI:
``python -m analysis.complexity``). The notebook is ``notebooks/complexity.ipynb``.
"""
from .paper import PAPER_TABLE8, PREDICTED
from .plots import plot_dwr, plot_scaling
from .study import ALL_EXTRAS, PRECISIONS, QUANTITIES, scaling_rows
from .tables import dwr_rows, error_summary, scaling_table, table8_rows

__all__ = ["scaling_rows", "scaling_table", "error_summary", "table8_rows", "dwr_rows", "PAPER_TABLE8",
           "PREDICTED", "QUANTITIES", "PRECISIONS", "ALL_EXTRAS", "plot_scaling", "plot_dwr"]
