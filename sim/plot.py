"""Pictures of a training run: per-epoch metrics of ``spikeforge train --json`` as a PNG.

:func:`plot_training` draws, from the report's ``epochs`` records (keys
``epoch``, ``train_accuracy``, ``test_accuracy``, ``train_loss``, ``test_loss``,
``spike_density`` and ``du_nonzero``, one value per layer for the last two; see
:mod:`spikeforge.sim.train`), four panels: accuracy, loss, spike density per
layer (spikes per neuron and time step) and the fraction of non-zero ``du`` per
layer (the sparsity the backward and weight-gradient engines exploit). It uses
matplotlib's Agg backend (no display) and writes the file in one step (a
temporary file renamed over the target). Time: well under a second.
"""

from __future__ import annotations


from spikeforge.sim.files import atomic_output, output_folder

__all__ = ["PlotError", "plot_training", "REQUIRED_KEYS"]

#: keys every epoch record must have
REQUIRED_KEYS = ("epoch", "train_accuracy", "test_accuracy", "train_loss", "test_loss",
                 "spike_density", "du_nonzero")


class PlotError(ValueError):
    """The metrics cannot be drawn (a missing key, no epochs, a bad path); one sentence."""


def _epochs(metrics):
    if isinstance(metrics, dict):
        if "epochs" not in metrics:
            raise PlotError("the metrics have no 'epochs' list (write them with spikeforge train "
                            "--json)")
        epochs = metrics["epochs"]
    else:
        epochs = metrics
    if not isinstance(epochs, (list, tuple)) or not epochs:
        raise PlotError("the metrics have no epochs to draw; at least one epoch record is needed")
    n_layers = None
    for k, rec in enumerate(epochs):
        if not isinstance(rec, dict):
            raise PlotError(f"epoch record {k} is a {type(rec).__name__}, not a JSON object")
        missing = [key for key in REQUIRED_KEYS if key not in rec]
        if missing:
            raise PlotError(f"epoch record {k} lacks the key {missing[0]!r}; each record needs "
                            f"{', '.join(REQUIRED_KEYS)}")
        for key in ("spike_density", "du_nonzero"):
            if not isinstance(rec[key], (list, tuple)) or not rec[key]:
                raise PlotError(f"epoch record {k}: {key!r} must be a list with one value per "
                                "layer")
        n = len(rec["spike_density"])
        if len(rec["du_nonzero"]) != n or (n_layers is not None and n != n_layers):
            raise PlotError(f"epoch record {k} has {n} spike densities and "
                            f"{len(rec['du_nonzero'])} du fractions; every record needs one "
                            "value per layer, the same layers throughout")
        n_layers = n
    return list(epochs), n_layers


def plot_training(metrics, path, *, title: str | None = None) -> str:
    """Draw ``metrics`` (the ``--json`` report, or its ``epochs`` list) to the PNG
    ``path``; returns ``path``. :class:`PlotError` names what is missing."""
    epochs, n_layers = _epochs(metrics)
    path = output_folder(path, PlotError)
    if not path.lower().endswith(".png"):
        raise PlotError(f"the picture {path!r} must be a .png file")
    from matplotlib.figure import Figure              # no pyplot: the Agg canvas, no display
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    x = [rec["epoch"] for rec in epochs]
    fig = Figure(figsize=(10, 7), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2)
    ax = axes[0][0]
    ax.plot(x, [100 * r["train_accuracy"] for r in epochs], "o-", label="train")
    ax.plot(x, [100 * r["test_accuracy"] for r in epochs], "s-", label="test")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("accuracy")
    ax.legend()
    ax = axes[0][1]
    ax.plot(x, [r["train_loss"] for r in epochs], "o-", label="train (during the epoch)")
    ax.plot(x, [r["test_loss"] for r in epochs], "s-", label="test")
    ax.set_ylabel("loss")
    ax.set_title("loss")
    ax.legend()
    for ax, key, label in ((axes[1][0], "spike_density", "spikes per neuron and step"),
                           (axes[1][1], "du_nonzero", "fraction of du != 0")):
        for l in range(n_layers):
            ax.plot(x, [r[key][l] for r in epochs], "o-", label=f"layer {l}")
        ax.set_ylabel(label)
        top = max(max(r[key]) for r in epochs)
        ax.set_ylim(0, 1.15 * top if top > 0 else 1.0)
        ax.set_title("spike density" if key == "spike_density" else "du sparsity")
        ax.legend()
    for row in axes:
        for ax in row:
            ax.set_xlabel("epoch")
            ax.grid(True, alpha=0.3)
    if title is None and isinstance(metrics, dict):
        sizes = metrics.get("sizes")
        if sizes:
            title = (f"{'-'.join(map(str, sizes))} on {metrics.get('dataset', '?')}, "
                     f"engine {metrics.get('engine', '?')}")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_output(path, PlotError, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return path
