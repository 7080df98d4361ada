"""bnnlib.records: atomic JSON, config hash, provenance, weight hashes."""
import json
import re
from dataclasses import dataclass

import pytest
import torch

from bnnlib import records


def test_atomic_write_roundtrip_no_temp_and_nonfinite(tmp_path):
    p = records.write_json_atomic(tmp_path / "sub" / "r.json",
                                  {"a": (1, 2), "nan": float("nan"), "t": torch.tensor(3.5)})
    assert records.read_json(p) == {"a": [1, 2], "nan": "nan", "t": 3.5}
    assert [q.name for q in p.parent.iterdir()] == ["r.json"]


def test_failed_write_keeps_old_file(tmp_path):
    p = records.write_json_atomic(tmp_path / "r.json", {"v": 1})
    with pytest.raises(TypeError):
        records.write_json_atomic(p, {"v": object()})
    assert records.read_json(p) == {"v": 1}
    assert [q.name for q in tmp_path.iterdir()] == ["r.json"]


def test_save_atomic_torch(tmp_path):
    p = records.save_atomic({"w": torch.ones(2)}, tmp_path / "w.pt")
    assert torch.equal(torch.load(p)["w"], torch.ones(2))


@dataclass(frozen=True)
class _Cfg:
    lr: float = 0.1
    threads: int = 1
    device: str = "cpu"
    tag: str = ""


def test_config_hash_stable_and_ignores_operational_fields():
    h = records.config_hash(_Cfg())
    assert re.fullmatch(r"[0-9a-f]{16}", h)
    assert records.config_hash(_Cfg(threads=4, device="cuda")) == h
    assert records.config_hash(_Cfg(lr=0.2)) != h
    assert records.config_hash(_Cfg(tag="x")) != h
    assert records.config_hash({"lr": 0.1, "tag": "", "threads": 9}) == h
    with pytest.raises(ValueError, match="config"):
        records.config_hash(3)


def test_weights_sha256_equal_for_equal_weights_and_sensitive_to_one_bit():
    sd = {"w": torch.arange(6.0).view(2, 3), "n": torch.tensor(7), "b": torch.zeros(0)}
    h = records.weights_sha256(sd)
    assert h == records.weights_sha256({k: v.clone() for k, v in reversed(sd.items())})
    sd2 = dict(sd, w=sd["w"].clone())
    sd2["w"].view(torch.int32)[0, 0] ^= 1  # flip the lowest mantissa bit
    assert records.weights_sha256(sd2) != h
    assert records.weights_sha256(dict(sd, n=torch.tensor(7.0))) != h  # dtype counts


def test_git_commit_inside_and_outside_a_checkout(tmp_path):
    g = records.git_commit()
    assert g["commit"] is None or re.fullmatch(r"[0-9a-f]{40}", g["commit"])
    assert records.git_commit(tmp_path) == {"commit": None, "dirty": None}


def test_versions_and_device_info():
    v = records.versions()
    assert v["torch"] == torch.__version__ and "python" in v and "numpy" in v
    d = records.device_info("cpu")
    assert d["type"] == "cpu" and d["threads"] == torch.get_num_threads() and d["name"]
    json.dumps(d)


def test_jsonable_dataclass_and_paths(tmp_path):
    out = records.jsonable({"c": _Cfg(), "p": tmp_path, "inf": float("inf")})
    assert out == {"c": {"lr": 0.1, "threads": 1, "device": "cpu", "tag": ""},
                   "p": str(tmp_path), "inf": "inf"}
