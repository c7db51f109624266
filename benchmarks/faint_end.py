"""Why the synthetic survey's faintest compact objects measure smaller in r than the real ones: a
diagnostic of the faint end, CPU only, a few minutes.

    python benchmarks/faint_end.py [--objects 10000] [--threads 2] [--seed 11]

Stars and galaxies are drawn with intrinsic r between 21.3 and 23.6 (each class's number counts
within it), rendered and measured as the survey does, and put through the faint+compact cuts
(faint_rule r_mag, as ``benchmarks/realism.py``). Prints:

- per bin of true r, the fraction that passes the cuts and the cuts that fail most;
- the coupling of a point source's measured r-band size with its measured model magnitude: a
  star fitted with a de Vaucouleurs template of radius r_e comes out brighter (the profile's
  extrapolated light), so binning on measured r sorts stars by their fitted r-band size;
- per bin of measured r, the median ``deVRad`` in g, r and i and the fraction below 0.05" of
  objects that pass the cuts, once with the survey's true magnitudes (which stop at r = 22.5) and
  once reweighted to number counts continuing to 23.6; beside the released real objects
  (``../shared/margnet-release``) when present.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from sdssclr.samples.cuts import apply_cuts, dataset_cuts
from sdssclr.survey.photometry import SIZE_GRID_ARCSEC, TemplateBank
from sdssclr.survey.render import PSF
from sdssclr.survey.synthetic import generate_catalog

REPO = Path(__file__).resolve().parents[1]
R_RANGE = (21.3, 23.6)
#: The survey's intrinsic magnitudes stop here (:func:`sdssclr.survey.synthetic.draw_sources`).
SURVEY_R_MAX = 22.5


def weighted_median(x, w):
    order = np.argsort(x)
    cum = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cum, cum[-1] / 2)])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--release", default=str(REPO.parent / "shared" / "margnet-release"))
    args = ap.parse_args(argv)
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    t0 = time.perf_counter()
    cat, truth, _ = generate_catalog(args.objects, 40, (320, 320), args.seed, class_fractions=(0.5, 0.5, 0.0),
                                     threads=args.threads, r_range=R_RANGE)
    print(f"{len(cat)} stars and galaxies, intrinsic r {R_RANGE[0]}-{R_RANGE[1]}, {time.perf_counter() - t0:.0f} s")
    cat["r_true"] = 22.5 - 2.5 * np.log10(truth["flux_r"].to_numpy())  # with extinction, as measured r is
    r0 = cat["r_true"].to_numpy() - cat["extinction_r"].to_numpy()  # intrinsic, as drawn
    cuts = dataset_cuts("faint_compact", dict(cfg["cuts"], faint_rule="r_mag"))
    ok = np.asarray(apply_cuts(cat, cuts))

    print("\n## Who passes the faint+compact cuts, by true r\n")
    print("| class | true r | objects | pass | most failed cuts |\n|---|---|---|---|---|")
    for cls in ("STAR", "GALAXY"):
        for lo in np.arange(21.5, 23.6, 0.5):
            true_r = cat["r_true"].to_numpy()
            sel = (cat["class"] == cls).to_numpy() & (true_r >= lo) & (true_r < lo + 0.5)
            part = cat[sel]
            fails = sorted(((1 - np.mean(apply_cuts(part, [c])), c.name) for c in cuts), reverse=True)[:4]
            print(f"| {cls} | {lo:.1f}-{lo + .5:.1f} | {len(part)} | {ok[sel].mean():.2f} | "
                  + ", ".join(f"{n} {f:.2f}" for f, n in fails if f > 0.02) + " |")

    print("\n## A point source's r-band size against its model magnitude\n")
    bank = TemplateBank(PSF.for_seeing(1.15, "r"))
    psf = bank.templates[0][bank.sl, bank.sl]
    print("Flux of a star fitted with a PSF-convolved de Vaucouleurs template (1.15\" seeing), over its true flux:")
    cells = []
    for k, r_e in enumerate(SIZE_GRID_ARCSEC):
        if 0.05 < r_e < 1.0:
            t = bank.templates[1 + k][bank.sl, bank.sl]
            cells.append(f"{r_e:.2f}\": {-2.5 * np.log10(np.sum(t * psf) / np.sum(t * t)):+.2f} mag")
    print(", ".join(cells))
    stars = cat[(cat["class"] == "STAR") & cat["r_true"].between(21.8, 22.4)]
    bins = pd.cut(stars["deVRad_r"], [0, 0.05, 0.15, 0.3, 0.6, 2, 10])
    table = stars.assign(model_minus_true=stars["r"] - stars["r_true"],
                         psf_minus_true=stars["psfMag_r"] - stars["r_true"])
    print("\nStars of true r 21.8-22.4, median measured minus true magnitude by their measured deVRad_r:\n")
    print("| deVRad_r (\") | stars | model r | psfMag_r |\n|---|---|---|---|")
    for interval, g in table.groupby(bins, observed=True):
        model, psf_mag = g["model_minus_true"].median(), g["psf_minus_true"].median()
        print(f"| {interval} | {len(g)} | {model:+.3f} | {psf_mag:+.3f} |")

    print("\n## deVRad of objects that pass the cuts, by measured r: median (\") and fraction below 0.05\"\n")
    release = Path(args.release) / "faint_sg_features.parquet"
    real = pd.read_parquet(release) if release.exists() else None
    if real is not None:
        real = real.assign(r=real["dered_r"] + real["extinction_r"])
    weights = {"survey (true r < 22.5)": (r0 < SURVEY_R_MAX).astype(float),
               "counts continuing to 23.6": np.ones(len(cat))}
    print("| class | measured r | " + " | ".join(weights) + (" | real |" if real is not None else " |"))
    print("|---|---|" + "---|" * (len(weights) + (real is not None)))
    for cls in ("STAR", "GALAXY"):
        for lo in (22.0, 22.5):
            sel = ok & (cat["class"] == cls).to_numpy() & cat["r"].between(lo, lo + 0.5).to_numpy()
            cells = []
            for w in weights.values():
                ws = w[sel]
                cells.append(" ".join(f"{b} {weighted_median(cat[f'deVRad_{b}'].to_numpy()[sel], ws):.3f} "
                                      f"({np.sum(ws * (cat[f'deVRad_{b}'].to_numpy()[sel] < 0.05)) / ws.sum():.2f})"
                                      for b in "gri") if ws.sum() else "none")
            if real is not None:
                p = real[(real["class"] == cls) & real["r"].between(lo, lo + 0.5)]
                cells.append(" ".join(f"{b} {p[f'deVRad_{b}'].median():.3f} ({(p[f'deVRad_{b}'] < 0.05).mean():.2f})"
                                      for b in "gri"))
            print(f"| {cls} | {lo:.1f}-{lo + 0.5:.1f} | " + " | ".join(cells) + " |")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
