#!/usr/bin/env python3
"""bench-train-torch.py -- the PyTorch baseline for bench-train: the same VDVAE
(`small` or `paper` preset: the same blocks, widths, latents, Gaussian output
with floored log-sigma, loss in nats per dimension) trained with the same
RMSprop settings at the same batch size on the CPU, random normalised data.

Prints one line:  torch <preset> maps_per_s=<x> threads=<n> torch=<version>
Exit status 77 (skip) if PyTorch is not installed."""
import math
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("torch: not installed (apt-get install python3-torch)", file=sys.stderr)
    sys.exit(77)

PRESETS = {
    "small": dict(size=64, width=32, bottleneck=8, zdim=16, enc=[(64, 3), (32, 3), (16, 2), (8, 2)],
                  dec=[(4, 1), (8, 2), (16, 2), (32, 3), (64, 3)]),
    "paper": dict(size=256, width=128, bottleneck=32, zdim=16,
                  enc=[(256, 3), (128, 3), (64, 2), (32, 2), (16, 2), (8, 2)],
                  dec=[(4, 1), (8, 2), (16, 2), (32, 2), (64, 2), (128, 3), (256, 3)]),
}


class Block(nn.Module):
    def __init__(self, cin, mid, cout, res, residual):
        super().__init__()
        k = 3 if res > 2 else 1
        self.c1 = nn.Conv2d(cin, mid, 1)
        self.c2 = nn.Conv2d(mid, mid, k, padding=k // 2)
        self.c3 = nn.Conv2d(mid, mid, k, padding=k // 2)
        self.c4 = nn.Conv2d(mid, cout, 1)
        self.residual = residual

    def forward(self, x):
        h = self.c1(F.gelu(x))
        h = self.c2(F.gelu(h))
        h = self.c3(F.gelu(h))
        h = self.c4(F.gelu(h))
        return x + h if self.residual else h


class TopDown(nn.Module):
    def __init__(self, W, B, Z, res):
        super().__init__()
        self.Z = Z
        self.post = Block(2 * W, B, 2 * Z, res, False)
        self.prior = Block(W, B, 2 * Z + W, res, False)
        nn.init.zeros_(self.prior.c4.weight)
        self.zproj = nn.Conv2d(Z, W, 1)
        self.res = Block(W, B, W, res, True)

    def forward(self, s, enc):
        Z = self.Z
        q = self.post(torch.cat([s, enc], 1))
        mq, lsq = q[:, :Z], q[:, Z:]
        p = self.prior(s)
        mp, lsp, xpp = p[:, :Z], p[:, Z:2 * Z], p[:, 2 * Z:]
        s = s + xpp
        z = mq + torch.exp(lsq) * torch.randn_like(mq)
        kl = lsp - lsq + (torch.exp(2 * lsq) + (mq - mp) ** 2) / (2 * torch.exp(2 * lsp)) - 0.5
        s = s + self.zproj(z)
        return self.res(s), kl


class VDVAE(nn.Module):
    def __init__(self, cfg, C=3):
        super().__init__()
        W, B, Z = cfg["width"], cfg["bottleneck"], cfg["zdim"]
        self.cfg, self.C = cfg, C
        self.inp = nn.Conv2d(C, W, 3, padding=1)
        self.enc = nn.ModuleList([nn.ModuleList([Block(W, B, W, r, True) for _ in range(n)]) for r, n in cfg["enc"]])
        self.dec = nn.ModuleList([nn.ModuleList([TopDown(W, B, Z, r) for _ in range(n)]) for r, n in cfg["dec"]])
        self.start = nn.ParameterList([nn.Parameter(torch.zeros(1, W, r, r)) for r, _ in cfg["dec"] if r <= 64])
        self.gain = nn.Parameter(torch.ones(1, W, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, W, 1, 1))
        self.out = nn.Conv2d(W, 2 * C, 1)

    def forward(self, x):
        h = self.inp(x)
        acts = {}
        for (r, _), stage in zip(self.cfg["enc"], self.enc):
            for blk in stage:
                h = blk(h)
            acts[r] = h
            h = F.avg_pool2d(h, 2)
        acts[h.shape[-1]] = h
        s, kls, si = None, [], 0
        for (r, _), stage in zip(self.cfg["dec"], self.dec):
            start = None
            if r <= 64:
                start = self.start[si].expand(x.shape[0], -1, -1, -1)
                si += 1
            if s is None:
                s = start
            else:
                s = F.interpolate(s, scale_factor=2, mode="nearest")
                if start is not None:
                    s = s + start
            for blk in stage:
                s, kl = blk(s, acts[r])
                kls.append(kl)
        o = self.out(s * self.gain + self.bias)
        mu, ls = o[:, :self.C], torch.clamp(o[:, self.C:], min=-5.0)
        nll = ls + 0.5 * math.log(2 * math.pi) + (x - mu) ** 2 / (2 * torch.exp(2 * ls))
        dims = x[0].numel()
        loss = (nll.flatten(1).sum(1) + sum(k.flatten(1).sum(1) for k in kls)) / dims
        return loss.mean()


def main():
    preset = sys.argv[1] if len(sys.argv) > 1 else "small"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    batch = 4
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    cfg = PRESETS[preset]
    m = VDVAE(cfg)
    opt = torch.optim.RMSprop(m.parameters(), lr=2e-5, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(batch, 3, cfg["size"], cfg["size"])
    n_par = sum(p.numel() for p in m.parameters())
    warm = 2 if steps > 4 else 1
    for i in range(warm + steps):
        if i == warm:
            t0 = time.perf_counter()
            c0 = time.process_time()
        opt.zero_grad()
        loss = m(x)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 200.0)
        opt.step()
    dt = time.perf_counter() - t0
    dc = time.process_time() - c0     # all threads: the rate per CPU-second resists a shared host's load
    print(f"torch {preset} maps_per_s={steps * batch / dt:.3f} threads={threads} params={n_par} torch={torch.__version__}"
          f" maps_per_cpu_s={steps * batch / dc:.3f}")


if __name__ == "__main__":
    main()
