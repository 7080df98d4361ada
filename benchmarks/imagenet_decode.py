"""CPU throughput of the ImageNet input pipeline (``bnnlib.imagenet``): decode + transform per
image in one process, i.e. per DataLoader worker, and optionally through a DataLoader.

The images are generated here (no ImageNet on this machine): smooth random colour fields with
mild noise, sides drawn from 350-500 px (ILSVRC-2012 images average about 400 x 350), saved as
JPEG quality 90. Real photos decode at a somewhat different speed; the figure is an estimate
of the per-worker rate, not a measurement on ImageNet.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/imagenet_decode.py [--images 200] [--workers 0 2]
        [--out benchmarks/results/imagenet_decode_cpu.json]

Per-GPU Bi-Real-18 training images/s needs a GPU: use
``python benchmarks/imagenet_decode.py --train-steps 20 --device cuda`` (synthetic 224 px
batches through the same trainer step) where one is at hand.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bnnlib import records
from bnnlib.imagenet import FolderImages, eval_transform, scan, train_transform


def make_images(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` smooth JPEGs in an ImageFolder (one class) under ``root``."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        (root / split / "n00000000").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        w, h = (int(v) for v in rng.integers(350, 501, 2))
        coarse = rng.uniform(0, 255, (h // 32 + 2, w // 32 + 2, 3)).astype(np.uint8)
        img = Image.fromarray(coarse).resize((w, h), Image.BICUBIC)
        arr = np.clip(np.asarray(img, np.float32) + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(root / "train" / "n00000000" / f"{i}.JPEG", quality=90)
    Image.fromarray(arr).save(root / "val" / "n00000000" / "0.JPEG", quality=90)
    return root


def time_transform(paths: list, fn) -> dict:
    """Wall and process-CPU seconds per image of ``fn(path)`` over ``paths`` (after 5 warm-ups)."""
    for p in paths[:5]:
        fn(p)
    t, c = time.perf_counter(), time.process_time()
    for p in paths:
        fn(p)
    n = len(paths)
    wall, cpu = (time.perf_counter() - t) / n, (time.process_time() - c) / n
    return {"images": n, "wall_ms_per_image": 1e3 * wall, "cpu_ms_per_image": 1e3 * cpu,
            "images_per_cpu_s": 1.0 / cpu, "images_per_wall_s": 1.0 / wall}


def time_loader(paths: list, labels, workers: int, batch: int = 32) -> dict:
    """Images/s (wall) of the training transform through a DataLoader with ``workers``."""
    from bnnlib.imagenet import EpochSampler
    ds = FolderImages(paths, labels, 224, True, seed=0, lighting=0.1)
    sampler = EpochSampler(torch.utils.data.SequentialSampler(ds))
    dl = torch.utils.data.DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=workers,
                                     persistent_workers=workers > 0, drop_last=True)
    next(iter(dl))  # start the workers
    t = time.perf_counter()
    n = sum(len(y) for _, y in dl)
    return {"workers": workers, "images": n, "images_per_wall_s": n / (time.perf_counter() - t)}


def time_train_steps(steps: int, device: str, batch: int) -> dict:
    """Bi-Real-18 training images/s on synthetic 224 px batches (no decoding) on ``device``."""
    from bnnlib.recipes import recipe
    from bnnlib.train import build_model
    from bnnlib.train_config import make_optimizer, resolved_hparams
    cfg = recipe("bireal18", batch_size=batch, device=device)
    dev = torch.device(device)
    model = build_model(cfg).to(dev).train()
    opt = make_optimizer(model, resolved_hparams(cfg), cfg.weight_decay)
    x = torch.randn(batch, 3, 224, 224, device=dev)
    y = torch.randint(0, 1000, (batch,), device=dev)

    def step():
        """One forward/backward/Adam step."""
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    s = (time.perf_counter() - t) / steps
    return {"device": records.device_info(dev), "batch": batch, "steps": steps,
            "step_s": s, "images_per_s": batch / s}


def main(argv=None) -> int:
    """Run the benchmark; print and optionally save the rows."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--workers", type=int, nargs="*", default=[])
    ap.add_argument("--train-steps", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    out = {"cpu": records.device_info("cpu"), "versions": records.versions(),
           "git_commit": records.git_commit()["commit"], "note": "synthetic smooth JPEGs, 350-500 px, q90"}
    with tempfile.TemporaryDirectory() as d:
        idx = scan(make_images(Path(d), a.images))
        paths, rng = idx.train_paths, np.random.default_rng(0)
        out["train_transform"] = time_transform(paths, lambda p: train_transform(p, 224, rng, 0.1))
        out["eval_transform"] = time_transform(paths, lambda p: eval_transform(p, 224))
        out["loaders"] = [time_loader(paths, idx.train_labels, w) for w in a.workers]
    if a.train_steps:
        out["train_steps"] = time_train_steps(a.train_steps, a.device, a.batch)
    print(json.dumps(out, indent=1))
    if a.out:
        records.write_json_atomic(a.out, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
