"""Drawing for the synthetic invariance suite: shapes, background textures, compositing.

Pure functions of the factor records in :mod:`mast_bench.data.synthetic.factors`; no randomness
here, so an image is a deterministic function of its factors (the tests re-render images from
``factors.csv`` and compare them byte for byte).

Coordinates are continuous image coordinates with ``y`` pointing down: pixel ``(i, j)`` covers
``[j, j+1) × [i, i+1)`` and its centre is ``(j + 0.5, i + 0.5)``. An object's alpha matte is
its polygon's coverage sampled on a 4×4 sub-pixel grid, so edges are anti-aliased and the
alpha-weighted centroid equals the polygon's area centroid up to ~0.05 px.
Background textures are evaluated directly at native resolution so that their fine structure
(period 3.5–5 px) survives exactly as drawn and a Gaussian blur of σ ≈ 1–2 px removes it.
"""

from __future__ import annotations

import colorsys
import functools
from collections.abc import Sequence

import numpy as np

from mast_bench.data.synthetic.factors import Background, ObjectFactors

SUPERSAMPLE = 4


def _normalise(vertices: Sequence[tuple[float, float]]) -> np.ndarray:
    """Move a polygon's area centroid to the origin and scale its farthest vertex to radius 1."""
    p = np.asarray(vertices, dtype=np.float64)
    x, y = p[:, 0], p[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    area = cross.sum() / 2.0
    c = np.array([((x + xn) * cross).sum(), ((y + yn) * cross).sum()]) / (6.0 * area)
    p = p - c
    return p / np.sqrt((p**2).sum(axis=1)).max()


def _regular(n: int, start_deg: float = -90.0) -> list[tuple[float, float]]:
    a = np.deg2rad(start_deg + 360.0 * np.arange(n) / n)
    return list(zip(np.cos(a), np.sin(a)))


def _star(points: int = 5, inner: float = 0.45) -> list[tuple[float, float]]:
    a = np.deg2rad(-90.0 + 180.0 * np.arange(2 * points) / points)
    r = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return list(zip(r * np.cos(a), r * np.sin(a)))


def _plus(w: float = 0.34) -> list[tuple[float, float]]:
    return [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w)]


# Unit polygons in image coordinates (y down), drawn upright. "L" and "F" have no symmetry at
# all (unequal arms), so each of the 8 rotations-by-90°/mirror images is a distinct picture; this
# is what makes the orientation task's labels well defined. "arrow" is mirror-symmetric only.
SHAPE_POLYGONS: dict[str, np.ndarray] = {
    "circle": _normalise(_regular(48)),
    "triangle": _normalise(_regular(3)),
    "square": _normalise([(-1, -1), (1, -1), (1, 1), (-1, 1)]),
    "plus": _normalise(_plus()),
    "star": _normalise(_star()),
    "arrow": _normalise([(-1, -0.28), (0.15, -0.28), (0.15, -0.7), (1, 0), (0.15, 0.7), (0.15, 0.28), (-1, 0.28)]),
    "L": _normalise([(0, 0), (0.4, 0), (0.4, 0.62), (0.8, 0.62), (0.8, 1.02), (0, 1.02)]),
    "F": _normalise(
        [(0, 0), (0.85, 0), (0.85, 0.36), (0.4, 0.36), (0.4, 0.56), (0.7, 0.56), (0.7, 0.88), (0.4, 0.88),
         (0.4, 1.3), (0, 1.3)]
    ),
}  # fmt: skip


def hsv_to_rgb(h_deg: float, s: float, v: float) -> np.ndarray:
    """One HSV colour (hue in degrees, s and v in [0, 1]) → RGB float array of shape (3,)."""
    return np.array(colorsys.hsv_to_rgb((h_deg % 360.0) / 360.0, s, v), dtype=np.float64)


def shape_polygon(obj: ObjectFactors) -> np.ndarray:
    """Vertices of the object's outline in image coordinates.

    The unit polygon is mirrored (x → −x) if ``obj.mirror``, then rotated counter-clockwise as
    seen on screen by ``obj.angle`` degrees, scaled by ``obj.size`` (pixels from the centroid
    to the farthest vertex) and moved to ``(obj.cx, obj.cy)``.

    Returns:
        float64 array of shape (V, 2) of ``(x, y)`` vertices.
    """
    p = SHAPE_POLYGONS[obj.shape].copy()
    if obj.mirror:
        p[:, 0] = -p[:, 0]
    t = np.deg2rad(obj.angle)
    c, s = np.cos(t), np.sin(t)
    # y points down, so a visually counter-clockwise turn is (x, y) → (x c + y s, −x s + y c).
    rot = np.stack([p[:, 0] * c + p[:, 1] * s, -p[:, 0] * s + p[:, 1] * c], axis=1)
    return rot * obj.size + np.array([obj.cx, obj.cy])


def object_alpha(obj: ObjectFactors, canvas: int) -> np.ndarray:
    """Anti-aliased coverage of the object: (canvas, canvas) float64 in [0, 1].

    Each pixel is sampled at the centres of a 4×4 grid of sub-pixels; a sample is inside when
    an odd number of polygon edges cross its sub-pixel row to its left (even-odd scanline rule,
    half-open in y so a vertex is never counted twice). Exact in floating point, unlike a raster
    library that rounds vertices to integers, so rotating the object by 90° rotates its coverage
    exactly. Only the object's bounding box is sampled.
    """
    ss = SUPERSAMPLE
    pts = shape_polygon(obj)
    x0, y0 = (max(0, int(np.floor(v))) for v in pts.min(axis=0))
    x1, y1 = (min(canvas, int(np.ceil(v))) for v in pts.max(axis=0))
    alpha = np.zeros((canvas, canvas), dtype=np.float64)
    if x1 <= x0 or y1 <= y0:
        return alpha
    sub = (np.arange(ss) + 0.5) / ss
    xs = (np.arange(x0, x1)[:, None] + sub).ravel()  # (S,) sample x
    ys = (np.arange(y0, y1)[:, None] + sub).ravel()[:, None]  # (R, 1) sample rows
    a, b = pts, np.concatenate([pts[1:], pts[:1]])  # (V, 2) edge starts and ends
    dy = np.where(b[:, 1] != a[:, 1], b[:, 1] - a[:, 1], 1.0)
    cross = a[:, 0] + (ys - a[:, 1]) / dy * (b[:, 0] - a[:, 0])  # (R, V) where each edge meets each row
    spans = (np.minimum(a[:, 1], b[:, 1]) <= ys) & (ys < np.maximum(a[:, 1], b[:, 1]))
    far = float(canvas + 1)
    cross = np.sort(np.where(spans, np.clip(cross, -1.0, far), far), axis=1)
    # Count crossings left of every sample with one searchsorted: shift row r by r·stride so
    # all rows live in one sorted array.
    stride = 2.0 * far + 2.0
    shift = np.arange(len(ys))[:, None] * stride
    left = np.searchsorted((cross + shift).ravel(), (xs + shift).ravel()).reshape(len(ys), len(xs))
    inside = (left - np.arange(len(ys))[:, None] * cross.shape[1]) % 2 == 1
    alpha[y0:y1, x0:x1] = inside.reshape(y1 - y0, ss, x1 - x0, ss).mean(axis=(1, 3))
    return alpha


@functools.lru_cache(maxsize=8)
def _pixel_centres(canvas: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:canvas, 0:canvas].astype(np.float64) + 0.5
    yy.flags.writeable = False
    xx.flags.writeable = False
    return yy, xx


def texture_pattern(bgs: Sequence[Background], canvas: int) -> np.ndarray:
    """Each background's luminance modulation in [−1, 1]: (N, canvas, canvas) float64.

    ``smooth`` is a gentle ramp across the whole image (no fine structure); ``stripes`` a
    near-square wave; ``checker`` the product of two such waves; ``dots`` a grid of ~1 px dots.
    Period, angle and phase are factors, so a texture class is not a fixed pixel pattern.
    Computed for a batch at once (elementwise, so one image's values do not depend on the batch).
    """
    yy, xx = _pixel_centres(canvas)
    t = np.deg2rad(np.array([b.tex_angle for b in bgs]))[:, None, None]
    period = np.array([b.period for b in bgs])[:, None, None]
    pu = np.array([b.phase_u for b in bgs])[:, None, None]
    pv = np.array([b.phase_v for b in bgs])[:, None, None]
    u = xx * np.cos(t) + yy * np.sin(t)
    v = -xx * np.sin(t) + yy * np.cos(t)
    w = 2.0 * np.pi / period
    out = np.empty((len(bgs), canvas, canvas), dtype=np.float64)
    kinds = np.array([b.texture for b in bgs])
    for kind in np.unique(kinds):
        i = kinds == kind
        if kind == "smooth":
            out[i] = (u[i] / canvas - 0.5) * 1.2
        elif kind == "stripes":
            out[i] = np.tanh(3.0 * np.sin(w[i] * u[i] + pu[i]))
        elif kind == "checker":
            out[i] = np.tanh(4.0 * np.sin(w[i] * u[i] + pu[i]) * np.sin(w[i] * v[i] + pv[i]))
        elif kind == "dots":
            du = (u[i] / period[i] + pu[i] / (2 * np.pi)) % 1.0 - 0.5
            dv = (v[i] / period[i] + pv[i] / (2 * np.pi)) % 1.0 - 0.5
            out[i] = 2.0 * np.exp(-(du**2 + dv**2) * period[i] ** 2 / (2 * 0.7**2)) - 1.0
        else:
            raise ValueError(f"unknown texture {kind!r}")
    return out


def background_rgb(bgs: Sequence[Background], canvas: int) -> np.ndarray:
    """The textured backgrounds: (N, canvas, canvas, 3) float64 RGB in [0, 1]."""
    base = np.stack([hsv_to_rgb(b.hue, b.sat, 1.0) for b in bgs])[:, None, None, :]
    val = np.array([b.val for b in bgs])[:, None, None]
    amp = np.array([b.amp for b in bgs])[:, None, None]
    value = np.clip(val + amp * texture_pattern(bgs, canvas), 0.0, 1.0)
    return value[..., None] * base


def render_batch(
    bgs: Sequence[Background], objects: Sequence[Sequence[ObjectFactors]], canvas: int
) -> tuple[np.ndarray, list[list[np.ndarray]]]:
    """Composite flat-coloured objects over textured backgrounds, objects in the given order.

    Args:
        bgs: N backgrounds.
        objects: for each image, its objects (drawn first to last; later ones occlude earlier ones).
        canvas: image side in pixels.

    Returns:
        ``(images, alphas)``: images is (N, canvas, canvas, 3) uint8 RGB; ``alphas[n][k]`` is the
        (canvas, canvas) float64 coverage of object k of image n before occlusion.
    """
    if len(bgs) != len(objects):
        raise ValueError(f"got {len(bgs)} backgrounds but {len(objects)} object lists")
    img = background_rgb(bgs, canvas)
    alphas = [[object_alpha(o, canvas) for o in objs] for objs in objects]
    for k in range(max((len(o) for o in objects), default=0)):
        a = np.zeros((len(bgs), canvas, canvas, 1))
        rgb = np.zeros((len(bgs), 1, 1, 3))
        for n, objs in enumerate(objects):
            if k < len(objs):
                a[n, :, :, 0] = alphas[n][k]
                rgb[n, 0, 0] = hsv_to_rgb(objs[k].hue, objs[k].sat, objs[k].val)
        img = img * (1.0 - a) + rgb * a
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8), alphas


def render(bg: Background, objects: Sequence[ObjectFactors], canvas: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """One image: (canvas, canvas, 3) uint8 and each object's coverage (see :func:`render_batch`)."""
    images, alphas = render_batch([bg], [objects], canvas)
    return images[0], alphas[0]
