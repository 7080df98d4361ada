"""The DWR paper's complexity claims as data: Tables 1/3 predicted ratios, Table 8's OPs column."""
from __future__ import annotations

import math

__all__ = ["PREDICTED", "PAPER_TABLE8"]

# Table 1 / Table 3 predictions: transform -> quantity -> ratio as a function of s.
PREDICTED = {
    "depth": {"ops": lambda s: s, "params": lambda s: s, "acts": lambda s: s},
    "width": {"ops": lambda s: s, "params": lambda s: s, "acts": math.sqrt},
    "naive": {"ops": lambda s: 1.0, "params": lambda s: 1.0, "acts": lambda s: 1 / math.sqrt(s)},
}
# Table 8 of the paper (OPs x 1e8) with the registered backbone that each row describes.
# The ReActNet DWR widths (116/188/408/910) are the authors' code's ReActNet variant.
PAPER_TABLE8 = (
    ("FP", "Original", 18.3, "resnet18_imagenet", {"binary": False}, None),
    ("Bi-Real Net", "Original", 1.75, "resnet18_imagenet", {}, None),
    ("None", "Original", 1.74, "resnet18_imagenet", {}, None),
    ("None", "DWR", 1.73, "resnet18_imagenet_dwr", {}, None),
    ("ReActNet", "Original", 1.81, "resnet18_imagenet", {"input_binarizer": "rsign", "act": "rprelu"}, None),
    ("ReActNet", "DWR", 1.81, "resnet18_imagenet_dwr", {"input_binarizer": "rsign", "act": "rprelu"},
     (116, 188, 408, 910)),
)
