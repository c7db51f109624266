"""Pretraining throughput: batched on-device augmentation vs a per-sample DataLoader pipeline.

Both pipelines apply the same augmentations (blur, noise, rot90/flip, jitter-crop, from
sdssclr.learn.augment) and train the same encoder with the same batch; the per-sample pipeline calls
them on one stamp at a time inside a Dataset's __getitem__ (DataLoader workers, pinned memory),
the batched one on the whole batch on the training device.

    python benchmarks/pretrain.py                       # CPU, small encoder
    python benchmarks/pretrain.py --encoder resnet18 --batch 512 --steps 30   # on a GPU
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sdssclr.learn.augment import AugmentConfig, Augmenter, Normalizer, border_noise  # noqa: E402
from sdssclr.learn.encoders import ResNetEncoder  # noqa: E402
from sdssclr.learn.simclr import ProjectionHead, nt_xent  # noqa: E402
from sdssclr.learn.engine import autocast, resolve_device  # noqa: E402


def fake_stamps(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.05, (n, 5, 32, 32)).astype(np.float32)
    yy, xx = np.mgrid[:32, :32]
    prof = np.exp(-0.5 * ((xx - 16) ** 2 + (yy - 16) ** 2) / 1.6**2).astype(np.float32)
    x += rng.uniform(0.2, 5, (n, 5, 1, 1)).astype(np.float32) * prof
    return x, rng.uniform(2.5, 4.5, (n, 5)).astype(np.float32)


class PerSample(torch.utils.data.Dataset):
    """Two augmented views of one stamp per item, made on the CPU in the worker."""

    def __init__(self, stamps, fwhm, augment):
        self.stamps, self.fwhm, self.augment = torch.from_numpy(stamps), torch.from_numpy(fwhm), augment
        self.sigma = border_noise(self.stamps)

    def __len__(self):
        return len(self.stamps)

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i + int(torch.randint(0, 2**31, (1,))))
        x, s, f = self.stamps[i:i + 1], self.sigma[i:i + 1], self.fwhm[i:i + 1]
        return self.augment(x, s, f, g)[0], self.augment(x, s, f, g)[0]


class GpuSampler:
    """nvidia-smi utilisation sampled every 100 ms in the background while the steps run."""

    def __init__(self):
        self.samples, self.proc = [], None

    def __enter__(self):
        try:
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                          "-lms", "100"], stdout=subprocess.PIPE, text=True)
        except OSError:
            self.proc = None
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.terminate()
            out = self.proc.communicate(timeout=5)[0]
            self.samples = [float(v) for v in out.split() if v.strip().isdigit()]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", default="small")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    stamps, fwhm = fake_stamps(args.n)
    cpu_aug = Augmenter(AugmentConfig(crop=28), border_noise(torch.from_numpy(stamps)), torch.from_numpy(fwhm))
    dev_stamps, dev_fwhm = torch.from_numpy(stamps).to(device), torch.from_numpy(fwhm).to(device)
    dev_sigma = border_noise(dev_stamps)
    dev_aug = Augmenter(AugmentConfig(crop=28), dev_sigma, dev_fwhm)
    norm = Normalizer.fit(dev_stamps[:1024].cpu())
    torch.manual_seed(0)
    enc = ResNetEncoder(args.encoder)
    model = torch.nn.Sequential(enc, ProjectionHead(enc.dim, 128)).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def train_step(v1, v2):
        v = norm(torch.cat([v1, v2]))
        if device.type == "cuda":
            v = v.contiguous(memory_format=torch.channels_last)
        with autocast(device):
            z = model(v)
        loss = nt_xent(z[: len(v1)], z[len(v1):], 0.2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # batched, on the training device
    gen = torch.Generator(device=device).manual_seed(0)
    t_aug = t_all = 0.0
    sampler = GpuSampler() if device.type == "cuda" else None
    for step in range(args.steps + 2):
        if step == 2 and sampler is not None:
            sampler.__enter__()
        sync()
        t0 = time.perf_counter()
        idx = torch.randint(0, args.n, (args.batch,), device=device)
        x = dev_stamps[idx]
        v1, v2 = dev_aug(x, dev_sigma[idx], dev_fwhm[idx], gen), dev_aug(x, dev_sigma[idx], dev_fwhm[idx], gen)
        sync()
        t1 = time.perf_counter()
        train_step(v1, v2)
        sync()
        if step >= 2:  # warm-up steps excluded
            t_aug += t1 - t0
            t_all += time.perf_counter() - t0
    if sampler is not None:
        sampler.__exit__()
    batched = 2 * args.batch * args.steps / t_all

    # per-sample DataLoader
    loader = torch.utils.data.DataLoader(PerSample(stamps, fwhm, cpu_aug), batch_size=args.batch, shuffle=True,
                                         num_workers=args.workers, pin_memory=device.type == "cuda",
                                         drop_last=True, persistent_workers=args.workers > 0)
    it = iter(loader)
    t_ps = t_wait = 0.0
    for step in range(args.steps + 2):
        sync()
        t0 = time.perf_counter()
        try:
            v1, v2 = next(it)
        except StopIteration:  # next epoch of the loader
            it = iter(loader)
            v1, v2 = next(it)
        v1, v2 = v1.to(device, non_blocking=True), v2.to(device, non_blocking=True)
        t1 = time.perf_counter()
        train_step(v1, v2)
        sync()
        if step >= 2:
            t_wait += t1 - t0
            t_ps += time.perf_counter() - t0
    per_sample = 2 * args.batch * args.steps / t_ps

    print(f"device: {name}; encoder {args.encoder}; batch {args.batch} (x2 views); {args.steps} timed steps")
    print(f"{'pipeline':<40}{'images/s':>10}{'aug/data share':>19}")
    print(f"{'batched on-device augmentation':<40}{batched:>10.0f}{t_aug / t_all:>19.1%}")
    print(f"{f'per-sample DataLoader ({args.workers} workers)':<40}{per_sample:>10.0f}{t_wait / t_ps:>19.1%}")
    print(f"ratio batched / per-sample: {batched / per_sample:.2f}x")
    if sampler is not None and sampler.samples:
        print(f"GPU utilisation during the batched steps: mean {np.mean(sampler.samples):.0f}% "
              f"({len(sampler.samples)} nvidia-smi samples at 100 ms)")


if __name__ == "__main__":
    main()
