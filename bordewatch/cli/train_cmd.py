"""``bordewatch train``: train the learned change detector on synthetic scenes (``make train``)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

__all__ = ["command"]

log = logging.getLogger("bordewatch")


@click.command("train")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the weights (bordewatch_siam.pt) and the training log (.json).",
)
@click.option("--epochs", default=12, show_default=True, type=click.IntRange(1))
@click.option(
    "--steps", default=150, show_default=True, type=click.IntRange(1), help="Steps per epoch."
)
@click.option(
    "--scenes", default=12, show_default=True, type=click.IntRange(1), help="New scenes per epoch."
)
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Seed of weights, data order, crops."
)
@click.option(
    "--minutes",
    default=None,
    type=click.FloatRange(min=0, min_open=True),
    help="Stop after the epoch that passes this wall time (the best epoch so far is kept).",
)
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option(
    "--threads", default=1, show_default=True, type=click.IntRange(1), help="torch CPU threads."
)
def command(
    out_dir: Path,
    epochs: int,
    steps: int,
    scenes: int,
    seed: int,
    minutes: float | None,
    device: str,
    threads: int,
) -> None:
    """Train the Siamese change network on synthetic scenes; keep the best validation epoch.

    Training seeds 0-4999, validation seeds 8000-8019 (held-out evaluation seeds are >= 9000).
    Deterministic on CPU for a given --seed and --threads (unless --minutes cuts it short).

    \b
    $ bordewatch train --out models/ --epochs 12 --seed 0
    """
    from bordewatch.detect.model import DEFAULT_MODEL_PATH
    from bordewatch.train import TrainConfig, train

    cfg = TrainConfig(
        epochs=epochs,
        steps_per_epoch=steps,
        scenes_per_epoch=scenes,
        seed=seed,
        minutes=minutes,
        device=device,
        threads=threads,
    )
    report = train(out_dir / DEFAULT_MODEL_PATH.name, cfg)
    best = report.history[report.best_epoch] if report.history else {}
    click.echo(
        f"wrote {report.path} (sha256 {report.sha256}); {report.epochs_run} epochs in "
        f"{report.seconds:.0f} s, best epoch {report.best_epoch}: "
        + ", ".join(f"{k}={v:.3f}" for k, v in best.items() if k.startswith("f1tol1_"))
    )
