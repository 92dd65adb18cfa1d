"""Energy estimate of a run from its event counts (an estimate, not a measurement).

Every event the hardware performs is given an energy from one table of published
constants (:data:`DEFAULT_CONSTANTS`, each with its source; ``docs/energy.md``
lists them), technology-scaled to the target node, and the sum over a run gives
energy per sample, per phase and per core, TFLOPS/W (TSOPS/W for the integer
inference build) and the share of each event kind.

Pipeline (pure functions over plain dicts and frozen dataclasses):

* :func:`load_constants` -- the default table, or a user's JSON file that
  replaces some of its entries (checked: one-sentence :class:`EnergyError`).
* :class:`EnergyModel` -- the table turned into energies per event (pJ):
  ``fma``, ``add``, ``int_add(bits)``, ``sram16(bank_bytes)``, ``flit_hop``,
  ``dram_byte``, ``overhead_lane_cycle``, ``static_lane_cycle``.
* Event sets: a *core event set* is a dict
  ``{"lanes": P, "memories": {name: bank_bytes}, "flit_bits": b,
  "router_buffer_bytes": n, "lane_op": "fp16_fma" | "int_add", "lane_bits": Q,
  "phases": {phase: phase_events}}`` (``lane_op`` sets what a lane's static
  power is a fraction of: an fp16 FMA lane, or a ``lane_bits`` integer adder) with
  ``phase_events`` holding ``fma``, ``add``, ``int_add``, ``int_other``,
  ``int_add_bits``, ``reads`` / ``writes`` (``{memory: 16-bit words}``),
  ``flit_hops``, ``dram_bytes``, ``busy_cycles``, ``cycles`` and the
  ``skipped_fma`` / ``skipped_add`` the sparsity saved (any key may be absent: 0).
* :func:`core_events` -- a training core's counters (``hdl/core.py``
  ``COUNTERS``, as ``Device.counters()`` and ``train --engine rtl`` give them)
  turned into a core event set, and :func:`contract_events` -- the same from the
  work the golden model implies (SPEC section 3), with its dense equivalent.
* :func:`inference_events` -- one sample of the integer inference build (SPEC
  section 8) from its spike bits: SOPs, the other integer operations, weight and
  potential words.
* :func:`estimate` -- one or more core event sets and a sample count to the
  report dict; :func:`summary_line` -- its one-line summary.

Conventions: an fp16 FMA is 2 FLOPs, an fp16 add 1 FLOP (multiplies, the loss
unit's and the surrogate's, count as FMAs: 2 FLOPs). A synaptic operation (SOP,
SPEC section 8) is one integer add of a weight; TSOPS/W counts SOPs only.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from typing import Mapping, Sequence

__all__ = [
    "EnergyError", "Constant", "DEFAULT_CONSTANTS", "load_constants", "EnergyModel",
    "PHASES", "KINDS", "core_events", "contract_work", "dense_work", "events_from_work",
    "contract_events", "estimate", "summary_line", "offchip_bytes_per_sample",
    "geometry_of", "inference_events", "INT_OPS_PER_NEURON_STEP", "inference_core_events",
]

PHASES = ("forward", "backward", "update")

#: Event kinds whose shares the report gives (they sum to 1 when any energy is spent).
KINDS = ("fp16_fma", "fp16_add", "int_add", "sram_read", "sram_write", "noc", "dram",
         "register_control", "static")


class EnergyError(ValueError):
    """Bad energy-model input: the message is one sentence naming the key or value."""


@dataclass(frozen=True)
class Constant:
    """One entry of the table: its value, unit and published source."""
    value: float
    unit: str
    source: str


_HOROWITZ = ("M. Horowitz, 'Computing's energy problem (and what we can do about it)', "
             "ISSCC 2014, Fig. 1.1.9, 45 nm, 0.9 V")

#: The published constants. Logic and SRAM entries are at ``reference_node_nm`` and
#: scaled to ``node_nm`` by :meth:`EnergyModel.scale` (energy proportional to feature
#: size at constant supply voltage); DRAM and wire entries are used as they are.
DEFAULT_CONSTANTS: dict[str, Constant] = {
    "node_nm": Constant(28.0, "nm", "target node: Li et al. 2024 report 1.05 TFLOPS/W "
                        "at FP16 in 28 nm"),
    "reference_node_nm": Constant(45.0, "nm", _HOROWITZ),
    "fp16_add_pj": Constant(0.4, "pJ", _HOROWITZ + ": 16-bit FP add 0.4 pJ"),
    "fp16_mul_pj": Constant(1.1, "pJ", _HOROWITZ + ": 16-bit FP mult 1.1 pJ"),
    "int8_add_pj": Constant(0.03, "pJ", _HOROWITZ + ": 8-bit integer add 0.03 pJ"),
    "int32_add_pj": Constant(0.1, "pJ", _HOROWITZ + ": 32-bit integer add 0.1 pJ"),
    "sram_64b_pj_at_8kb": Constant(10.0, "pJ", _HOROWITZ + ": 64-bit read of an 8 KB "
                                   "SRAM 10 pJ (32 KB: 20 pJ, 1 MB: 100 pJ)"),
    "sram_reference_bytes": Constant(8192.0, "bytes", _HOROWITZ + ": the 8 KB point"),
    "sram_capacity_exponent": Constant(0.5, "1", "fit to " + _HOROWITZ + ": energy "
                                       "proportional to sqrt(capacity) gives 10 / 20 / 113 pJ "
                                       "for the published 10 / 20 / 100 pJ at 8 KB / 32 KB / 1 MB"),
    "sram_write_over_read": Constant(1.0, "1", "assumption: a write costs a read "
                                     "(Horowitz gives one figure per access)"),
    "register_pj_per_lane_cycle": Constant(
        0.625, "pJ", "a 16-bit access of a 512-byte register-file-class store by the SRAM "
        "rule above (10 pJ * sqrt(512/8192) * 16/64); consistent with Chen, Emer and Sze, "
        "'Eyeriss', ISCA 2016, Table IV: a 0.5 KB RF access costs about one 16-bit MAC"),
    "dram_pj_per_byte": Constant(162.5, "pJ", _HOROWITZ + ": DRAM 1.3-2.6 nJ per 64-bit "
                                 "access, the low end (1300 pJ / 8 bytes); not scaled "
                                 "(an off-chip device)"),
    "wire_pj_per_bit_mm": Constant(0.11, "pJ", "P. Kogge et al., 'ExaScale computing "
                                   "study', DARPA IPTO 2008, as quoted by S. Keckler "
                                   "(NVIDIA): on-chip wire 18-110 fJ/bit/mm at ~30 nm, the "
                                   "high end; not scaled"),
    "hop_mm": Constant(1.0, "mm", "assumption: one router-to-router link per core "
                       "pitch of 1 mm"),
    "static_fraction": Constant(0.1, "1", "assumption (no published figure for this "
                                "core): static power per core is 10 % of the power of "
                                "its lanes doing FMAs every cycle"),
    "clock_mhz": Constant(200.0, "MHz", "assumption: clock used only to report seconds "
                          "and watts; energies do not depend on it"),
}

_NONNEG = {"fp16_add_pj", "fp16_mul_pj", "int8_add_pj", "int32_add_pj", "sram_64b_pj_at_8kb",
           "sram_write_over_read", "register_pj_per_lane_cycle", "dram_pj_per_byte",
           "wire_pj_per_bit_mm", "hop_mm", "static_fraction", "sram_capacity_exponent"}
_POSITIVE = {"node_nm", "reference_node_nm", "sram_reference_bytes", "clock_mhz"}


def _check_value(key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EnergyError(f"energy constant {key!r} must be a number, not {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise EnergyError(f"energy constant {key!r} must be finite, not {value!r}")
    if key in _POSITIVE and v <= 0:
        raise EnergyError(f"energy constant {key!r} must be greater than 0, not {value!r}")
    if key in _NONNEG and v < 0:
        raise EnergyError(f"energy constant {key!r} must not be negative, not {value!r}")
    return v


def load_constants(source: str | os.PathLike | Mapping | None = None) -> dict[str, Constant]:
    """The default table with the entries of ``source`` replaced.

    ``source`` is ``None`` (the defaults), a mapping, or the path of a JSON file
    holding one object; each key names a constant of :data:`DEFAULT_CONSTANTS` and
    its value is a number or ``{"value": number, "source": "text"}``.
    """
    if source is None:
        return dict(DEFAULT_CONSTANTS)
    if isinstance(source, Mapping):
        data, where = source, "the energy constants"
    else:
        path = os.fspath(source)
        where = f"energy constants file {path!r}"
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            raise EnergyError(f"{where} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise EnergyError(f"{where} cannot be read ({exc.__class__.__name__})") from None
        except json.JSONDecodeError as exc:
            raise EnergyError(f"{where} is not valid JSON (line {exc.lineno}, column "
                              f"{exc.colno}: {exc.msg})") from None
    if not isinstance(data, Mapping):
        raise EnergyError(f"{where} must hold a JSON object, not {type(data).__name__}")
    table = dict(DEFAULT_CONSTANTS)
    for key, entry in data.items():
        if key not in DEFAULT_CONSTANTS:
            raise EnergyError(f"unknown energy constant {key!r}; allowed: "
                              f"{sorted(DEFAULT_CONSTANTS)}")
        src = f"user value from {where}"
        if isinstance(entry, Mapping):
            extra = set(entry) - {"value", "source"}
            if extra or "value" not in entry:
                raise EnergyError(f"energy constant {key!r} must be a number or an object "
                                  f"with 'value' (and optionally 'source'), not {dict(entry)!r}")
            if "source" in entry:
                if not isinstance(entry["source"], str):
                    raise EnergyError(f"the source of energy constant {key!r} must be a "
                                      f"string, not {entry['source']!r}")
                src = entry["source"]
            entry = entry["value"]
        table[key] = Constant(_check_value(key, entry), DEFAULT_CONSTANTS[key].unit, src)
    return table


@dataclass(frozen=True)
class EnergyModel:
    """Energies per event (pJ) at the target node, from a constants table."""

    constants: Mapping[str, Constant] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_CONSTANTS))

    def __post_init__(self):
        c = dict(self.constants)
        missing = set(DEFAULT_CONSTANTS) - set(c)
        if missing:
            raise EnergyError(f"the energy constants lack {sorted(missing)}")
        for k, v in c.items():
            if k not in DEFAULT_CONSTANTS:
                raise EnergyError(f"unknown energy constant {k!r}; allowed: "
                                  f"{sorted(DEFAULT_CONSTANTS)}")
            if not isinstance(v, Constant):
                raise EnergyError(f"energy constant {k!r} must be a Constant, not {v!r}")
            _check_value(k, v.value)
        object.__setattr__(self, "constants", c)

    @classmethod
    def from_json(cls, source=None) -> "EnergyModel":
        return cls(load_constants(source))

    def v(self, key: str) -> float:
        return self.constants[key].value

    @property
    def scale(self) -> float:
        """Technology factor applied to logic and SRAM energies: ``node / reference``
        (switching energy C V^2 with capacitance proportional to feature size at a
        constant supply voltage)."""
        return self.v("node_nm") / self.v("reference_node_nm")

    # ---- energies per event, pJ ---------------------------------------------------------
    @property
    def fma(self) -> float:
        """One fp16 fused multiply-add: a 16-bit FP multiply plus a 16-bit FP add."""
        return (self.v("fp16_mul_pj") + self.v("fp16_add_pj")) * self.scale

    @property
    def add(self) -> float:
        return self.v("fp16_add_pj") * self.scale

    def int_add(self, bits: int = 16) -> float:
        """A ``bits``-wide integer add: linear in width through the 8- and 32-bit points."""
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 64:
            raise EnergyError(f"int_add_bits must be an integer from 1 to 64, not {bits!r}")
        e8, e32 = self.v("int8_add_pj"), self.v("int32_add_pj")
        return max(0.0, e8 + (bits - 8) * (e32 - e8) / 24) * self.scale

    def sram16(self, bank_bytes: float, *, write: bool = False) -> float:
        """A 16-bit access of one SRAM bank of ``bank_bytes``: the 64-bit access at 8 KB
        times ``(capacity / 8 KB) ** exponent``, times 16/64 for the width."""
        if isinstance(bank_bytes, bool) or not isinstance(bank_bytes, (int, float)) \
                or not math.isfinite(bank_bytes) or bank_bytes <= 0:
            raise EnergyError(f"a memory size must be a positive number of bytes, "
                              f"not {bank_bytes!r}")
        e = (self.v("sram_64b_pj_at_8kb")
             * (bank_bytes / self.v("sram_reference_bytes")) ** self.v("sram_capacity_exponent")
             * 16 / 64 * self.scale)
        return e * self.v("sram_write_over_read") if write else e

    def flit_hop(self, flit_bits: int, buffer_bytes: float) -> float:
        """One flit over one hop: the link wire (``hop_mm``) plus a write and a read of
        the receiving router's input buffer (SRAM rule, per 16 bits of the flit)."""
        wire = self.v("wire_pj_per_bit_mm") * self.v("hop_mm") * flit_bits
        words = flit_bits / 16
        buf = words * (self.sram16(buffer_bytes) + self.sram16(buffer_bytes, write=True))
        return wire + buf

    @property
    def dram_byte(self) -> float:
        return self.v("dram_pj_per_byte")

    @property
    def overhead_lane_cycle(self) -> float:
        """Registers and control per lane per busy cycle (pipeline registers, operand
        selection, the engines' sequencing)."""
        return self.v("register_pj_per_lane_cycle") * self.scale

    @property
    def static_lane_cycle(self) -> float:
        """Static energy per fp16 lane per clock cycle of the core (busy or not)."""
        return self.v("static_fraction") * (self.fma + self.overhead_lane_cycle)

    def to_dict(self) -> dict:
        """The table with the derived energies, for reports."""
        return {
            "constants": {k: {"value": c.value, "unit": c.unit, "source": c.source}
                          for k, c in self.constants.items()},
            "technology_scale": self.scale,
            "pj": {"fp16_fma": self.fma, "fp16_add": self.add, "int16_add": self.int_add(16),
                   "register_control_per_lane_cycle": self.overhead_lane_cycle,
                   "static_per_lane_cycle": self.static_lane_cycle,
                   "dram_byte": self.dram_byte},
        }


# ---------------------------------------------------------------------------
# Event sets
# ---------------------------------------------------------------------------

_PHASE_KEYS = {"fma", "add", "int_add", "int_other", "int_add_bits", "reads", "writes",
               "flit_hops", "dram_bytes", "busy_cycles", "cycles", "skipped_fma",
               "skipped_add"}


def _count(where, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0:
        raise EnergyError(f"{where} must be a non-negative number, not {value!r}")
    return value


def _phase_energy(model: EnergyModel, core: Mapping, pname: str, ph: Mapping) -> dict:
    """Energy (pJ) of one phase of one core by kind, and per memory."""
    where = f"phase {pname!r}"
    unknown = set(ph) - _PHASE_KEYS
    if unknown:
        raise EnergyError(f"{where} has unknown event key(s) {sorted(unknown)}; "
                          f"allowed: {sorted(_PHASE_KEYS)}")
    g = lambda k: _count(f"{where} {k}", ph.get(k, 0))   # noqa: E731
    lanes = _count("lanes", core.get("lanes", 1))
    mems = core.get("memories", {})
    kinds = dict.fromkeys(KINDS, 0.0)
    per_mem = {}
    kinds["fp16_fma"] = g("fma") * model.fma
    kinds["fp16_add"] = g("add") * model.add
    bits = ph.get("int_add_bits", 16)
    kinds["int_add"] = (g("int_add") + g("int_other")) * model.int_add(bits) if (
        ph.get("int_add") or ph.get("int_other")) else 0.0
    for direction, kind in (("reads", "sram_read"), ("writes", "sram_write")):
        acc = ph.get(direction, {}) or {}
        if not isinstance(acc, Mapping):
            raise EnergyError(f"{where} {direction} must map memory names to counts, "
                              f"not {acc!r}")
        for mem, n in acc.items():
            n = _count(f"{where} {direction} of memory {mem!r}", n)
            if not n:
                continue
            if mem not in mems:
                raise EnergyError(f"{where} {direction} names memory {mem!r}, which the "
                                  f"core's 'memories' ({sorted(mems)}) do not list")
            e = n * model.sram16(mems[mem], write=(direction == "writes"))
            kinds[kind] += e
            per_mem[mem] = per_mem.get(mem, 0.0) + e
    if g("flit_hops"):
        kinds["noc"] = g("flit_hops") * model.flit_hop(core.get("flit_bits", 32),
                                                       core.get("router_buffer_bytes", 64))
    kinds["dram"] = g("dram_bytes") * model.dram_byte
    kinds["register_control"] = g("busy_cycles") * lanes * model.overhead_lane_cycle
    lane_op = core.get("lane_op", "fp16_fma")
    if lane_op == "fp16_fma":
        static = model.static_lane_cycle
    elif lane_op == "int_add":
        static = model.v("static_fraction") * (model.int_add(core.get("lane_bits", 16))
                                               + model.overhead_lane_cycle)
    else:
        raise EnergyError(f"lane_op must be 'fp16_fma' or 'int_add', not {lane_op!r}")
    kinds["static"] = g("cycles") * lanes * static
    flops = 2 * g("fma") + g("add")
    skipped_flops = 2 * g("skipped_fma") + g("skipped_add")
    return {"kinds": kinds, "memories": per_mem, "flops": flops,
            "skipped_flops": skipped_flops, "sops": g("int_add"), "cycles": g("cycles")}


def estimate(cores, *, samples: int, model: EnergyModel | None = None) -> dict:
    """Energy report of ``samples`` samples from one core event set or a list of them.

    Returns ``joules_per_sample``, ``joules_total``, ``per_phase_joules_per_sample``,
    ``per_core_joules_per_sample``, ``shares`` (of :data:`KINDS`, summing to 1 when
    energy was spent), ``per_memory_joules_per_sample``, ``flops_per_sample``,
    ``tflops_per_watt`` (FLOPs done / energy; ``None`` without fp16 work),
    ``effective_tflops_per_watt`` (FLOPs done and skipped, i.e. the dense-equivalent
    work, / energy), ``sops_per_sample``, ``tsops_per_watt`` (``None`` without SOPs),
    ``seconds_per_sample`` and ``watts`` at the table's clock, and the conventions.
    """
    model = model or EnergyModel()
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise EnergyError(f"samples must be a positive integer, not {samples!r}")
    if isinstance(cores, Mapping):
        cores = [cores]
    if not isinstance(cores, Sequence) or not cores:
        raise EnergyError("cores must be a core event set or a non-empty list of them")
    kinds = dict.fromkeys(KINDS, 0.0)
    per_phase, per_mem, per_core = {}, {}, []
    flops = skipped = sops = 0.0
    max_cycles = 0.0
    for ci, core in enumerate(cores):
        if not isinstance(core, Mapping):
            raise EnergyError(f"core {ci} must be a dict of events, not {type(core).__name__}")
        phases = core.get("phases", {})
        if not isinstance(phases, Mapping):
            raise EnergyError(f"core {ci} 'phases' must map phase names to events")
        core_pj = 0.0
        core_cycles = 0.0
        for pname, ph in phases.items():
            if not isinstance(ph, Mapping):
                raise EnergyError(f"phase {pname!r} of core {ci} must be a dict of events")
            r = _phase_energy(model, core, pname, ph)
            e = sum(r["kinds"].values())
            core_pj += e
            core_cycles += r["cycles"]
            per_phase[pname] = per_phase.get(pname, 0.0) + e
            for k, v in r["kinds"].items():
                kinds[k] += v
            for k, v in r["memories"].items():
                per_mem[k] = per_mem.get(k, 0.0) + v
            flops += r["flops"]
            skipped += r["skipped_flops"]
            sops += r["sops"]
        per_core.append(core_pj)
        max_cycles = max(max_cycles, core_cycles)
    total_pj = sum(kinds.values())
    J = 1e-12
    n = samples
    joules = total_pj * J
    seconds = max_cycles / (model.v("clock_mhz") * 1e6)

    def per_watt(ops):
        return (ops / joules / 1e12) if (ops and joules > 0) else None

    return {
        "estimate": True,
        "samples": n,
        "joules_total": joules,
        "joules_per_sample": joules / n,
        "per_phase_joules_per_sample": {k: v * J / n for k, v in per_phase.items()},
        "per_core_joules_per_sample": [v * J / n for v in per_core],
        "per_memory_joules_per_sample": {k: v * J / n for k, v in sorted(per_mem.items())},
        "joules_per_sample_by_kind": {k: v * J / n for k, v in kinds.items()},
        "shares": {k: (v / total_pj if total_pj > 0 else 0.0) for k, v in kinds.items()},
        "flops_per_sample": flops / n,
        "tflops_per_watt": per_watt(flops),
        "effective_tflops_per_watt": per_watt(flops + skipped),
        "sops_per_sample": sops / n,
        "tsops_per_watt": per_watt(sops),
        "seconds_per_sample": seconds / n,
        "watts": (joules / seconds) if seconds > 0 else None,
        "node_nm": model.v("node_nm"),
        "clock_mhz": model.v("clock_mhz"),
        "conventions": "fp16 FMA = 2 FLOPs, fp16 add = 1 FLOP, SOP = one integer weight "
                       "add; effective counts the skipped work as done; estimate from "
                       "published per-event energies (docs/energy.md)",
    }


def summary_line(report: Mapping) -> str:
    """One line: energy per sample, efficiency and the two largest shares."""
    j = report["joules_per_sample"]
    if j >= 1e-3:
        e = f"{j * 1e3:.3g} mJ"
    elif j >= 1e-6:
        e = f"{j * 1e6:.3g} uJ"
    else:
        e = f"{j * 1e9:.3g} nJ"
    parts = [f"energy (estimate, {report['node_nm']:g} nm): {e}/sample"]
    if report.get("tflops_per_watt") is not None:
        parts.append(f"{report['tflops_per_watt']:.3g} TFLOPS/W")
        if report.get("effective_tflops_per_watt") is not None:
            parts.append(f"{report['effective_tflops_per_watt']:.3g} effective")
    if report.get("tsops_per_watt") is not None:
        parts.append(f"{report['tsops_per_watt']:.3g} TSOPS/W")
    top = sorted(report["shares"].items(), key=lambda kv: -kv[1])[:2]
    top = [f"{k} {v:.0%}" for k, v in top if v > 0]
    if top:
        parts.append("largest: " + ", ".join(top))
    return ", ".join(parts)


# ---------------------------------------------------------------------------
# Work of the training core, by operation kind
# ---------------------------------------------------------------------------
#
# Lane operations (OpKind in hdl/core/defs.py) and the 16-bit memory words each
# lane operation moves besides the W / dW words (counted by the core itself):
#   fp_add  x += W          fp16 add  acc: 1 read, 1 write   W: 1 read
#   lif     u = alpha u + x  FMA       acc: 2 reads, 1 write
#   loss    r, e, g, copies  FMA       acc: 1 read, 1 write
#   term    beta * g         FMA       acc: 1 read; du: 1 write
#   du      alpha du + term  FMA       du: 2 reads, 1 write
#   through -(alpha u), ds   2 FMAs    u: 1 read; du: 2 reads, 2 writes; acc: 1 read
#   gin     g_in += W du     FMA       acc: 1 read, 1 write   W: 1 read
#   wg_add  dW += du         fp16 add  du: 1 read             dW: 1 read, 1 write
#   upd     W += -lr dW      FMA                              W, dW: 1 read, 1 write each
# History bits (s, m, du != 0) and the spike scanner are not counted (docs/energy.md).

_OPS = ("fp_add", "lif", "loss", "term", "du", "through", "gin", "wg_add", "upd")
_OP_PHASE = {"fp_add": "forward", "lif": "forward", "loss": "backward", "term": "backward",
             "du": "backward", "through": "backward", "gin": "backward",
             "wg_add": "backward", "upd": "update"}
_OP_LOCAL = {   # op -> ({memory: reads}, {memory: writes}) per lane operation
    "fp_add": ({"acc": 1}, {"acc": 1}),
    "lif": ({"acc": 2}, {"acc": 1}),
    "loss": ({"acc": 1}, {"acc": 1}),
    "term": ({"acc": 1}, {"du": 1}),
    "du": ({"du": 2}, {"du": 1}),
    "through": ({"u": 0.5, "du": 1, "acc": 0.5}, {"du": 1}),   # per FMA, 2 FMAs per step
    "gin": ({"acc": 1}, {"acc": 1}),
    "wg_add": ({"du": 1}, {}),
    "upd": ({}, {}),
}
_OP_W = {"fp_add": (1, 0), "gin": (1, 0), "wg_add": (1, 1), "upd": (2, 2)}   # (reads, writes)


def geometry_of(config) -> dict:
    """Lanes and the bank size (bytes) of each memory of a training core built from a
    :class:`~spikeforge.hdl.config.BuildConfig` (``docs/core.md``, "Memories")."""
    from spikeforge.hdl.core.defs import CoreGeometry
    g = CoreGeometry(config)
    mems = {"w": g.weight_depth * 2, "acc": g.acc_depth * 2, "du": g.du_depth * 2}
    if g.through:
        mems["u"] = g.du_depth * 2
    return {"lanes": g.lanes, "memories": mems, "flit_bits": config.implementation.flit_width,
            "router_buffer_bytes": config.implementation.router_buffer_depth
            * config.implementation.flit_width // 8}


def _check_geometry(geometry):
    if not isinstance(geometry, Mapping) or "lanes" not in geometry or "memories" not in geometry:
        raise EnergyError("geometry must be a dict with 'lanes' and 'memories' "
                          "(see geometry_of)")
    for m in ("w", "acc", "du"):
        if m not in geometry["memories"]:
            raise EnergyError(f"geometry memories must include {m!r}, not only "
                              f"{sorted(geometry['memories'])}")


def _check_sizes(sizes, T):
    if (not isinstance(sizes, Sequence) or len(sizes) < 2
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes)):
        raise EnergyError(f"sizes must list at least two positive layer widths, not {sizes!r}")
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise EnergyError(f"T must be a positive integer, not {T!r}")


def events_from_work(work: Mapping, geometry: Mapping, *, w_reads=None, w_writes=None,
                     busy=None, cycles=None, skipped=None, dram_bytes: float = 0,
                     flit_hops: float = 0) -> dict:
    """A core event set from lane operations by kind (``work``: op -> lane operations).

    Memory words follow the table above; ``w_reads`` / ``w_writes`` (per phase) replace
    the W / dW words when the core counted them. ``busy`` and ``cycles`` (per phase)
    default to the ideal: the phase's lane operations / lanes. ``skipped`` (per phase)
    is ``{"fma": n, "add": n}``. Off-chip bytes go to the forward phase, flit hops to
    the backward phase when there is one, else the forward phase.
    """
    _check_geometry(geometry)
    unknown = set(work) - set(_OPS)
    if unknown:
        raise EnergyError(f"unknown operation kind(s) {sorted(unknown)}; allowed: {list(_OPS)}")
    P = geometry["lanes"]
    phases = {p: {"fma": 0, "add": 0, "reads": {}, "writes": {}} for p in PHASES}
    lane_ops = dict.fromkeys(PHASES, 0)
    for op, n in work.items():
        n = _count(f"operation count {op!r}", n)
        ph = phases[_OP_PHASE[op]]
        lane_ops[_OP_PHASE[op]] += n
        ph["add" if op in ("fp_add", "wg_add") else "fma"] += n
        rd, wr = _OP_LOCAL[op]
        for mem, k in rd.items():
            ph["reads"][mem] = ph["reads"].get(mem, 0) + k * n
        for mem, k in wr.items():
            ph["writes"][mem] = ph["writes"].get(mem, 0) + k * n
        if op in _OP_W and w_reads is None:
            ph["reads"]["w"] = ph["reads"].get("w", 0) + _OP_W[op][0] * n
        if op in _OP_W and w_writes is None:
            ph["writes"]["w"] = ph["writes"].get("w", 0) + _OP_W[op][1] * n
    for p in PHASES:
        ph = phases[p]
        if w_reads is not None:
            ph["reads"]["w"] = w_reads.get(p, 0)
        if w_writes is not None:
            ph["writes"]["w"] = w_writes.get(p, 0)
        ideal = lane_ops[p] / P
        ph["busy_cycles"] = busy[p] if busy is not None else ideal
        ph["cycles"] = cycles[p] if cycles is not None else ideal
        if skipped is not None:
            ph["skipped_fma"] = skipped.get(p, {}).get("fma", 0)
            ph["skipped_add"] = skipped.get(p, {}).get("add", 0)
    phases["forward"]["dram_bytes"] = dram_bytes
    has_bwd = any(lane_ops[p] for p in ("backward", "update"))
    phases["backward" if has_bwd else "forward"]["flit_hops"] = flit_hops
    out = {k: v for k, v in geometry.items()}
    out["phases"] = {p: v for p, v in phases.items()
                     if lane_ops[p] or v.get("cycles") or v["reads"].get("w")
                     or v["writes"].get("w") or v.get("dram_bytes") or v.get("flit_hops")}
    return out


def core_events(counters: Mapping, *, geometry: Mapping, sizes: Sequence[int], T: int,
                reset_grad: str = "detach", train_runs: int | None = None,
                dram_bytes: float = 0, hops_per_flit: float = 1.0) -> dict:
    """A core event set from a training core's counters (one core holding the whole
    network ``sizes``, every run ``T`` steps).

    The counters give FMAs done per engine, weight / dW words and cycles; the split of
    each engine's FMAs into operation kinds follows from the loops of ``docs/core.md``:
    per run the LIF pass issues ``T * sum(N_out)`` lanes, per training run the loss
    ``(T + 2) * K`` and the term and du passes ``T * sum(N_out)`` each (two more such
    passes with ``reset_grad = through``); the rest of the FP lanes are forward adds, the
    rest of the BP lanes input-gradient FMAs. Update lanes are ``w_writes - wg_fmas``
    (an update operation writes W and dW on every lane; a weight-gradient lane writes
    one dW word), the rest of the WG lanes are dW adds. The W / dW words read outside
    the update are split between forward and backward in proportion to their
    W-reading lanes (this moves energy between phases, not the total).
    ``train_runs`` defaults to ``runs`` when the BP engine did work, else 0.
    NoC flits: ``noc_flit_hops`` if counted, else ``noc_flits_out * hops_per_flit``.
    """
    _check_geometry(geometry)
    _check_sizes(sizes, T)
    if reset_grad not in ("detach", "through"):
        raise EnergyError(f"reset_grad must be 'detach' or 'through', not {reset_grad!r}")
    need = ("cycles_forward", "cycles_backward", "cycles_update", "fp_busy", "fp_fmas",
            "fp_skipped", "bp_busy", "bp_fmas", "bp_skipped", "wg_busy", "wg_fmas",
            "wg_skipped", "w_reads", "w_writes", "runs")
    if not isinstance(counters, Mapping):
        raise EnergyError(f"counters must be a dict, not {type(counters).__name__}")
    for k in need:
        if k not in counters:
            raise EnergyError(f"counters lack {k!r} (hdl/core.py COUNTERS)")
        _count(f"counter {k!r}", counters[k])
    c = counters
    runs = c["runs"]
    if train_runs is None:
        train_runs = runs if c["bp_fmas"] else 0
    outs = sum(sizes[1:])
    K = sizes[-1]
    lif = runs * T * outs
    fp_add = c["fp_fmas"] - lif
    passes = 2 + (2 if reset_grad == "through" else 0)   # term, du (+ BPT1, BPT2)
    loss = train_runs * (T + 2) * K
    term = train_runs * T * outs
    du = train_runs * T * outs
    through = train_runs * 2 * T * outs if reset_grad == "through" else 0
    gin = c["bp_fmas"] - loss - train_runs * passes * T * outs
    upd = c["w_writes"] - c["wg_fmas"]
    wg_add = c["wg_fmas"] - upd
    for name, v in (("forward adds (fp_fmas - runs * T * sum(N_out))", fp_add),
                    ("input-gradient FMAs (bp_fmas less loss, term and du lanes)", gin),
                    ("update lanes (w_writes - wg_fmas)", upd), ("dW adds", wg_add)):
        if v < 0:
            raise EnergyError(f"the counters do not fit the network {list(sizes)} with T = "
                              f"{T}: {name} would be {v}")
    upd_reads = 2 * upd
    rest = c["w_reads"] - upd_reads
    if rest < 0:
        raise EnergyError(f"the counters do not fit the network: w_reads {c['w_reads']} is "
                          f"below the update's {upd_reads}")
    wl = fp_add + gin + wg_add
    fwd_reads = rest * fp_add / wl if wl else 0
    work = {"fp_add": fp_add, "lif": lif, "loss": loss, "term": term, "du": du,
            "through": through, "gin": gin, "wg_add": wg_add, "upd": upd}
    upd_busy = min(c["wg_busy"], c["cycles_update"])
    busy = {"forward": c["fp_busy"], "backward": c["bp_busy"] + c["wg_busy"] - upd_busy,
            "update": upd_busy}
    cycles = {"forward": c["cycles_forward"], "backward": c["cycles_backward"],
              "update": c["cycles_update"]}
    skipped = {"forward": {"add": c["fp_skipped"]},
               "backward": {"fma": c["bp_skipped"], "add": c["wg_skipped"]}}
    hops = c.get("noc_flit_hops")
    if hops is None:
        hops = c.get("noc_flits_out", 0) * hops_per_flit
    return events_from_work(
        work, geometry,
        w_reads={"forward": fwd_reads, "backward": rest - fwd_reads, "update": upd_reads},
        w_writes={"forward": 0, "backward": c["w_writes"] - 2 * upd, "update": 2 * upd},
        busy=busy, cycles=cycles, skipped=skipped, dram_bytes=dram_bytes, flit_hops=hops)


# ---------------------------------------------------------------------------
# Work the contract implies (SPEC section 3), from spike / window / du bits
# ---------------------------------------------------------------------------

def _arr(x):
    import numpy as np
    return np.asarray(x, dtype=bool)


def contract_work(sizes: Sequence[int], spikes, s=None, m=None, du_nz=None, *,
                  reset_grad: str = "detach", update: bool = False) -> dict:
    """Lane operations the contract needs for one sample (the hardware skips inactive
    inputs and zero ``du``; it does everything else).

    ``spikes`` is the ``(T, N_in)`` input; ``s``, ``m``, ``du_nz`` are per layer the
    ``(T, N_out)`` spike, window and ``du != 0`` bits (``du_nz`` and ``m`` only for a
    training sample; ``s`` defaults to no spikes for a forward pass left out).
    forward adds: active inputs x neurons per step; LIF: one FMA per neuron and step
    whose potential was not reset (a reset step copies ``x``); loss: 3 per output;
    term: one multiply inside the window; du: one FMA per step without a spike
    (``through``: two more per neuron and step); input gradient: non-zero ``du`` x
    inputs (not layer 0); dW: non-zero ``du`` x active inputs; update (``update=True``):
    one FMA per weight.
    """
    import numpy as np
    _check_sizes(sizes, 1)
    x = _arr(spikes)
    if x.ndim != 2 or x.shape[1] != sizes[0]:
        raise EnergyError(f"spikes must be (T, {sizes[0]}), not {x.shape}")
    T = x.shape[0]
    L = len(sizes) - 1
    s = [np.zeros((T, n), bool) for n in sizes[1:]] if s is None else [_arr(a) for a in s]
    w = dict.fromkeys(_OPS, 0)
    s_in = x
    for l in range(L):
        n_out = sizes[l + 1]
        if s[l].shape != (T, n_out):
            raise EnergyError(f"layer {l} spikes must be ({T}, {n_out}), not {s[l].shape}")
        w["fp_add"] += int(s_in.sum()) * n_out
        reset = np.zeros_like(s[l])
        reset[1:] = s[l][:-1]
        w["lif"] += int((~reset).sum())
        s_in = s[l]
    if du_nz is not None:
        m = [_arr(a) for a in m]
        du_nz = [_arr(a) for a in du_nz]
        w["loss"] = 3 * sizes[-1]
        ins = [x] + s[:-1]
        for l in range(L):
            w["term"] += int(m[l].sum())
            w["du"] += int((~s[l]).sum())
            if reset_grad == "through":
                w["through"] += 2 * s[l].size
            nz_t = du_nz[l].sum(axis=1)
            if l:
                # only the entries the layer below reads (its window bit at t is 1):
                # SPEC section 3 lets the hardware skip the others, and the core does
                w["gin"] += int((nz_t * m[l - 1].sum(axis=1)).sum())
            w["wg_add"] += int((nz_t * ins[l].sum(axis=1)).sum())
    if update:
        w["upd"] = sum(sizes[l] * sizes[l + 1] for l in range(L))
    return w


def dense_work(sizes: Sequence[int], T: int, *, train: bool = True,
               reset_grad: str = "detach", update: bool = False) -> dict:
    """The same operations if every input were active and every ``du`` non-zero and
    nothing were skipped (a dense engine: no spike or gradient sparsity)."""
    _check_sizes(sizes, T)
    L = len(sizes) - 1
    w = dict.fromkeys(_OPS, 0)
    for l in range(L):
        n_in, n_out = sizes[l], sizes[l + 1]
        w["fp_add"] += T * n_in * n_out
        w["lif"] += T * n_out
        if train:
            w["term"] += T * n_out
            w["du"] += T * n_out
            if reset_grad == "through":
                w["through"] += 2 * T * n_out
            if l:
                w["gin"] += T * n_out * n_in
            w["wg_add"] += T * n_out * n_in
    if train:
        w["loss"] = 3 * sizes[-1]
    if update:
        w["upd"] = sum(sizes[l] * sizes[l + 1] for l in range(L))
    return w


def contract_events(sizes, spikes, s=None, m=None, du_nz=None, *, geometry, **kw) -> dict:
    """:func:`contract_work` as a core event set at the ideal cycle count."""
    return events_from_work(contract_work(sizes, spikes, s, m, du_nz, **kw), geometry)


# ---------------------------------------------------------------------------
# Off-chip traffic of the accelerator
# ---------------------------------------------------------------------------

def inference_core_events(counters: Mapping, *, sizes: Sequence[int], T: int, lanes: int,
                          group: int, weight_bits: int, potential_bits: int,
                          weight_bank_bytes: float, dram_bytes: float = 0) -> dict:
    """A core event set per sample of the integer inference core (``hdl/inference``)
    from its own counters (``INF_COUNTERS``: ``cycles``, ``busy``, ``sops``, ``beats``,
    ``updates``, ``runs``, totals over ``runs`` samples).

    SOPs are integer adds of ``potential_bits``; every beat (one input event of one
    group) reads one 16-bit weight word in each of the ``lanes`` banks; every group
    update (``group`` neurons at one step) does :data:`INT_OPS_PER_NEURON_STEP`
    integer operations per neuron. Potentials live in registers (no memory traffic);
    registers and control are charged per busy cycle and lane, static power per cycle.
    ``skipped_add`` is the dense work the events skipped (every input at every step).
    """
    _check_sizes(sizes, T)
    for k in ("cycles", "busy", "sops", "beats", "updates", "runs"):
        if k not in counters:
            raise EnergyError(f"counters lack {k!r} (hdl/protocol.py INF_COUNTERS)")
        _count(f"counter {k!r}", counters[k])
    runs = counters["runs"]
    if not runs:
        raise EnergyError("the counters hold no run")
    per = {k: counters[k] / runs for k in ("cycles", "busy", "sops", "beats", "updates")}
    dense = T * sum(sizes[l] * sizes[l + 1] for l in range(len(sizes) - 1))
    ph = {"int_add": per["sops"], "int_add_bits": potential_bits,
          "int_other": INT_OPS_PER_NEURON_STEP * per["updates"] * group,
          "reads": {"w": per["beats"] * lanes}, "writes": {},
          "busy_cycles": per["busy"], "cycles": per["cycles"],
          "dram_bytes": _count("dram_bytes", dram_bytes),
          "skipped_add": max(0.0, float(dense) - per["sops"])}
    return {"lanes": lanes, "memories": {"w": weight_bank_bytes}, "lane_op": "int_add",
            "lane_bits": potential_bits, "phases": {"forward": ph}}


def offchip_bytes_per_sample(sizes: Sequence[int], T: int, *, input_format: str = "spikes",
                             pixel_bytes: int = 1, label_bytes: int = 1,
                             streamed_weight_bytes: float = 0, train: bool = True) -> dict:
    """Bytes one sample moves between off-chip memory and the accelerator when the
    weights stay on chip: the input (``spikes``: ``T * N_in`` bits rounded up to
    bytes; ``pixels``: ``N_in * pixel_bytes``, rate-coded on chip) and, in training,
    the label; plus ``streamed_weight_bytes`` when the mapping cannot keep the
    weights on chip. Loading the weights once and reading them back once per run
    are reported apart (``per_run_bytes``: 2 bytes per fp16 weight each way)."""
    _check_sizes(sizes, T)
    if input_format == "spikes":
        inp = -(-T * sizes[0] // 8)
    elif input_format == "pixels":
        inp = sizes[0] * pixel_bytes
    else:
        raise EnergyError(f"input_format must be 'spikes' or 'pixels', not {input_format!r}")
    lab = label_bytes if train else 0
    nw = sum(sizes[l] * sizes[l + 1] for l in range(len(sizes) - 1))
    total = inp + lab + _count("streamed_weight_bytes", streamed_weight_bytes)
    return {"input_bytes": inp, "label_bytes": lab,
            "streamed_weight_bytes": streamed_weight_bytes, "bytes_per_sample": total,
            "per_run_bytes": 2 * 2 * nw}


# ---------------------------------------------------------------------------
# Integer inference build (SPEC section 8)
# ---------------------------------------------------------------------------

#: Integer operations per neuron and step besides the SOPs: the leak (shift and
#: subtract), adding the synaptic sum, adding the bias, the threshold compare
#: (the reset's subtract shares the compare's adder).
INT_OPS_PER_NEURON_STEP = 4


def inference_events(sizes: Sequence[int], spikes, s, *, weight_bits: int,
                     potential_bits: int, lanes: int, memories: Mapping[str, float]) -> dict:
    """A core event set for one sample of the integer inference build at the ideal
    cycle count, from its input and per-layer spike bits.

    SOPs (``int_add``): active inputs x neurons per step, each a ``potential_bits``
    integer add and a read of one ``weight_bits`` weight (``weight_bits / 16`` of a
    16-bit word of memory ``"w"``); per neuron and step
    :data:`INT_OPS_PER_NEURON_STEP` more integer operations and a read and a write of
    its ``potential_bits`` potential (memory ``"v"``). ``memories`` gives the bank
    bytes of ``"w"`` and ``"v"``.
    """
    _check_sizes(sizes, 1)
    for name, v, lo, hi in (("weight_bits", weight_bits, 2, 16),
                            ("potential_bits", potential_bits, 2, 64), ("lanes", lanes, 1, 4096)):
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise EnergyError(f"{name} must be an integer from {lo} to {hi}, not {v!r}")
    for m in ("w", "v"):
        if m not in memories:
            raise EnergyError(f"memories must give the bank bytes of {m!r}")
    x = _arr(spikes)
    if x.ndim != 2 or x.shape[1] != sizes[0]:
        raise EnergyError(f"spikes must be (T, {sizes[0]}), not {x.shape}")
    T = x.shape[0]
    sops = 0
    s_in = x
    for l in range(len(sizes) - 1):
        sops += int(s_in.sum()) * sizes[l + 1]
        s_in = _arr(s[l])
        if s_in.shape != (T, sizes[l + 1]):
            raise EnergyError(f"layer {l} spikes must be ({T}, {sizes[l + 1]}), "
                              f"not {s_in.shape}")
    steps = T * sum(sizes[1:])
    ideal = (sops + steps) / lanes
    ph = {"int_add": sops, "int_other": INT_OPS_PER_NEURON_STEP * steps,
          "int_add_bits": potential_bits,
          "reads": {"w": sops * weight_bits / 16, "v": steps * potential_bits / 16},
          "writes": {"v": steps * potential_bits / 16},
          "busy_cycles": ideal, "cycles": ideal,
          "skipped_add": float(T * sum(sizes[l] * sizes[l + 1]
                                       for l in range(len(sizes) - 1)) - sops)}
    return {"lanes": lanes, "memories": dict(memories), "lane_op": "int_add",
            "lane_bits": potential_bits, "phases": {"forward": ph}}
