"""Accuracy on held-out synthetic scenes: synth -> detect -> evaluate, per preset and method.

For each preset and each held-out seed in ``benchmarks/heldout_seeds.json`` (seeds nobody tuned on)
this script renders a georeferenced scene on the default border with ``bordewatch.synth.make_scene``,
runs the full pipeline (``run_detect``, in-process, one worker) and scores the run with
``evaluate_run`` (new objects; 5 m line buffer; 5 m point tolerance). Lines are pooled by length
over the seeds and points by count before precision, recall and F1 are computed, so a seed with
no truth of a class does not count as a perfect score.

Usage::

    python benchmarks/accuracy.py [--presets demo hard nothing_new hoeryong]
        [--methods classical model hybrid] [--km-length 3] [--out benchmarks/ACCURACY.md]

Writes a Markdown table (and a JSON file beside it). Not a test: nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CLASSES = ("fence", "patrol_lane", "watchtower")
# where each preset's scene sits on the default line (the synth defaults), and its GSD
STRETCH = {"demo": 815.0, "hard": 815.0, "nothing_new": 815.0, "hoeryong": 816.0}


def run_one(
    preset: str, seed: int, method: str, km: tuple[float, float], work: Path
) -> dict[str, Any]:
    """Render one scene (cached per preset/seed), detect, evaluate; return the evaluation dict."""
    from bordewatch.synth import make_scene

    scene = work / f"{preset}-{seed}"
    if not (scene / "truth.geojson").exists():
        make_scene(scene, km_range=km, rng=seed, preset=preset, overwrite=True)
    return detect_and_score(scene, work / f"{preset}-{seed}-{method}", km, method)


def detect_and_score(
    scene: Path, run: Path, km: tuple[float, float], method: str
) -> dict[str, Any]:
    """Detect on a scene folder (``before.tif``, ``after.tif``) into ``run`` with one worker
    and score its new objects against ``truth.geojson``; the evaluation dict with the run's
    ``seconds``."""
    from bordewatch.evaluate import evaluate_run
    from bordewatch.pipeline import DetectRequest, run_detect

    t0 = time.perf_counter()
    run_detect(
        DetectRequest(
            before=(scene / "before.tif",),
            after=(scene / "after.tif",),
            out_dir=run,
            km_range=km,
            method=method,  # type: ignore[arg-type]
            workers=1,
            overwrite=True,
            progress=False,
        )
    )
    seconds = time.perf_counter() - t0
    result = evaluate_run(run, scene / "truth.geojson", status="new").to_dict()
    result["seconds"] = seconds
    return result


def pool(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Pool line lengths and point counts over seeds into precision / recall / F1 per class."""
    pooled: dict[str, dict[str, float]] = {}
    for cls in CLASSES:
        scores = [c for r in results for c in r["classes"] if c["cls"] == cls]
        if not scores:
            continue
        if scores[0]["kind"] == "line":
            tp_p = sum(c["pred_near_m"] for c in scores)
            n_p = sum(c["pred_m"] for c in scores)
            tp_t = sum(c["truth_near_m"] for c in scores)
            n_t = sum(c["truth_m"] for c in scores)
        else:
            tp_p = tp_t = sum(c["n_matched"] for c in scores)
            n_p = sum(c["n_pred"] for c in scores)
            n_t = sum(c["n_truth"] for c in scores)
        p = tp_p / n_p if n_p else float("nan")
        r = tp_t / n_t if n_t else float("nan")
        f1 = (
            2 * p * r / (p + r)
            if n_p and n_t and (p + r) > 0
            else (0.0 if n_p or n_t else float("nan"))
        )
        pooled[cls] = {"precision": p, "recall": r, "f1": f1, "pred": n_p, "truth": n_t}
    return pooled


def _fmt(x: float) -> str:
    return "–" if x != x else f"{x:.2f}"


def table(
    rows: list[tuple[str, str, list[int], float, dict[str, Any], list[dict[str, Any]]]],
) -> str:
    lines = [
        "| preset | method | held-out seeds | km | class | precision | recall | F1 | predicted | truth |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for preset, method, seeds, km, pooled, _ in rows:
        for cls, s in pooled.items():
            unit = "m" if cls != "watchtower" else ""
            lines.append(
                f"| {preset} | {method} | {', '.join(map(str, seeds))} | {km:g} | {cls} | "
                f"{_fmt(s['precision'])} | {_fmt(s['recall'])} | {_fmt(s['f1'])} | "
                f"{s['pred']:,.0f}{unit} | {s['truth']:,.0f}{unit} |"
            )
    return "\n".join(lines)


def per_seed_table(
    rows: list[tuple[str, str, list[int], float, dict[str, Any], list[dict[str, Any]]]],
) -> str:
    """F1 per seed and class: pooled figures hide rules that help some scenes and hurt others."""
    lines = [
        "| preset | method | seed | " + " | ".join(f"{c} F1" for c in CLASSES) + " | new fence m |",
        "|---|---|---|" + "---|" * len(CLASSES) + "---|",
    ]
    for preset, method, seeds, _, _, results in rows:
        for seed, result in zip(seeds, results):
            one = pool([result])
            f1 = " | ".join(_fmt(one[c]["f1"]) if c in one else "–" for c in CLASSES)
            fence = one.get("fence", {}).get("pred", float("nan"))
            lines.append(f"| {preset} | {method} | {seed} | {f1} | {fence:,.0f} |")
    return "\n".join(lines)


def score_all(args: argparse.Namespace, heldout: dict[str, list[int]], work: Path) -> list[Any]:
    """Run and score every preset and method named on the command line, scenes under ``work``."""
    rows: list[Any] = []
    for preset in args.presets:
        seeds = args.tuning_seeds or heldout[preset][: args.seeds_per_preset]
        length = 7.4 if preset == "hoeryong" else args.km_length
        km = (STRETCH[preset], STRETCH[preset] + length)
        for method in args.methods:
            results = [run_one(preset, s, method, km, work) for s in seeds]
            rows.append((preset, method, seeds, length * len(seeds), pool(results), results))
            print(
                f"{preset:12s} {method:9s} "
                + "  ".join(f"{c}: F1 {_fmt(v['f1'])}" for c, v in rows[-1][4].items()),
                flush=True,
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["demo", "hard", "nothing_new", "hoeryong"])
    parser.add_argument("--methods", nargs="+", default=["classical"])
    parser.add_argument("--km-length", type=float, default=3.0)
    parser.add_argument("--seeds-per-preset", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=HERE / "ACCURACY.md")
    parser.add_argument(
        "--tuning-seeds",
        nargs="+",
        type=int,
        default=None,
        help="score these seeds (0-999, for tuning) instead of the held-out ones; "
        "the table then says so and must not be reported as held-out accuracy",
    )
    args = parser.parse_args()
    if args.tuning_seeds and any(not 0 <= s <= 999 for s in args.tuning_seeds):
        parser.error("--tuning-seeds must lie in 0-999; the held-out seeds are never tuned on")
    heldout = json.loads((HERE / "heldout_seeds.json").read_text())
    if args.workdir is not None:
        rows = score_all(args, heldout, args.workdir)
    else:
        # the scenes and runs take about 0.4 GB per preset: never leave them behind
        with tempfile.TemporaryDirectory(prefix="bordewatch-accuracy-") as tmp:
            rows = score_all(args, heldout, Path(tmp))
    extra = []
    for preset, method, _seeds, km_total, _, results in rows:
        fence = sum(r["fence_m_total_pred"] for r in results)
        towers = sum(r["towers_total_pred"] for r in results)
        fence_t = sum(r["fence_m_total_truth"] for r in results)
        towers_t = sum(r["towers_total_truth"] for r in results)
        secs = sum(r["seconds"] for r in results)
        extra.append(
            f"| {preset} | {method} | {fence / km_total:,.1f} | {fence_t / km_total:,.1f} | "
            f"{towers / km_total:.2f} | {towers_t / km_total:.2f} | {secs:,.0f} |"
        )
    text = "\n".join(
        [
            "# Accuracy on "
            + ("TUNING seeds (not held-out)" if args.tuning_seeds else "held-out synthetic scenes"),
            "",
            f"Command: `{shlex.join([sys.executable.rsplit('/', 1)[-1], *sys.argv])}` on "
            f"{platform.machine()}, Python {platform.python_version()}. Scenes: "
            "`bordewatch.synth.make_scene` on the default line (demo/nothing_new/hoeryong at 1 m, "
            "hard at 0.5 m); seeds from `benchmarks/heldout_seeds.json`, never used for tuning. "
            "Scored: `new` objects only, 5 m line buffer, 5 m point tolerance; lines pooled by "
            "length and points by count over the seeds.",
            "",
            table(rows),
            "",
            "Per seed:",
            "",
            per_seed_table(rows),
            "",
            "Per km of border (new objects):",
            "",
            "| preset | method | new fence m/km (pred) | (truth) | new towers/km (pred) | (truth) | run s |",
            "|---|---|---|---|---|---|---|",
            *extra,
            "",
        ]
    )
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(
        json.dumps(
            [{"preset": r[0], "method": r[1], "seeds": r[2], "pooled": r[4]} for r in rows],
            indent=1,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
