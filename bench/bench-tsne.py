# bench-tsne.py -- the scikit-learn baseline of bench-tsne.sh: Barnes-Hut
# t-SNE with sklearn's defaults (perplexity 30, PCA init, learning rate
# 'auto', 1000 iterations, angle 0.5; n_jobs=-1), timed on the points that
# bench-tsne wrote.  Usage: bench-tsne.py POINTS.f32 N D OUT.f32
# Prints "sklearn t-SNE: N x D: T s"; with N <= 3000 also sklearn's own
# trustworthiness of its embedding (a cross-check of the C implementation).
import sys
import time

import numpy as np
import sklearn
from sklearn.manifold import TSNE, trustworthiness

path, n, d, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
X = np.fromfile(path, dtype=np.float32).reshape(n, d)
t0 = time.perf_counter()
Y = TSNE(n_components=2, perplexity=30.0, init="pca", learning_rate="auto",
         method="barnes_hut", angle=0.5, random_state=0, n_jobs=-1).fit_transform(X)
el = time.perf_counter() - t0
Y.astype(np.float32).tofile(out)
print("sklearn %s t-SNE: %d x %d: %.2f s" % (sklearn.__version__, n, d, el))
if n <= 3000:
    print("sklearn trustworthiness of its own embedding: %.4f" % trustworthiness(X, Y, n_neighbors=5))
