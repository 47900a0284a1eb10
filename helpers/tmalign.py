"""TM-align in NumPy: the TM-score of two protein structures when no residue correspondence is given.

Follows the TM-align algorithm (Zhang & Skolnick, Nucleic Acids Research 33:2302, 2005; the C++ of version
20210224): five initial alignments — gapless threading, secondary structure, superposed local fragments, secondary
structure plus the best superposition so far, gapless threading of the longest unbroken fragment — each refined by
dynamic programming on the TM-score matrix alternating with a superposition search that maximises the TM-score; the
best alignment is finally scored normalised by either chain. Pure NumPy, so it runs wherever the notebooks do (TM-align's
Python bindings, tmtools, have no wheel for Colab's Python 3.13). tests/test_tmalign.py holds it against TM-align.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Params:
    """The TM-score scale d0, the distance cut-offs of the search and the normalising length."""

    norm: int
    d0: float
    d0_search: float
    score_d8: float | None  # during the search, pairs farther apart than this are not scored

    @classmethod
    def search(cls, length: int) -> "Params":
        """TM-align's search parameters for the shorter chain's `length` (d0 raised by 0.8 Å)."""
        d0 = (0.168 if length <= 19 else 1.24 * (length - 15) ** (1 / 3) - 1.8) + 0.8
        return cls(length, d0, min(max(d0, 4.5), 8.0), 1.5 * length**0.3 + 3.5)

    @classmethod
    def final(cls, length: int) -> "Params":
        """The TM-score's own d0 for a chain of `length` residues."""
        d0 = max(0.5, 1.24 * (length - 15) ** (1 / 3) - 1.8) if length > 21 else 0.5
        return cls(length, d0, min(max(d0, 4.5), 8.0), None)


@dataclass
class Alignment:
    """A structural alignment: TM-scores normalised by each chain, the aligned index pairs, and the superposition
    (rotation, translation) that moves the second chain onto the first."""

    tm_score_1: float
    tm_score_2: float
    pairs: tuple[np.ndarray, np.ndarray]
    rotation: np.ndarray
    translation: np.ndarray


def _kabsch(fixed: np.ndarray, mobile: np.ndarray):
    """Least-squares rotation r and translation t with mobile @ r.T + t ≈ fixed."""
    n = len(fixed)
    fc, mc = fixed.sum(axis=0) / n, mobile.sum(axis=0) / n
    u, _, vt = np.linalg.svd((mobile - mc).T @ (fixed - fc))
    r = vt.T @ u.T
    if np.linalg.det(r) < 0:  # a reflection: turn the least certain axis round
        vt[2] *= -1
        r = vt.T @ u.T
    return r, fc - mc @ r.T


def kabsch_many(fixed: np.ndarray, mobile: np.ndarray, masks: np.ndarray):
    """`_kabsch` for B subsets at once (masks: B × n booleans); returns r (B, 3, 3) and t (B, 3)."""
    w = masks.astype(float)
    count = w.sum(axis=1)[:, None]
    fc, mc = (w @ fixed) / count, (w @ mobile) / count
    h = np.swapaxes(w[:, :, None] * mobile[None], 1, 2) @ fixed - count[:, :, None] * mc[:, :, None] * fc[:, None, :]
    u, _, vt = np.linalg.svd(h)
    r = np.swapaxes(vt, 1, 2) @ np.swapaxes(u, 1, 2)
    flip = np.linalg.det(r) < 0
    if flip.any():
        vt[flip, 2] *= -1
        r[flip] = np.swapaxes(vt[flip], 1, 2) @ np.swapaxes(u[flip], 1, 2)
    return r, fc - np.einsum("bij,bj->bi", r, mc)


def _closer_than(dist: np.ndarray, cut: float) -> np.ndarray:
    """Pairs closer than `cut` (rows of a B × n distance array), the cut relaxed in 0.5 Å steps for any row where
    fewer than three pairs qualify (three points fix a superposition)."""
    masks = dist < cut
    few = np.flatnonzero(masks.sum(axis=1) < 3)
    if len(few) and dist.shape[1] > 3:
        third = np.sort(dist[few], axis=1)[:, 2]
        masks[few] = dist[few] < (cut + 0.5 * (np.floor((third - cut) / 0.5) + 1))[:, None]
    return masks


def superpose_for_tm(xa: np.ndarray, ya: np.ndarray, p: Params, step: int = 1, cut_at_d8: bool = True):
    """The superposition of paired coordinates with the highest TM-score: seeded on every `step`-th fragment of
    n, n/2, n/4, n/8, n/16 and 4 pairs, each grown iteratively on the pairs within d0_search + 1 Å.
    Returns (TM-score, r, t) with ya @ r.T + t ≈ xa. All seeds advance together, as one batch."""
    n = len(xa)
    if n < 3:
        return 0.0, np.eye(3), np.zeros(3)
    shortest = min(4, n)
    lengths = []
    for k in range(5):
        if int(n / 2**k) <= shortest:
            break
        lengths.append(int(n / 2**k))
    lengths.append(shortest)
    index = np.arange(n)
    windows = [(start, frag) for frag in lengths for start in [*range(0, n - frag, step), n - frag]]
    masks = np.stack([(index >= start) & (index < start + frag) for start, frag in windows])
    limit = p.score_d8 if (cut_at_d8 and p.score_d8 is not None) else np.inf
    best = [-1.0, np.eye(3), np.zeros(3)]

    def score(masks):
        r, t = kabsch_many(xa, ya, masks)
        diff = ya[None] @ np.swapaxes(r, 1, 2) + (t[:, None, :] - xa[None])
        dist = np.sqrt((diff * diff).sum(axis=2))
        tm = np.where(dist <= limit, 1.0 / (1.0 + (dist / p.d0) ** 2), 0.0).sum(axis=1) / p.norm
        k = int(np.argmax(tm))
        if tm[k] > best[0]:
            best[:] = [float(tm[k]), r[k], t[k]]
        return dist

    masks = _closer_than(score(masks), p.d0_search - 1)
    for _ in range(20):
        if not len(masks):
            break
        grown = _closer_than(score(masks), p.d0_search + 1)
        masks = grown[~(grown == masks).all(axis=1)]  # seeds whose pair set still changes
    return best[0], best[1], best[2]


def _quick_score(x: np.ndarray, y: np.ndarray, i: np.ndarray, j: np.ndarray, p: Params) -> float:
    """A quick TM-like score of an alignment (unnormalised): superposed on all pairs, then twice on the closer ones."""
    xa, ya = x[i], y[j]
    r, t = _kabsch(xa, ya)
    d2 = ((xa - (ya @ r.T + t)) ** 2).sum(axis=1)
    best = (1.0 / (1.0 + d2 / p.d0**2)).sum()
    for extra in (0.0, 1.0):
        cut = p.d0_search**2 + extra  # squared distances; relaxed by 0.5 Å² until three pairs qualify
        keep = np.flatnonzero(d2 <= cut)
        while len(keep) < 3 and len(xa) > 3:
            cut += 0.5
            keep = np.flatnonzero(d2 <= cut)
        if len(keep) == len(xa):
            break
        r, t = _kabsch(xa[keep], ya[keep])
        d2 = ((xa - (ya @ r.T + t)) ** 2).sum(axis=1)
        best = max(best, (1.0 / (1.0 + d2 / p.d0**2)).sum())
    return best


def _tm_matrix(x: np.ndarray, y: np.ndarray, r: np.ndarray, t: np.ndarray, d0: float) -> np.ndarray:
    """1 / (1 + d²/d0²) for every residue of x against every residue of y moved by (r, t)."""
    moved = y @ r.T + t
    d2 = (x * x).sum(axis=1)[:, None] + (moved * moved).sum(axis=1)[None, :] - 2.0 * (x @ moved.T)
    return 1.0 / (1.0 + np.maximum(d2, 0.0) / d0**2)


_DIAGONALS: dict = {}


def _diagonals(n: int, m: int) -> list:
    """Flat indices, per anti-diagonal of the (n+1) × (m+1) table, of its inner cells and their three neighbours."""
    if (n, m) not in _DIAGONALS:
        width, out = m + 1, []
        for s in range(2, n + m + 1):
            i = np.arange(max(1, s - m), min(n, s - 1) + 1)
            cell = i * width + (s - i)
            out.append((cell, cell - width - 1, cell - width, cell - 1, (i - 1) * m + (s - i - 1)))
        _DIAGONALS[(n, m)] = out
    return _DIAGONALS[(n, m)]


def align(score: np.ndarray, gap_open: float) -> tuple[np.ndarray, np.ndarray]:
    """TM-align's dynamic programming: the alignment maximising the summed `score`, where a gap costs `gap_open`
    only where it leaves a matched cell (no extension cost, free end gaps); ties go to a match, then to a gap in the
    first chain. Returns the aligned index pairs."""
    n, m = score.shape
    val = np.zeros((n + 1, m + 1))
    path = np.zeros((n + 1, m + 1), dtype=bool)
    if gap_open == 0:  # every row is then a running maximum: vectorised along the row
        for i in range(1, n + 1):
            d, h = val[i - 1, :-1] + score[i - 1], val[i - 1, 1:]
            val[i, 1:] = np.maximum.accumulate(np.maximum(d, h))
            path[i, 1:] = (d >= h) & (d >= val[i, :-1])
    else:  # a cell needs its left neighbour's path: vectorised along anti-diagonals
        flat_val, flat_path, flat_score = val.ravel(), path.ravel(), score.ravel()
        for cell, diag, up, left, sc in _diagonals(n, m):
            d = flat_val[diag] + flat_score[sc]
            h = flat_val[up] + gap_open * flat_path[up]
            v = flat_val[left] + gap_open * flat_path[left]
            match = (d >= h) & (d >= v)
            flat_path[cell] = match
            flat_val[cell] = np.where(match, d, np.maximum(v, h))
    pairs, i, j = [], n, m
    while i > 0 and j > 0:
        if path[i, j]:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif val[i, j - 1] + gap_open * path[i, j - 1] >= val[i - 1, j] + gap_open * path[i - 1, j]:
            j -= 1
        else:
            i -= 1
    pairs = np.array(pairs[::-1], dtype=int).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def secondary_structure(ca: np.ndarray) -> np.ndarray:
    """TM-align's secondary structure from Cα distances within i−2 … i+2: H helix, E strand, T turn, C coil."""
    n = len(ca)
    sec = np.full(n, "C")
    if n < 5:
        return sec
    at = lambda k: ca[k : n - 4 + k]  # noqa: E731 — residue i − 2 + k for every inner residue i
    dist = lambda a, b: np.linalg.norm(at(a) - at(b), axis=1)  # noqa: E731
    d13, d14, d15, d24, d25, d35 = dist(0, 2), dist(0, 3), dist(0, 4), dist(1, 3), dist(1, 4), dist(2, 4)
    near = lambda d, target, tol: np.abs(d - target) < tol  # noqa: E731
    helix = (near(d15, 6.37, 2.1) & near(d14, 5.18, 2.1) & near(d25, 5.18, 2.1) & near(d13, 5.45, 2.1)
             & near(d24, 5.45, 2.1) & near(d35, 5.45, 2.1))
    strand = (near(d15, 13, 1.42) & near(d14, 10.4, 1.42) & near(d25, 10.4, 1.42) & near(d13, 6.1, 1.42)
              & near(d24, 6.1, 1.42) & near(d35, 6.1, 1.42))
    sec[2 : n - 2] = np.where(helix, "H", np.where(strand, "E", np.where(d15 < 8, "T", "C")))
    return sec


def _gapless(x: np.ndarray, y: np.ndarray, p: Params, part: np.ndarray | None = None, divisor: float = 2.0,
             floor: int = 5):
    """The best gapless threading of `part` of x (default: all of it) along y, by `_quick_score`."""
    part = np.arange(len(x)) if part is None else part
    least = max(int(min(len(part), len(y)) / divisor), floor)
    j = np.arange(len(y))
    best, pairs = -1.0, None
    for shift in range(least - len(y), len(part) - least + 1):
        inside = (j + shift >= 0) & (j + shift < len(part))
        candidate = (part[(j + shift)[inside]], j[inside])
        score = _quick_score(x, y, *candidate, p)
        if score >= best:
            best, pairs = score, candidate
    return pairs


def _longest_fragment(ca: np.ndarray, step: float = 4.25) -> np.ndarray:
    """Indices of the longest run of consecutive Cα atoms closer than `step` Å — an unbroken piece of chain — the
    cut relaxed by 10 % at a time until the run has min(L // 3, 4) residues."""
    gaps = np.linalg.norm(np.diff(ca, axis=0), axis=1)
    need, cut = min(len(ca) // 3, 4), step
    while True:
        longest, span, run, start = 0, (0, 0), 1, 0
        for i in range(1, len(ca)):
            if gaps[i - 1] < cut:
                run += 1
                if i == len(ca) - 1 and run > longest:
                    longest, span = run, (start, i)
            else:
                if run > longest:
                    longest, span = run, (start, i - 1)
                run, start = 1, i
        if longest >= need:
            return np.arange(span[0], span[1] + 1)
        cut *= 1.1


def _refine(x, y, r, t, p: Params, gaps=(-0.6, 0.0), iterations: int = 30):
    """Alternate alignment (dynamic programming on the TM-score matrix) and superposition; the best (TM, pairs)."""
    best = (-1.0, None)
    for gap in gaps:
        previous = None
        for _ in range(iterations):
            pairs = align(_tm_matrix(x, y, r, t, p.d0), gap)
            tm, r, t = superpose_for_tm(x[pairs[0]], y[pairs[1]], p, step=40)
            if tm > best[0]:
                best = (tm, pairs)
            if previous is not None and abs(previous - tm) < 1e-6:
                break
            previous = tm
    return best


def tm_align(x, y) -> Alignment:
    """Structurally align two Cα traces (n × 3 and m × 3 arrays, any residue numbering) and return the TM-scores
    normalised by each, as TM-align does."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n, m = len(x), len(y)
    if min(n, m) < 3:
        raise ValueError("TM-align needs at least 3 residues in each structure")
    p = Params.search(min(n, m))
    keep_going = 0.1 if p.norm <= 40 else 0.4  # refine an initial alignment only if it reaches this share of the best
    state = {"tm": -1.0, "pairs": None}

    def offer(tm, pairs):
        if tm > state["tm"]:
            state.update(tm=tm, pairs=pairs)

    def start_from(pairs, gaps=(-0.6, 0.0), iterations=30, threshold=0.0):
        tm, r, t = superpose_for_tm(x[pairs[0]], y[pairs[1]], p, step=40)
        offer(tm, pairs)
        if tm > state["tm"] * threshold:
            offer(*_refine(x, y, r, t, p, gaps, iterations))

    # 1. gapless threading of the whole chains
    start_from(_gapless(x, y, p))
    # 2. secondary structure alone
    sx, sy = secondary_structure(x), secondary_structure(y)
    same = (sx[:, None] == sy[None, :]).astype(float)
    start_from(align(same, -1.0), threshold=0.2)
    # 3. superposed local fragments: the alignment each implies, kept if its quick score is the best
    jump = lambda length: min(45 if length > 250 else 35 if length > 200 else 25 if length > 150 else 15,  # noqa: E731
                              length // 3)
    d01 = p.d0 + 1.5
    best5 = (0.0, None)
    for frag in (min(20, p.norm // 3), min(100, p.norm // 2)):
        for a in range(0, n - frag + 1, max(1, jump(n))):
            for b in range(0, m - frag + 1, max(1, jump(m))):
                r, t = _kabsch(x[a : a + frag], y[b : b + frag])
                pairs = align(_tm_matrix(x, y, r, t, d01), 0.0)
                score = _quick_score(x, y, *pairs, p)
                if score > best5[0]:
                    best5 = (score, pairs)
    if best5[1] is not None:
        start_from(best5[1], iterations=2, threshold=keep_going)
    # 4. secondary structure plus the best alignment's superposition
    r, t = _kabsch(x[state["pairs"][0]], y[state["pairs"][1]])
    start_from(align(_tm_matrix(x, y, r, t, d01) + 0.5 * same, -1.0), threshold=keep_going)
    # 5. gapless threading of the shorter of the two longest unbroken fragments
    fx, fy = _longest_fragment(x), _longest_fragment(y)
    use_x = len(fx) < len(fy) or (len(fx) == len(fy) and n <= m)
    part = fx if use_x else fy
    if len(part) == min(n, m):  # the whole chain: thread its middle 80 % instead (the whole was step 1)
        part = part[int(len(part) * 0.1) : int(len(part) * 0.89) + 1]
    if use_x:
        pairs = _gapless(x, y, p, part, 2.5, 3)
    else:
        j, i = _gapless(y, x, p, part, 2.5, 3)
        pairs = (i, j)
    start_from(pairs, gaps=(0.0,), iterations=2, threshold=keep_going)
    # final: the best superposition of the best alignment; pairs beyond score_d8 dropped; scored per chain
    i, j = state["pairs"]
    _, r, t = superpose_for_tm(x[i], y[j], p, step=1)
    close = np.linalg.norm(x[i] - (y[j] @ r.T + t), axis=1) <= p.score_d8
    i, j = i[close], j[close]
    tm_1, r, t = superpose_for_tm(x[i], y[j], Params.final(n), step=1, cut_at_d8=False)
    tm_2 = superpose_for_tm(x[i], y[j], Params.final(m), step=1, cut_at_d8=False)[0]
    return Alignment(tm_1, tm_2, (i, j), r, t)
