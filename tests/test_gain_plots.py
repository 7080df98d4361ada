"""Tests for analysis.gain_surface.plots: every figure and table is written from the runs it is given."""
import json

import numpy as np
import pandas as pd

from analysis.gain_surface import plots as gp
from analysis.gain_surface import study as gs
from test_gain_tables import D0, IDEAL, W0, synthetic_runs


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


def test_iso_curves_of_a_partial_fp_only_sweep(tmp_path):
    # an FP-only preset (cpu_long) draws FP panels only; before its reference net is in there is
    # no diagonal, and nothing is drawn instead of an empty figure
    df = synthetic_runs(seeds=(0,))
    fp = df[df["precision"] == "fp"]
    diag = fp[np.isclose(fp["width_mult"] * np.sqrt(fp["depth"]), W0 * np.sqrt(D0), atol=1e-3)]
    out = gp.iso_curves(diag, pd.DataFrame(columns=["quantity", "method", "w0", "estimate"]), {},
                        D0, (W0,), IDEAL, tmp_path, {"dataset": "synthetic (test)"})
    assert set(pd.read_csv(out["csv"])["precision"]) == {"fp"}
    assert len(pd.read_csv(out["csv"])) == diag["depth"].nunique()
    partial = diag[diag["depth"] != D0]
    assert gp.iso_curves(partial, pd.DataFrame(), {}, D0, (W0,), IDEAL, tmp_path / "p", {}) is None
    assert not (tmp_path / "p").exists()
