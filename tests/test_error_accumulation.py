"""Tests for analysis.error_accumulation: instruments, fits, records and figures."""
import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from analysis.error_accumulation import (SmoothSign, config_hash, fig_init_vs_trained, fit_phi,
                                         grid, load_records, loo_rmse, make_config, make_figures,
                                         make_spec, measure, run_study, select_records,
                                         shadow_model, smooth_model)
from analysis.error_accumulation.instruments import _Probe
from bnnlib.layers import BinaryLinear
from bnnlib.models import build, create_model, list_models

torch.set_num_threads(1)


@pytest.fixture
def toy():
    """Two 2-unit sign/sign linear layers with +-1 weights (so sign(W) = W), no bias."""
    net = nn.Sequential(BinaryLinear(2, 2, bias=False, input_binarizer="sign", weight_binarizer="sign"),
                        BinaryLinear(2, 1, bias=False, input_binarizer="sign", weight_binarizer="sign"))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -1.0], [1.0, 1.0]]))
        net[1].weight.copy_(torch.tensor([[1.0, 1.0]]))
    x = torch.tensor([[0.5, -0.25]], requires_grad=True)
    return net, [(x, torch.zeros(1))]


def _sum_loss(out, y):
    return out.sum()


def _small_resnet(seed=0, binarizer="approx_sign", blocks=1, width=4, binary=True):
    torch.manual_seed(seed)
    return build(make_spec("resnet", blocks, width, binarizer).replace(binary=binary))


def _batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g))]


def test_toy_forward_numbers_by_hand(toy):
    net, batches = toy
    r = measure(net, batches, loss_fn=_sum_loss)
    l1, l2 = r["layers"]
    # layer 1: a_r = (0.5, -0.25), sign = (1, -1), e = (-0.5, 0.75)
    assert l1["residual_abs"] == pytest.approx(0.625) and l1["residual_rel"] == pytest.approx(5 / 3)
    assert l1["drift_rel_l2"] == 0.0
    # BNN input of layer 2 = W1 (1, -1) = (2, 0); shadow's = W1 (0.5, -0.25) = (0.75, 0.25)
    assert l2["residual_abs"] == pytest.approx(1.0) and l2["eq13_cum"] == pytest.approx(1.625)
    assert l2["drift_rel_l2"] == pytest.approx(math.sqrt(1.625 / 0.625))
    assert l2["drift_cos"] == pytest.approx(1.5 / (2 * math.sqrt(0.625)))
    assert l2["drift_sqnr_db"] == pytest.approx(10 * math.log10(0.625 / 1.625))
    s = r["summary"]
    assert s["eq13"] == pytest.approx(1.625) and s["n_binary"] == 2
    assert s["logit_rel_l2_shadow"] == pytest.approx(1.0)  # outputs 2 (BNN) vs 1 (shadow)


def test_toy_gradients_by_hand(toy):
    net, batches = toy
    l1, l2 = measure(net, batches, loss_fn=_sum_loss)["layers"]
    # STE: d/da2 = 1{|a2|<=1} W2 = (0, 1); shadow: W2 = (1, 1)
    assert l2["g_shadow_total_cos"] == pytest.approx(1 / math.sqrt(2))
    assert l2["g_shadow_total_norm_ratio"] == pytest.approx(1 / math.sqrt(2))
    # layer 1 input: BNN W1^T (0, 1) = (1, 1); shadow W1^T (1, 1) = (2, 0)
    assert l1["g_shadow_total_cos"] == pytest.approx(1 / math.sqrt(2))
    assert l1["g_shadow_branch_norm_ratio"] == pytest.approx(1 / math.sqrt(2))
    assert l1["bnn_branch_grad_frac"] == pytest.approx(1.0)  # no shortcut in the toy
    # weights: BNN dW2 = sign(a2) = (1, 1) vs shadow a2 = (0.75, 0.25)
    assert l2["g_shadow_weight_cos"] == pytest.approx(1 / math.sqrt(1.25))
    assert l2["g_shadow_weight_norm_ratio"] == pytest.approx(math.sqrt(3.2))
    # dW1: BNN outer((0,1), (1,-1)) vs shadow outer((1,1), (0.5,-0.25))
    assert l1["g_shadow_weight_cos"] == pytest.approx(0.75 / math.sqrt(1.25))


def test_shadow_of_fp_model_gives_zero_error():
    fp = _small_resnet(binary=False)
    r = measure(fp, _batch(), ks=(4.0,))
    assert r["summary"]["n_binary"] == 0 and r["summary"]["eq13"] == 0.0
    assert r["summary"]["logit_rel_l2_shadow"] == 0.0
    for row in r["layers"]:
        assert row["drift_rel_l2"] == 0.0 and row["drift_k4_rel_l2"] == 0.0
        if row["g_shadow_total_cos"] is not None:
            assert row["g_shadow_total_norm_ratio"] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("name", list_models())
def test_instruments_work_on_every_registered_backbone(name):
    torch.manual_seed(0)
    m = create_model(name, width_mult=0.25)
    size = 64 if "imagenet" in name else 32
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    r = measure(m, [(x, torch.tensor([0, 1]))], ks=(4.0,))
    s = r["summary"]
    assert s["n_binary"] == sum(getattr(mod, "is_binary", False) for mod in m.modules()) > 0
    assert math.isfinite(s["eq13"]) and s["eq13"] > 0 and 0 < s["logit_rel_l2_shadow"] < 10
    assert all(row["g_shadow_total_cos"] is None or -1 <= row["g_shadow_total_cos"] <= 1 + 1e-9
               for row in r["layers"])


def test_shadow_shares_weights_and_drops_binarizers():
    m = _small_resnet()
    sh = shadow_model(m)
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), sh.state_dict().values()))
    assert not any(getattr(mod, "is_binary", False) for mod in sh.modules())
    with pytest.raises(ValueError, match="shadow mode"):
        shadow_model(m, "bogus")


def test_hooks_leave_outputs_and_grads_unchanged():
    m = _small_resnet().eval()
    x, y = _batch()[0]
    ref = copy.deepcopy(m)
    out0 = ref(x)
    nn.functional.cross_entropy(out0, y).backward()
    probe = _Probe(m, keep=True)
    out1 = m(x)
    nn.functional.cross_entropy(out1, y).backward()
    probe.remove()
    assert torch.equal(out0, out1) and len(probe.acts) > 0
    for (_, a), (_, b) in zip(ref.named_parameters(), m.named_parameters()):
        assert torch.equal(a.grad, b.grad)


def test_measure_leaves_model_untouched_and_is_deterministic():
    m = _small_resnet(binarizer="rsign")
    before = {k: v.clone() for k, v in m.state_dict().items()}
    r1 = measure(m, _batch(), ks=(4.0,))
    r2 = measure(m, _batch(), ks=(4.0,))
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert r1 == r2
    assert r1["summary"]["n_binary"] == 6
    # Bi-Real units: the identity shortcut carries part of each binary conv's input gradient
    fracs = [row["bnn_branch_grad_frac"] for row in r1["layers"] if row["binary"]]
    assert all(f is not None and 0 < f < 1 for f in fracs[1:]), fracs


def test_smooth_sign_gradient_is_analytic():
    x = torch.tensor([-1.5, -0.2, 0.0, 0.3, 2.0], requires_grad=True)
    b = SmoothSign(3.0, BinaryLinear(1, 1).input_binarizer, "input_binarizer")
    b(x).sum().backward()
    assert torch.allclose(x.grad, 3.0 * (1 - torch.tanh(3.0 * x.detach()) ** 2))
    with pytest.raises(ValueError, match="k"):
        SmoothSign(0.0, None, "input_binarizer")


def test_smooth_reference_converges_to_bnn_as_k_grows():
    torch.manual_seed(0)
    # odd fan-in and no bias: pre-activations of +-1 sums are odd integers, never near 0
    net = nn.Sequential(*[BinaryLinear(15, n, bias=False, input_binarizer="sign",
                                       weight_binarizer="sign") for n in (15, 15, 4)])
    x = torch.randn(64, 15, generator=torch.Generator().manual_seed(1))
    ks = (1.0, 4.0, 16.0, 64.0, 256.0, 1024.0)
    with torch.no_grad():
        bnn = net(x)
        err = [float((smooth_model(net, k)(x) - bnn).norm() / bnn.norm()) for k in ks]
    assert err[0] > 0.5 and all(a >= b for a, b in zip(err, err[1:])), err
    assert err[-1] < 1e-6


def _synthetic_points(fn, depths=(1, 2, 3, 5, 7, 9), seeds=4, noise=0.01):
    rng = np.random.default_rng(0)
    d = np.repeat(np.asarray(depths, float), seeds)
    return d, fn(d) + noise * rng.standard_normal(d.size)


@pytest.mark.parametrize("form,fn", [("linear", lambda d: 0.5 + 0.2 * d),
                                     ("log", lambda d: 1.0 + 2.0 * np.log(d)),
                                     ("power", lambda d: 0.3 * d ** 1.5),
                                     ("saturating", lambda d: 0.2 + 1.3 * (1 - np.exp(-d / 2.5)))])
def test_fits_recover_known_phi(form, fn):
    d, y = _synthetic_points(fn)
    fit = fit_phi(d, y, n_boot=50)
    assert fit["best"] == form
    if form == "linear":
        lo, hi = fit["forms"]["linear"]["param_ci"][1]
        assert lo < 0.2 < hi and hi - lo < 0.02


def test_one_seed_per_depth_gives_no_ci_not_a_zero_width_one():
    """Resampling seeds within a depth that has one seed returns the same data every time; the
    fit must say 'no CI' rather than report an interval of width 0 (a false 'grows')."""
    from analysis.error_accumulation.tables import mean_ci, premise_table
    fit = fit_phi([6, 18, 30], [1.0, 1.2, 1.5], n_boot=20)
    lin = fit["forms"]["linear"]
    assert fit["replicated"] is False and lin["param_ci"][1] == [None, None] and lin["band_lo"] is None
    assert lin["params"][1] == pytest.approx(0.5 / 24)
    assert fit_phi([6, 6, 18, 18, 30, 30], [1.0, 1.1, 1.2, 1.25, 1.5, 1.4], n_boot=20)["replicated"]
    assert mean_ci([2.0])[0] == 2.0 and np.isnan(mean_ci([2.0])[1:]).all()
    t = pd.DataFrame([{"status": "fitted", "slope_lo": None, "slope_hi": None, "slope": 0.02},
                      {"status": "fitted", "slope_lo": 0.01, "slope_hi": 0.03, "slope": 0.02}])
    for c in ("backbone", "width", "binarizer", "trained_epochs", "dataset", "metric", "n_depths",
              "n_points", "d_min", "d_max", "mean_at_d_min", "mean_at_d_max", "best_form"):
        t[c] = 0
    assert list(premise_table(t)["verdict"]) == ["no CI (one seed per depth)", "grows"]


def test_premise_reports_each_seeds_own_slope():
    """With 2-3 seeds a bootstrap CI only spans the seeds; the premise table also gives each
    seed's own least-squares slope and how many share the pooled sign."""
    from analysis.error_accumulation.tables import fit_table, premise_table, seed_slopes
    rows = []
    for seed, slope in ((0, 0.5), (1, -0.1)):
        for d in (6, 18, 30):
            rows.append({"backbone": "resnet", "width": 16, "binarizer": "approx_sign",
                         "trained_epochs": 0, "dataset": "synthetic", "seed": seed, "d": d,
                         "eq13": 1.0 + slope * d + 0.01 * seed})
    rf = pd.DataFrame(rows)
    per = seed_slopes(rf, metrics=("eq13",))
    assert per["slope"].tolist() == pytest.approx([0.5, -0.1])
    table, _ = fit_table(rf, metrics=("eq13",), n_boot=20)
    p = premise_table(table, rf)
    assert p.loc[0, "seed_slopes"] == "0: 0.5, 1: -0.1" and p.loc[0, "seeds_same_sign"] == "1/2"
    assert "seed_slopes" not in premise_table(table).columns  # without records: as before


def test_fits_refuse_too_few_depths():
    with pytest.raises(ValueError, match="distinct depths"):
        fit_phi([1, 1, 2, 2], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="forms"):
        fit_phi([1, 2, 3], [1, 2, 3], forms=("cubic",))
    assert loo_rmse("linear", [1, 2, 3], [1.0, 2.0, 3.0]) == pytest.approx(0.0, abs=1e-9)


def test_config_validation_and_hash():
    c = make_config(backbone="vgg", blocks=2, width=8, dataset="synthetic")
    assert config_hash(c) == config_hash(dict(reversed(list(c.items()))))
    assert make_config(backbone="vgg", blocks=2, width=8, dataset="synthetic", train_subset=99) == c
    for kw, name in ((dict(backbone="mlp"), "backbone"), (dict(binarizer="tanh"), "binarizer"),
                     (dict(blocks=0), "blocks"), (dict(dataset="mnist"), "dataset"),
                     (dict(bn_mode="train"), "bn_mode")):
        with pytest.raises(ValueError, match=name):
            make_config(**kw)
    cfgs = grid(["vgg"], [1, 2], [4], ["sign", "rsign"], [0], trained_epochs=[0, 3],
                trained_binarizers=["rsign"], dataset="synthetic")
    assert sorted((c["binarizer"], c["trained_epochs"]) for c in cfgs) == \
        [("rsign", 0)] * 2 + [("rsign", 3)] * 2 + [("sign", 0)] * 2
    with pytest.raises(ValueError, match="depths"):
        grid(["vgg"], [], [4], ["sign"], [0])


def test_study_records_skip_and_figures(tmp_path):
    cfgs = grid(["resnet", "vgg"], [1, 2, 3], [4], ["approx_sign"], [0], dataset="synthetic",
                batch_size=4, ks=(4.0,))
    logs = []
    run_study(cfgs, tmp_path / "rec", log=logs.append)
    assert len(logs) == len(cfgs)
    run_study(cfgs, tmp_path / "rec", log=logs.append)
    assert len(logs) == len(cfgs)  # second run skipped every config
    recs = load_records(tmp_path / "rec")
    r = json.loads((tmp_path / "rec" / f"{config_hash(cfgs[0])}.json").read_text())
    assert len(recs) == len(cfgs) and r["config"] == cfgs[0] and "torch" in r["versions"]
    assert len(select_records(recs, batch_size=4, ks=(4.0,), dataset="synthetic")) == len(cfgs)
    with pytest.raises(ValueError, match="no record"):
        select_records(recs, batch_size=8, ks=(4.0,), dataset="synthetic")
    with pytest.raises(ValueError, match="axes"):
        select_records(recs, seed=0)
    table = make_figures(recs, tmp_path / "fig", n_boot=20)
    assert "no CI (one seed per depth)" in (tmp_path / "fig" / "erracc_premise.md").read_text()
    assert set(table["status"]) == {"fitted"}
    for name in ("error_vs_layer", "accumulated_vs_depth", "grad_cos_vs_layer", "binarizers"):
        for suf in ("pdf", "png", "csv"):
            assert (tmp_path / "fig" / f"erracc_{name}.{suf}").stat().st_size > 0


def test_trained_config_trains_with_bnnlib_train_then_measures(tmp_path):
    cfg = make_config(backbone="vgg", blocks=1, width=4, trained_epochs=1, train_subset=256,
                      val_size=200, dataset="synthetic", batch_size=8, ks=(4.0,))
    rec = run_study([cfg], tmp_path, log=None)[0]
    assert rec["training"]["status"] == "finished"
    assert rec["dataset"]["split"].startswith("validation")
    init = run_study([{**cfg, "trained_epochs": 0}], tmp_path, log=None)[0]
    assert rec["metrics"]["summary"] != init["metrics"]["summary"]  # weights were loaded
    paths = fig_init_vs_trained([init, rec], tmp_path / "fig")
    assert paths["png"].stat().st_size > 0
    from analysis.error_accumulation import write_trained_accuracy
    acc = pd.read_csv(write_trained_accuracy([init, rec], tmp_path / "fig")["csv"])
    t = rec["training"]["metrics"]  # one row (the trained net), its own run's numbers
    assert len(acc) == 1 and acc["n_seeds"].item() == 1
    assert acc["final_test_acc_mean"].item() == pytest.approx(t["final_test_acc"])
    assert acc["best_val_epoch"].item() == f"{t['best_epoch']}/1"
    assert write_trained_accuracy([init], tmp_path / "fig2") == {}  # nothing trained: no table


@pytest.mark.parametrize("config, want", [
    ({"trained_epochs": 0, "train_subset": 4096}, "at initialisation"),
    ({"trained_epochs": 3, "train_subset": 4096}, "trained 3 epochs on 4,096 training images"),
    ({"trained_epochs": 1, "train_subset": 10}, "trained 1 epoch on 10 training images"),
    ({"trained_epochs": 30, "train_subset": None, "val_size": 5000},
     "trained 30 epochs on the whole training split (5000 validation images held out)"),
])
def test_training_label_says_how_much_the_measured_net_was_trained(config, want):
    from analysis.error_accumulation.tables import training_label
    assert training_label(config) == want
