"""How SDSS-like is the synthetic survey? Image statistics against the real field, feature
distributions and a tree's accuracy against the real faint objects, and whether the stamps add
photometry to the catalogue that was measured from them. CPU only, no deep training.

    python benchmarks/realism.py [--n-objects 30000] [--threads 2] [--workdir /tmp/realism] [--no-gain] [--groups]

Needs ../shared/sdss-frames (the real field 2583/2/136) and ../shared/margnet-release (real faint
objects' features) beside the checkout, or --real-frames / --release. Prints, with the target of
each check: sky noise per band (within 15% of the real field), star light beyond 2" and 3.2"
(within 30%), the per-class KS distances of the 24 features of the faint+compact pool against the
real objects (median <= 0.10, worst <= 0.25), a tree's 5-fold accuracy on synthetic and real faint
SG (within 1.5 points; the real reference drawn like the synthetic sample, with as many distinct
objects per class as the synthetic pool holds, and on every released object beside it), and the
gain of a tree given stamp-measured magnitudes besides the 24
features, with its paired 95% interval, per experiment and task (at most 0.5 points, interval
covering zero), both over the 24 features alone and over the 24 plus the catalogue's own PSF
magnitudes (which separates what the pixels' PSF-minus-model difference adds, as it would in SDSS,
from a second, independent measurement, which real data cannot hold).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.ensemble import HistGradientBoostingClassifier

from sdssclr.bands import BANDS
from sdssclr.catalog import FEATURES, TASK_CLASSES, features, select_task
from sdssclr.config import deep_merge
from sdssclr.io import data_source, write_parquet_atomic
from sdssclr.results.realism import (ks_distances, light_beyond, like_sized, matched_to_r, seeing_of, sky_noise,
                                     stamp_magnitudes, star_field, tree_cv_accuracy)
from sdssclr.results.stats import paired_bootstrap
from sdssclr.samples.cuts import apply_cuts, dataset_cuts
from sdssclr.samples.pools import write_pool
from sdssclr.samples.splits import write_sample, write_split
from sdssclr.stamps.objects import load_objects
from sdssclr.stamps.shards import merge_index, run_shard, write_plan
from sdssclr.survey.fetch import LocalFrames
from sdssclr.survey.frames import field_paths, read_frame
from sdssclr.survey.synthetic import generate_survey

REPO = Path(__file__).resolve().parents[1]
REAL_FIELD = (301, 2583, 2, 136)


#: Feature groups of the --groups diagnostic.
FEATURE_GROUPS = {
    "deVRad (5 bands)": [f"deVRad_{b}" for b in BANDS],
    "deVRad_r": ["deVRad_r"],
    "dered magnitudes + colours": [f"dered_{b}" for b in BANDS] + ["u_g", "g_r", "r_i", "i_z"],
    "psffwhm (5 bands)": [f"psffwhm_{b}" for b in BANDS],
}


def real_frame(root: Path, band: str) -> np.ndarray:
    return read_frame(field_paths(root, *REAL_FIELD)[band], band).image


def section(title):
    print(f"\n## {title}\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-objects", type=int, default=30000)
    ap.add_argument("--per-field", type=int, default=40)
    ap.add_argument("--frame", type=int, nargs=2, default=[320, 320])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workdir", default="/tmp/realism")
    ap.add_argument("--real-frames", default=str(REPO.parent / "shared" / "sdss-frames"))
    ap.add_argument("--release", default=str(REPO.parent / "shared" / "margnet-release"))
    ap.add_argument("--like-draws", type=int, default=3,
                    help="draws of the like-sized real reference for the tree check (its spread is printed)")
    ap.add_argument("--no-gain", action="store_true", help="skip the stamp-magnitude gain table (no stamps cut)")
    ap.add_argument("--groups", action="store_true",
                    help="also a tree on each feature group alone and without it, and deVRad per class, band and r bin")
    args = ap.parse_args(argv)
    work = Path(args.workdir)
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())

    t0 = time.perf_counter()
    cat_path = work / "catalog.parquet"
    if not cat_path.exists():
        generate_survey(cat_path, work / "frames", n_objects=args.n_objects, objects_per_field=args.per_field,
                        frame_shape=tuple(args.frame), seed=args.seed, class_fractions=(0.3, 0.4, 0.3),
                        threads=args.threads)
    catalog = pd.read_parquet(cat_path)
    print(f"synthetic survey: {len(catalog)} objects, {time.perf_counter() - t0:.0f} s (cached after the first run)")

    real_root = Path(args.real_frames)
    section("Sky noise per pixel (nanomaggies): synthetic / real field 2583/2/136, target within 15%")
    frames = sorted((work / "frames").rglob("frame-r-*.fits.bz2"))[:12]
    print("| band | synthetic | real | ratio |\n|---|---|---|---|")
    for b in BANDS:
        syn = np.median([sky_noise(read_frame(Path(str(p).replace("frame-r-", f"frame-{b}-")), b).image)
                         for p in frames])
        real = sky_noise(real_frame(real_root, b))
        print(f"| {b} | {syn:.4f} | {real:.4f} | {syn / real:.2f} |")

    section("Star light beyond 2\" and 3.2\" (of that within 7.4\"), at the real field's seeing; target within 30%")
    print("| band | seeing (\") | real beyond 2\" | synthetic | ratio | real beyond 3.2\" | synthetic | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for b in BANDS:
        real = light_beyond(real_frame(real_root, b))
        s = seeing_of(real["concentration"], b)
        syn = light_beyond(star_field(s, b))
        print(f"| {b} | {s:.2f} | {real['beyond_2']:.4f} | {syn['beyond_2']:.4f} | {syn['beyond_2'] / real['beyond_2']:.2f} "
              f"| {real['beyond_3.2']:.4f} | {syn['beyond_3.2']:.4f} | {syn['beyond_3.2'] / real['beyond_3.2']:.2f} |")

    section("Faint SG objects: synthetic faint+compact pool (faint_rule r_mag) vs the released real ones")
    real = pd.read_parquet(Path(args.release) / "faint_sg_features.parquet")
    cuts = dict(cfg["cuts"], faint_rule="r_mag")
    pool = catalog[apply_cuts(catalog, dataset_cuts("faint_compact", cuts))]
    pool = select_task(pool, "SG")
    syn = pool.assign(**dict(zip(FEATURES, features(pool).T)))
    real = real.assign(r=real["dered_r"] + real["extinction_r"])
    lo, hi = max(syn["r"].min(), real["r"].min()), min(syn["r"].max(), real["r"].max())
    syn, real = syn[syn["r"].between(lo, hi)], real[real["r"].between(lo, hi)]
    matched = matched_to_r(syn, real)
    print(f"common r range {lo:.2f}-{hi:.2f}; synthetic pool {syn['class'].value_counts().to_dict()}, drawn to the "
          f"real r distribution: {len(matched)}; real {real['class'].value_counts().to_dict()}")
    ks = ks_distances(matched, real)
    print("\nKS distance per class and feature:\n")
    print("| feature | " + " | ".join(ks.index) + " |\n|---|" + "---|" * len(ks.index))
    for f in FEATURES:
        print(f"| {f} | " + " | ".join(f"{ks.loc[c, f]:.3f}" for c in ks.index) + " |")
    values = ks.to_numpy().ravel()
    worst = ks.stack().idxmax()
    print(f"\nmedian KS {np.median(values):.3f} (target <= 0.10), worst {values.max():.3f} ({worst[0]} {worst[1]}; "
          "target <= 0.25)")
    acc_syn = tree_cv_accuracy(matched)
    acc_real = tree_cv_accuracy(real)
    distinct = syn.groupby("class")["objID"].nunique().to_dict()
    like = [tree_cv_accuracy(like_sized(real, syn, seed=s))[0] for s in range(args.like_draws)]
    print(f"\ntree 5-fold accuracy on faint SG (target: within 1.5 points of the like-sized real reference):\n"
          f"- synthetic {100 * acc_syn[0]:.1f} +- {100 * acc_syn[1]:.1f} ({distinct} distinct objects, drawn to the "
          f"real r distribution)\n"
          f"- real, like-sized (the same number of distinct objects per class, drawn the same way; {args.like_draws} "
          f"draws): {100 * np.mean(like):.1f} (draws {', '.join(f'{100 * a:.1f}' for a in like)}); difference "
          f"{100 * (acc_syn[0] - np.mean(like)):+.1f} points\n"
          f"- real, every released object: {100 * acc_real[0]:.1f} +- {100 * acc_real[1]:.1f}; difference "
          f"{100 * (acc_syn[0] - acc_real[0]):+.1f} points (a larger synthetic catalogue closes the part of this that "
          "is sample size)")
    if args.groups:
        section("Where the tree's accuracy lives: each feature group alone and left out, synthetic vs real")
        print("| group | alone: synthetic | real | left out: synthetic | real |\n|---|---|---|---|---|")
        for name, cols in FEATURE_GROUPS.items():
            rest = [f for f in FEATURES if f not in cols]
            alone = [100 * tree_cv_accuracy(d, features=cols)[0] for d in (matched, real)]
            left = [100 * tree_cv_accuracy(d, features=rest)[0] for d in (matched, real)]
            print(f"| {name} | {alone[0]:.1f} | {alone[1]:.1f} | {left[0]:.1f} | {left[1]:.1f} |")
        print("\ndeVRad per class, band and r bin: median (\") / fraction below 0.05\", synthetic over real\n")
        print("| class | r | " + " | ".join(BANDS) + " |\n|---|---|" + "---|" * len(BANDS))
        for cls in ("STAR", "GALAXY"):
            for lo_r in (20, 21, 22):
                parts = [d[(d["class"] == cls) & d["r"].between(lo_r, lo_r + 1)] for d in (matched, real)]
                cells = [" / ".join(f"{p[f'deVRad_{b}'].median():.3f} ({(p[f'deVRad_{b}'] < 0.05).mean():.2f})"
                                    for p in parts) for b in BANDS]
                print(f"| {cls} | {lo_r}-{lo_r + 1} | " + " | ".join(cells) + " |")
        stars = catalog[(catalog["class"] == "STAR") & catalog["r"].between(22, 23)]
        print("\nbefore the cuts, every synthetic star at r 22-23: " + ", ".join(
            f"{b} {stars[f'deVRad_{b}'].median():.3f} ({(stars[f'deVRad_{b}'] < 0.05).mean():.2f})" for b in BANDS)
              + " (the compact cut averages deVRad / psffwhm over the bands)")

    if not args.no_gain:
        section("Does the stamp add photometry? A tree on the 24 features + stamp PSF magnitudes vs the 24 alone")
        gain_table(catalog, cfg, work, args)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


def gain_table(catalog, cfg, work: Path, args):
    data = work / "gain"
    data.mkdir(exist_ok=True)
    src = work / "catalog.parquet"
    per = {}
    for ds in ("compact", "faint_compact"):
        pool = write_pool(src, ds, cfg["cuts"], data / f"pool_{ds}.parquet")
        per[ds] = int(pool["class"].value_counts().reindex(["STAR", "GALAXY", "QSO"]).fillna(0).min() * 0.9)
    exps = cfg["experiments"]
    splits, samples = {}, {}
    for name in ("exp1", "exp2", "exp3"):
        e = exps[name]
        parent = e.get("train_from")
        if name == "exp3":  # test (and calibration) objects from the faint pool outside exp1's train/val
            fit = pd.read_parquet(splits["exp1"]).query("split != 'test'")["objID"]
            faint = pd.read_parquet(data / "pool_faint_compact.parquet")
            left = faint[~faint["objID"].isin(fit)]["class"].value_counts().reindex(["STAR", "GALAXY", "QSO"])
            most = left.fillna(0).min()
            e = deep_merge(e, {"test_per_class": int(most * 0.6), "calibration_per_class": max(1, int(most * 0.3))})
        ds = e.get("dataset", e.get("test_dataset"))
        samples[name], splits[name] = data / f"sample_{name}.parquet", data / f"{name}.parquet"
        write_sample(name, e, per.get(e.get("dataset")), cfg["split_seeds"][0], samples[name],
                     pool_path=data / f"pool_{ds}.parquet", parent_sample_path=samples.get(parent))
        write_split(name, e, cfg["split_seeds"][0], splits[name], sample_path=samples[name],
                    parent_path=splits.get(parent), calibration_fraction=cfg["conformal"]["calibration_fraction"])
    # one stamp set for the three samples (they share objects): every field decoded once
    stamps = data / "stamps"
    union = data / "objects.parquet"
    everything = pd.concat([pd.read_parquet(p) for p in samples.values()]).drop_duplicates("objID")
    write_parquet_atomic(everything.drop(columns="split"), union, {"source": data_source(samples["exp1"])})
    plan = stamps / "plan.parquet"
    write_plan([union], 1, plan)
    run_shard(plan, 0, LocalFrames(work / "frames"), stamps / "shard-0000.npy", stamps / "shard-0000.parquet",
              size=32, policy="drop", threads=args.threads)
    merge_index([stamps / "shard-0000.parquet"], [union], stamps / "index.parquet")
    # the catalogue's own PSF magnitudes, by objID: in SDSS as here, measured on the same pixels
    psf_cols = [f"psfMag_{b}" for b in BANDS]
    psf_mags = pd.read_parquet(src, columns=["objID", *psf_cols]).set_index("objID")[psf_cols]
    print("Stamp magnitudes are PSF-weighted: beside the 24 features (model magnitudes only) they also carry the\n"
          "PSF-minus-model difference that SDSS separates stars with, which real pixels hold too. The second gain\n"
          "asks the issue's question directly: do the stamps add anything to a catalogue that carries its PSF\n"
          "magnitudes (a second, independent measurement would)?\n")
    print("| Exp | Task | 24 | 24 + stamp | gain [95% paired CI] | 24 + psfMag | + stamp | gain [95% paired CI] | test objects |")
    print("|---|---|---|---|---|---|---|---|---|")
    for exp, fit_exp in (("exp1", "exp1"), ("exp2", "exp2"), ("exp3", "exp1")):
        for task in ("SG", "SGQ"):
            fit = load_objects(splits[fit_exp], data / "stamps" / "index.parquet", task=task, splits=["train", "val"])
            test = load_objects(splits[exp], data / "stamps" / "index.parquet", task=task, splits=["test"])
            correct = {}
            for psf, stamp in ((False, False), (False, True), (True, False), (True, True)):
                def design(o):
                    parts = [o.features]
                    if psf:
                        parts.append(psf_mags.loc[o.objid].to_numpy(np.float32))
                    if stamp:
                        parts.append(stamp_magnitudes(o.stamps, o.psf_fwhm_px))
                    return np.concatenate(parts, 1)
                tree = HistGradientBoostingClassifier(max_iter=500, early_stopping=True, random_state=0)
                tree.fit(design(fit), fit.labels)
                correct[psf, stamp] = tree.predict(design(test)) == test.labels
            cells = []
            for psf in (False, True):
                d, lo, hi = paired_bootstrap(correct[psf, True][None], correct[psf, False][None], resamples=2000,
                                             seed=0)
                cells += [f"{100 * correct[psf, False].mean():.1f}", f"{100 * correct[psf, True].mean():.1f}",
                          f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"]
            print(f"| {exp} | {task} | {' | '.join(cells)} | {len(test)} ({len(TASK_CLASSES[task])} classes) |")

if __name__ == "__main__":
    main()
