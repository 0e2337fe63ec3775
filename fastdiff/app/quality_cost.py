"""Quality against cost: class accuracy and KID of every recorded configuration against its NFE and
its seconds per image, from the checkpoints' eval.json and, when the app folder has it, the quality
sweep's table (assets/quality.md, written by `fastdiff eval sweep`), with the configurations of the
Compare table marked. Nothing is measured here: the numbers are the recorded ones."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from ..eval.evaluate import SWEEP
from ..eval.records import configuration_label, measured_at

Configuration = tuple[str, int, float, int]  # (sampler, steps, guidance, stages), as eval.json records one


@dataclass(frozen=True)
class Measured:
    checkpoint: str
    configuration: Configuration
    nfe: int  # model evaluations of all stages
    seconds_per_image: float
    class_accuracy: float  # 0..1
    kid: float


def from_record(checkpoint: str, record: dict) -> Measured | None:
    """An eval.json record as a point; None when it is not evaluate.py's format."""
    try:
        return Measured(
            checkpoint,
            measured_at(record),
            sum(int(v) for v in record["nfe"].values()),
            1 / float(record["images_per_s"]),
            float(record["class_accuracy"]),
            float(record["kid"]),
        )
    except (TypeError, KeyError, ValueError, ZeroDivisionError, AttributeError):
        return None


LABEL = re.compile(r"^(?P<label>.+?) \(n=\d+\)$")  # "DDIM-50 (n=1000)"


def table_rows(text: str) -> list[dict[str, str]]:
    """The rows of a markdown table as {header: cell}, read by the header line's names (so a column added
    or moved changes nothing here)."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    if len(lines) < 2:
        return []
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    return [dict(zip(cells[0], row)) for row in cells[2:]]


def from_sweep_table(text: str) -> list[Measured]:
    """The rows of quality.md whose label is one of the sweep's configurations."""
    known = {
        label: (name, (sampler, steps, guidance, stages)) for label, name, sampler, steps, guidance, stages, _ in SWEEP
    }
    points = []
    for row in table_rows(text):
        label = LABEL.match(row.get("configuration", ""))
        if not label or label["label"] not in known or not row.get("images/s"):
            continue
        name, configuration = known[label["label"]]
        nfe = sum(int(n) for n in row["NFE"].split("+"))
        accuracy, kid = float(row["class acc."].rstrip("%")) / 100, float(row["KID"].split("±")[0])
        points.append(Measured(name, configuration, nfe, 1 / float(row["images/s"]), accuracy, kid))
    return points


def recorded_points(records: dict[str, dict | None], sweep_table: Path) -> list[Measured]:
    """The sweep table's points, and each checkpoint's eval.json where the table lacks its configuration."""
    points = from_sweep_table(sweep_table.read_text()) if sweep_table.is_file() else []
    seen = {(p.checkpoint, p.configuration) for p in points}
    for name, record in records.items():
        point = from_record(name, record) if record else None
        if point and (point.checkpoint, point.configuration) not in seen:
            points.append(point)
    return points


def quality_cost_figure(points: list[Measured], marked: list[tuple[str, Configuration]]) -> Figure:
    """Class accuracy and KID against NFE and seconds per image; `marked` (checkpoint, configuration)
    pairs ringed in red, with a note for those never measured."""
    figure = Figure(figsize=(9, 5), layout="constrained")
    if not points:
        figure.suptitle("no recorded evaluations: run `fastdiff eval` on a checkpoint")
        return figure
    marked_set = set(marked)
    for row, (metric, title) in enumerate(
        (("class_accuracy", "class accuracy (higher is better)"), ("kid", "KID (lower is better)"))
    ):
        for column, (cost, xlabel) in enumerate(
            (("nfe", "NFE (model evaluations)"), ("seconds_per_image", "seconds per image"))
        ):
            axis = figure.add_subplot(2, 2, 2 * row + column + 1)
            xs, ys = [getattr(p, cost) for p in points], [getattr(p, metric) for p in points]
            axis.scatter(xs, ys, s=18, color="tab:blue")
            ringed = [p for p in points if (p.checkpoint, p.configuration) in marked_set]
            axis.scatter(
                [getattr(p, cost) for p in ringed],
                [getattr(p, metric) for p in ringed],
                s=90,
                facecolors="none",
                edgecolors="tab:red",
            )
            if column == 0:
                for p in points:
                    axis.annotate(configuration_label(*p.configuration), (p.nfe, getattr(p, metric)), fontsize=6)
            axis.set(xscale="log", xlabel=xlabel, title=title if column == 0 else "")
    measured = {(p.checkpoint, p.configuration) for p in points}
    missing = [configuration_label(*c) for name, c in dict.fromkeys(marked) if (name, c) not in measured]
    note = f" (not measured: {', '.join(missing)})" if missing else ""
    title = f"recorded quality; red rings: the Compare table's configurations{note}"
    figure.suptitle(textwrap.fill(title, 110), fontsize=9)  # wrapped: one long line runs off the figure
    return figure
