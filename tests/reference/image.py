"""Image resizing reference, written from the definition in float64, one output pixel at a time.

``tf.image.resize`` (antialias off, half-pixel centres): output pixel ``i`` of an axis of ``out`` samples
over ``n`` input samples sits at input coordinate ``(i + 0.5) * n / out - 0.5``. Bilinear weighs the two
input samples around it (indices clamped into ``[0, n - 1]``) by distance; nearest takes input index
``floor((i + 0.5) * n / out)``, clamped.
"""
import math

import numpy as np


def bilinear(img, out_h, out_w):
    img = np.asarray(img, dtype=np.float64)
    h, w, c = img.shape
    out = np.empty((out_h, out_w, c))
    for i in range(out_h):
        sy = (i + 0.5) * h / out_h - 0.5
        y0 = math.floor(sy)
        fy = sy - y0
        ya, yb = min(max(y0, 0), h - 1), min(max(y0 + 1, 0), h - 1)
        for j in range(out_w):
            sx = (j + 0.5) * w / out_w - 0.5
            x0 = math.floor(sx)
            fx = sx - x0
            xa, xb = min(max(x0, 0), w - 1), min(max(x0 + 1, 0), w - 1)
            top = img[ya, xa] * (1 - fx) + img[ya, xb] * fx
            bottom = img[yb, xa] * (1 - fx) + img[yb, xb] * fx
            out[i, j] = top * (1 - fy) + bottom * fy
    return out


def nearest(img, out_h, out_w):
    img = np.asarray(img)
    h, w, _ = img.shape
    rows = [min(max(math.floor((i + 0.5) * h / out_h), 0), h - 1) for i in range(out_h)]
    cols = [min(max(math.floor((j + 0.5) * w / out_w), 0), w - 1) for j in range(out_w)]
    return img[rows][:, cols]
