"""Tests for analysis.gain_surface.plots: every figure and table is written from the runs it is given."""
import json

import numpy as np
import pandas as pd

from analysis.gain_surface import plots as gp
from analysis.gain_surface import study as gs
from test_gain_tables import IDEAL, synthetic_runs


def test_report_writes_figures_and_tables_from_runs(tmp_path):
    df = synthetic_runs(seeds=(0, 1))
    out = gp.report(df, 3, (1.0,), tmp_path, {"dataset": "synthetic (test)"}, n_boot=4, ops=IDEAL)
    names = ("gain_surface_heatmaps", "gain_surface_iso_ops", "gain_surface_fits")
    for n in names:
        assert (tmp_path / f"{n}.pdf").stat().st_size > 0 and (tmp_path / f"{n}.png").is_file()
    heat = pd.read_csv(tmp_path / "gain_surface_heatmaps.csv")
    means = gs.config_means(df)
    assert np.allclose(heat["acc"], means["acc"])
    eq = pd.read_csv(tmp_path / "gain_surface_equilibrium.csv")
    assert set(eq["quantity"]) >= {"d0 (FP)", "d_n (BNN)", "d_n / d0"}
    assert eq["n_boot"].eq(4).all() and len(eq) == len(out["equilibrium"])
    iso = pd.read_csv(tmp_path / "gain_surface_iso_ops.csv")
    assert set(iso["kind"]) == {"data", "fit"} and set(iso["precision"]) == {"fp", "bnn"}
    assert json.loads((tmp_path / "gain_surface_fits.json").read_text())["dataset"] == "synthetic (test)"
    assert set(out["chosen"]) == {"fp", "bnn"}
