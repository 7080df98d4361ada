"""The DWR paper's CIFAR-10 numbers (AAAI 2023, Tables 4-7) as data, with the table each comes from.

Accuracies are top-1 on the CIFAR-10 test set in percent, as printed. The paper reports the
best epoch on the test set (see DWR-FACTS), so they are optimistic by construction.
``method`` is the optimisation method column ('None' = plain BNN, 'FP' = full precision);
rows with other methods are kept as data but are not reproduced here.
"""
from __future__ import annotations

__all__ = ["PAPER", "CLAIMS", "paper_rows"]


def _r(key, method, reshaping, model, bits, acc, backbone="ResNet-20", **extra):
    return {"key": key, "backbone": backbone, "method": method, "reshaping": reshaping,
            "model": model, "bits": bits, "acc": acc, **extra}


PAPER = {
    "table4": {
        "source": "DWR (AAAI 2023), Table 4",
        "caption": "Comparison of naive reshaping and reshaping with pruning (ResNet-20 with the "
                   "additional shortcut, CIFAR-10)",
        "rows": [
            _r("fp", "FP", "FP", "N_r[w, d]", "32/32", 90.8),
            _r("original", "None", "Original", "N_b[w, d]", "1/1", 85.2),
            _r("original_plus1", "None", "Original+1", "N_b[w, d] + 1", "1/1", 85.2),
            _r("naive_1.5", "None", "Naive reshaping", "N_b[sqrt(1.5) w, d/1.5]", "1/1", 85.4),
            _r("naive_3", "None", "Naive reshaping", "N_b[sqrt(3) w, d/3]", "1/1", 85.8),
            _r("dwr_1.5", "None", "Reshaping with pruning (DWR)", "N_b[sqrt(1.5) w*, d/1.5]",
               "1/1", 85.5),
            _r("dwr_3", "None", "Reshaping with pruning (DWR)", "N_b[sqrt(3) w*, d/3]", "1/1", 86.0),
        ]},
    "table5": {
        "source": "DWR (AAAI 2023), Table 5",
        "caption": "Impact of the pre-training epochs (ResNet-20, ReActNet as the optimization "
                   "method, CIFAR-10)",
        "rows": [
            _r("fp", "FP", "FP", "N_r[w, d]", "32/32", 90.8, pretrain_epochs=0),
            _r("original", "ReActNet", "Original", "N_b[w, d]", "1/1", 87.5, pretrain_epochs=0),
            _r("dwr_pre5", "ReActNet", "DWR", "N_b[sqrt(3) w*, d/3]", "1/1", 88.0, pretrain_epochs=5),
            _r("dwr_pre10", "ReActNet", "DWR", "N_b[sqrt(3) w*, d/3]", "1/1", 88.2,
               pretrain_epochs=10),
            _r("dwr_pre15", "ReActNet", "DWR", "N_b[sqrt(3) w*, d/3]", "1/1", 88.3,
               pretrain_epochs=15),
            _r("dwr_full", "ReActNet", "DWR", "N_b[sqrt(3) w*, d/3]", "1/1", 88.4,
               pretrain_epochs=400),
        ]},
    "table6": {
        "source": "DWR (AAAI 2023), Table 6",
        "caption": "Original vs DWR backbones on CIFAR-10",
        "rows": [
            _r("vgg11/fp", "FP", "Original", "VGG-11", "32/32", 89.3, backbone="VGG-11"),
            _r("vgg11/original", "None", "Original", "VGG-11", "1/1", 83.6, backbone="VGG-11"),
            _r("vgg11/dwr", "None", "DWR", "VGG-11 DWR (s=2)", "1/1", 84.9, backbone="VGG-11"),
            _r("resnet20/fp", "FP", "Original", "ResNet-20", "32/32", 90.8),
            _r("resnet20/original", "None", "Original", "ResNet-20", "1/1", 85.2),
            _r("resnet20/dwr", "None", "DWR", "ResNet-20 DWR (s=3)", "1/1", 86.0),
            _r("resnet20/irnet", "IR-Net", "Original", "ResNet-20", "1/1", 86.5),
            _r("resnet20/sdbnn", "SD-BNN", "Original", "ResNet-20", "1/1", 86.9),
            _r("resnet20/react", "ReActNet", "Original", "ResNet-20", "1/1", 87.5),
            _r("resnet20/react_dwr", "ReActNet", "DWR", "ResNet-20 DWR (s=3)", "1/1", 88.4),
            _r("resnet18/fp", "FP", "Original", "ResNet-18", "32/32", 93.0, backbone="ResNet-18"),
            _r("resnet18/original", "None", "Original", "ResNet-18", "1/1", 90.2,
               backbone="ResNet-18"),
            _r("resnet18/dwr", "None", "DWR", "ResNet-18 DWR (s=2)", "1/1", 91.3,
               backbone="ResNet-18"),
            _r("resnet18/bnndl", "BNN-DL", "Original", "ResNet-18", "1/1", 90.5, backbone="ResNet-18"),
            _r("resnet18/ane", "ANE", "Original", "ResNet-18", "1/1", 91.0, backbone="ResNet-18"),
            _r("resnet18/irnet", "IR-Net", "Original", "ResNet-18", "1/1", 91.5, backbone="ResNet-18"),
            _r("resnet18/rbnn", "RBNN", "Original", "ResNet-18", "1/1", 92.2, backbone="ResNet-18"),
            _r("resnet18/sdbnn", "SD-BNN", "Original", "ResNet-18", "1/1", 92.5, backbone="ResNet-18"),
            _r("resnet18/sdbnn_dwr", "SD-BNN", "DWR", "ResNet-18 DWR (s=2)", "1/1", 92.6,
               backbone="ResNet-18"),
        ]},
    "table7": {
        "source": "DWR (AAAI 2023), Table 7",
        "caption": "Effect of reshaping the depth/width of VGG-Small (CIFAR-10)",
        "rows": [
            _r("fp", "FP", "Original", "VGG-Small", "32/32", 91.7, backbone="VGG-Small"),
            _r("original", "None", "Original", "VGG-Small", "1/1", 90.2, backbone="VGG-Small"),
            _r("original_minus1", "None", "Original-1", "VGG-Small - last conv, pruned to budget",
               "1/1", 90.1, backbone="VGG-Small"),
            _r("original_plus1", "None", "Original+1 (DWR)", "VGG-Small + 1 conv, pruned to budget",
               "1/1", 90.6, backbone="VGG-Small"),
            _r("xnor", "XNOR-Net", "Original", "VGG-Small", "1/1", 89.8, backbone="VGG-Small"),
            _r("binarynet", "BinaryNet", "Original", "VGG-Small", "1/1", 89.9, backbone="VGG-Small"),
            _r("bnndl", "BNN-DL", "Original", "VGG-Small", "1/1", 90.0, backbone="VGG-Small"),
            _r("irnet", "IR-Net", "Original", "VGG-Small", "1/1", 90.4, backbone="VGG-Small"),
            _r("binaryduo", "BinaryDuo", "Original", "VGG-Small", "1/1", 90.4, backbone="VGG-Small"),
            _r("sdbnn", "SD-BNN", "Original", "VGG-Small", "1/1", 90.8, backbone="VGG-Small"),
            _r("sdbnn_dwr", "SD-BNN", "DWR", "VGG-Small DWR", "1/1", 91.3, backbone="VGG-Small"),
        ]},
}

# Speed and complexity claims (Sec. 4.3, Table 3, Sec. 5.3 ImageNet paragraph).
CLAIMS = {
    "acts_ratio": "activations fall to about 1/sqrt(s) of the original's (Table 3)",
    "imagenet_train_speedup": "about 12.5% faster training on ImageNet (4 vs 3.5 days on 2 RTX "
                              "Titan GPUs, ResNet-18 without extra optimization; Sec. 5.3)",
    "imagenet_train_days": {"original": 4.0, "dwr": 3.5},
}


def paper_rows(table: str) -> list[dict]:
    """The paper's rows of ``table`` ('table4' ... 'table7')."""
    if table not in PAPER:
        raise ValueError(f"table: got {table!r}; allowed: {sorted(PAPER)}")
    return [dict(r, table=table, source=PAPER[table]["source"]) for r in PAPER[table]["rows"]]
