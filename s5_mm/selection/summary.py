"""Selection summary: per-cluster quota / filled, entropy histograms of the
selected and rejected images, as JSON and a PNG plot (matplotlib, Agg)."""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Optional

import numpy as np


def build_summary(result: dict, entropy: np.ndarray, status: np.ndarray,
                  budget: int, bins: int = 30,
                  extra: Optional[dict] = None) -> dict:
    """JSON-ready summary of :func:`select_diverse`'s ``result``."""
    n = len(entropy)
    sel = np.zeros(n, dtype=bool)
    sel[result['selected']] = True
    ok = np.isfinite(entropy)
    rej = ok & ~sel
    edges = np.linspace(np.nanmin(entropy[ok]), np.nanmax(entropy[ok]),
                        bins + 1) if ok.any() else np.linspace(0, 1, bins + 1)
    if edges[0] == edges[-1]:
        edges = np.linspace(edges[0] - 0.5, edges[0] + 0.5, bins + 1)
    per = []
    for m in range(len(result['quota'])):
        in_m = sel & (result['cluster'] == m)
        per.append(dict(
            cluster=m, labelled=int(result['count'][m]),
            quota=int(result['quota'][m]),
            candidates=int(result['candidates'][m]),
            filled=int(result['filled'][m]),
            shortfall=int(result['shortfall'][m]),
            received=int(result['received'][m]),
            mean_entropy_selected=float(entropy[in_m].mean())
            if in_m.any() else None))
    out = dict(
        budget=int(budget), selected=int(sel.sum()), pool=int(n),
        scored=int(ok.sum()), unreadable=int((status == 1).sum()),
        no_valid_pixels=int((status == 2).sum()),
        shortfall=int(result['shortfall'].sum()),
        received=int(result['received'].sum()),
        ood_floor=result.get('ood_floor'),
        below_ood_floor=int(result.get('below_floor', 0)),
        seconds={k: float(v) for k, v in result['seconds'].items()},
        entropy=dict(
            selected=_stats(entropy[sel]), rejected=_stats(entropy[rej])),
        histogram=dict(
            edges=[float(e) for e in edges],
            selected=np.histogram(entropy[sel], edges)[0].tolist(),
            rejected=np.histogram(entropy[rej], edges)[0].tolist()),
        clusters=per)
    if extra:
        out.update(extra)
    return out


def _stats(x: np.ndarray) -> Optional[dict]:
    if not len(x):
        return None
    return dict(min=float(x.min()), median=float(np.median(x)),
                mean=float(x.mean()), max=float(x.max()))


def write_summary(summary: dict, out_dir: str) -> dict:
    """``summary.json`` and ``summary.png`` in ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    js = osp.join(out_dir, 'summary.json')
    with open(js + '.tmp', 'w') as f:
        json.dump(summary, f, indent=2)
    os.replace(js + '.tmp', js)
    png = osp.join(out_dir, 'summary.png')
    plot_summary(summary, png)
    return dict(json=js, png=png)


def plot_summary(summary: dict, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg', force=True)
    import matplotlib.pyplot as plt
    cl = summary['clusters']
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
    m = np.arange(len(cl))
    a.bar(m - 0.2, [c['quota'] for c in cl], 0.4, label='quota')
    a.bar(m + 0.2, [c['filled'] for c in cl], 0.4, label='filled')
    a.set_xlabel('cluster')
    a.set_ylabel('images')
    a.set_title(f"per-cluster quota / filled (shortfall "
                f"{summary['shortfall']})")
    a.legend()
    h = summary['histogram']
    e = np.asarray(h['edges'])
    w = np.diff(e)
    b.bar(e[:-1], h['rejected'], w, align='edge', alpha=0.6,
          label='rejected')
    b.bar(e[:-1], h['selected'], w, align='edge', alpha=0.6,
          label='selected')
    b.set_xlabel('mean foreground entropy (valid pixels)')
    b.set_ylabel('images')
    b.set_title(f"selected {summary['selected']} of {summary['scored']} "
                'scored')
    b.legend()
    fig.tight_layout()
    fig.savefig(path + '.tmp.png', dpi=100)
    plt.close(fig)
    os.replace(path + '.tmp.png', path)
