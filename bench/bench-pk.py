# bench-pk.py -- the numpy baseline of bench-pk.sh: the same P(k)
# convention (log10 field minus its mean, unnormalised rfft2, half-plane
# modes with kx >= 0 on the ky = 0 and ky = N/2 rows, shells int(|k|/kF)
# without DC, P = shell mean of Re(a conj b) (L/N^2)^2), on the maps that
# bench-pk wrote, timed from maps in memory to mean spectra.
# Usage: bench-pk.py MAPS.f32 M N [C.csv]
# Prints maps/s; with C.csv (bench-pk's mean spectra) the largest relative
# difference of the means, a cross-check of the device path.
import sys
import time

import numpy as np

path, M, N = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
L = 25.0
maps = np.fromfile(path, dtype=np.float32).reshape(M, 3, N, N)

# geometry: rfft2 output (N, N/2+1), first index kx, second ky
kx = np.fft.fftfreq(N, 1.0 / N)
kx[kx == -(N // 2)] = N // 2      # kx in (-N/2, N/2]: the Nyquist row is +N/2 (N even)
kx = kx[:, None]
ky = np.arange(N // 2 + 1)[None, :]
kk = np.sqrt(kx ** 2 + ky ** 2)
keep = np.ones(kk.shape, bool)
keep[:, 0] &= kx[:, 0] >= 0
if N % 2 == 0:
    keep[:, N // 2] &= kx[:, 0] >= 0
shell = np.floor(kk).astype(np.int64)
keep &= shell > 0
flat = np.flatnonzero(keep.ravel())
order = flat[np.argsort(shell.ravel()[flat], kind="stable")]
sh = shell.ravel()[order]
starts = np.flatnonzero(np.r_[True, sh[1:] != sh[:-1]])
nmodes = np.diff(np.r_[starts, sh.size])
kmean = np.add.reduceat(kk.ravel()[order], starts) / nmodes * 2 * np.pi / L
norm = (L / N ** 2) ** 2 / nmodes
pairs = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]

t0 = time.perf_counter()
B = 50
acc = np.zeros((6, starts.size))
for m0 in range(0, M, B):
    x = np.log10(maps[m0:m0 + B].astype(np.float64))
    x -= x.mean(axis=(2, 3), keepdims=True)
    F = np.fft.rfft2(x).reshape(x.shape[0], 3, -1)[:, :, order]
    for s, (a, b) in enumerate(pairs):
        P = (F[:, a] * np.conj(F[:, b])).real
        acc[s] += (np.add.reduceat(P, starts, axis=1) * norm).sum(axis=0)
el = time.perf_counter() - t0
mean = acc / M
print("numpy %s P(k) baseline (float64 rfft2 + reduceat binning): %d maps of 3 x %d^2: %.3f s, %.1f maps/s"
      % (np.__version__, M, N, el, M / el))
if len(sys.argv) > 4:
    c = np.loadtxt(sys.argv[4], delimiter=",", skiprows=1, usecols=(1, 2)).reshape(6, -1, 2)
    scale = np.sqrt(np.abs(mean[[a for a, b in pairs]] * mean[[b for a, b in pairs]]))
    rel = np.abs(c[:, :, 1] - mean) / scale
    dk = np.abs(c[0, :, 0] - kmean).max()
    print("mean spectra, device vs numpy: max difference %.2e of sqrt(P_aa P_bb) (k max diff %.1e)" % (rel.max(), dk))
