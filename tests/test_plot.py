"""sim/plot.py: the training picture is a valid PNG; bad metrics are named."""

import struct
import zlib

import pytest

from spikeforge.sim.plot import PlotError, plot_training


def _metrics(n_epochs=3, n_layers=2):
    return {"sizes": [64, 16, 10], "dataset": "digits", "engine": "golden", "epochs": [
        {"epoch": e, "train_accuracy": 0.5 + 0.1 * e, "test_accuracy": 0.45 + 0.1 * e,
         "train_loss": 0.3 / e, "test_loss": 0.35 / e,
         "spike_density": [0.2 - 0.01 * l for l in range(n_layers)],
         "du_nonzero": [0.5 / e] * n_layers} for e in range(1, n_epochs + 1)]}


def _png_chunks(data):
    """Parse a PNG independently of matplotlib: signature, then CRC-checked chunks."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc
        chunks.append((kind, body))
        pos += 12 + length
    return chunks


def test_writes_a_valid_png(tmp_path):
    out = tmp_path / "train.png"
    assert plot_training(_metrics(), out) == str(out)
    chunks = _png_chunks(out.read_bytes())
    kinds = [k for k, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height = struct.unpack(">II", chunks[0][1][:8])
    assert (width, height) == (1000, 700)
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    assert len(set(raw)) > 10                            # not a blank image
    assert not list(tmp_path.glob("*.tmp-*"))            # no temporary file left
    # the epochs list alone works too, and one epoch, one layer
    plot_training(_metrics(1, 1)["epochs"], tmp_path / "one.png")
    assert _png_chunks((tmp_path / "one.png").read_bytes())[0][0] == b"IHDR"


def test_bad_metrics_are_named(tmp_path):
    m = _metrics()
    del m["epochs"][1]["du_nonzero"]
    with pytest.raises(PlotError, match="epoch record 1 lacks the key 'du_nonzero'"):
        plot_training(m, tmp_path / "x.png")
    with pytest.raises(PlotError, match="no epochs"):
        plot_training({"epochs": []}, tmp_path / "x.png")
    m = _metrics()
    m["epochs"][2]["spike_density"] = [0.1]
    with pytest.raises(PlotError, match="epoch record 2 has 1 spike densities and 2 du"):
        plot_training(m, tmp_path / "x.png")
    with pytest.raises(PlotError, match="does not exist"):
        plot_training(_metrics(), tmp_path / "no" / "x.png")
    with pytest.raises(PlotError, match="must be a .png file"):
        plot_training(_metrics(), tmp_path / "x.jpg")
    assert not list(tmp_path.iterdir())
