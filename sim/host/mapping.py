"""Mapping compiler: a chain of fully connected layers onto the cores of a system.

``compile_mapping(sizes, config, cores=None, T=None)`` decides which core holds
which contiguous block of which layer, the routes the data take between them and
the run-time configuration (layer table, weight words) the host loads into each
core, or raises :class:`MappingError` with one sentence giving the numbers
(needed versus built: neurons, fan-in, weight words, time steps, cores).

Policy (``docs/multicore.md``, "Mapping"): layers run one after the other (a
layer needs all spikes of the layer below), so each layer is spread over as many
of the ``cores`` as it has lane groups (``ceil(n / lanes)``), in blocks of whole
lane groups as equal as possible, block ``b`` on core ``b``: the blocks of one
layer run in parallel and every core holds at most one block of each layer,
in ascending layer order (a core holds blocks of several layers, a layer spans
several cores). With one core this is exactly the one-core layout of
:class:`~spikeforge.sim.host.device.NetworkMap`.

A block's inputs come from its local predecessor when the core's previous table
entry is the whole layer below (a local chain); otherwise they are loaded into the
core's input history (group 0) before the block runs. Routes:

* ``spikes[l]``: the cores holding layer ``l - 1`` (``"host"`` for the input
  spikes) to every core holding layer ``l`` (except where the chain is local);
* ``gin_chain[l]`` (``l >= 1``): the cores holding layer ``l`` in ascending neuron
  order; the input-gradient partial sums travel along it (SPEC section 3,
  determinism across core counts), then go from its last core to every core of
  layer ``l - 1`` (``gin_deliver[l]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spikeforge.hdl.config import BuildConfig, check_build_config

__all__ = ["MappingError", "Block", "CoreMap", "Mapping", "compile_mapping", "spread",
           "xy_hops", "BlockStep", "schedule_sample"]


class MappingError(ValueError):
    """A network does not fit the built system (the message gives the numbers)."""


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Block:
    """Neurons ``lo .. hi - 1`` of layer ``layer`` on core ``core``, entry ``entry`` of
    its layer table."""
    layer: int
    core: int
    lo: int
    hi: int
    entry: int

    @property
    def n(self) -> int:
        return self.hi - self.lo


@dataclass(frozen=True)
class CoreMap:
    """What one core holds and the run-time configuration the host loads into it."""
    core: int
    blocks: tuple           # Block, in layer-table order (ascending layer)
    netmap: object          # spikeforge.sim.host.device.NetworkMap: the layer table, wcount
    neurons: int
    weight_words: int       # per bank

    @property
    def table(self) -> list[dict]:
        """The SET_LAYER fields of every entry."""
        return [dict(layer=e, n_in=lm.n_in, n_out=lm.n_out, in_hg=lm.in_hg, out_g=lm.out_g,
                     wbase=lm.wbase) for e, lm in enumerate(self.netmap.layers)]


@dataclass(frozen=True)
class Mapping:
    sizes: tuple
    cores: int                      # cores used
    built_cores: int
    lanes: int
    layers: tuple                   # per layer: its blocks in ascending neuron order
    core_maps: tuple                # per used core: CoreMap
    spikes: tuple                   # per layer: (sources, destinations)
    gin_chain: tuple                # per layer: cores in ascending neuron order (None for 0)
    gin_deliver: tuple              # per layer: cores of the layer below (None for 0)
    hops: dict = field(default_factory=dict)   # route name -> XY hops summed over its pairs

    def blocks_of(self, core: int) -> tuple:
        return self.core_maps[core].blocks

    def to_dict(self) -> dict:
        return {
            "sizes": list(self.sizes), "cores": self.cores, "built_cores": self.built_cores,
            "layers": [[dict(core=b.core, lo=b.lo, hi=b.hi, entry=b.entry) for b in blocks]
                       for blocks in self.layers],
            "cores_hold": [dict(core=c.core, neurons=c.neurons, weight_words=c.weight_words,
                                wcount=c.netmap.wcount, table=c.table)
                           for c in self.core_maps],
            "spikes": [dict(sources=list(s), destinations=list(d)) for s, d in self.spikes],
            "gin_chain": [None if c is None else list(c) for c in self.gin_chain],
            "gin_deliver": [None if c is None else list(c) for c in self.gin_deliver],
            "hops": dict(self.hops),
        }


def spread(n: int, lanes: int, cores: int) -> list[tuple[int, int]]:
    """Neuron ranges of a layer of ``n`` neurons over at most ``cores`` cores: whole lane
    groups, as equal as possible, lower blocks first."""
    groups = _ceil(n, lanes)
    parts = min(cores, groups)
    base, extra = divmod(groups, parts)
    out, lo = [], 0
    for b in range(parts):
        hi = min(n, lo + (base + (b < extra)) * lanes)
        out.append((lo, hi))
        lo = hi
    return out


def _layout(sizes, lanes: int, cores: int):
    """Blocks per layer and per core for ``cores`` cores."""
    per_layer, per_core = [], [[] for _ in range(cores)]
    for l, n in enumerate(sizes[1:]):
        blocks = []
        for k, (lo, hi) in enumerate(spread(n, lanes, cores)):
            b = Block(l, k, lo, hi, len(per_core[k]))
            blocks.append(b)
            per_core[k].append(b)
        per_layer.append(blocks)
    return per_layer, per_core


def _needs(sizes, lanes: int, cores: int) -> dict:
    """The per-core maxima the layout over ``cores`` cores needs."""
    _, per_core = _layout(sizes, lanes, cores)
    used = [blocks for blocks in per_core if blocks]
    return {
        "neurons": max(sum(b.n for b in blocks) for blocks in used),
        "blocks": max(len(blocks) for blocks in used),
        "groups": max(sum(_ceil(b.n, lanes) for b in blocks) for blocks in used),
        "weight_words": max(sum(_ceil(b.n, lanes) * sizes[b.layer] for b in blocks)
                            for blocks in used),
    }


def xy_hops(a: int, b: int, cols: int) -> int:
    """Router-to-router hops from core ``a`` to core ``b`` under XY routing."""
    return abs(a % cols - b % cols) + abs(a // cols - b // cols)


def compile_mapping(sizes, config: BuildConfig, *, cores: int | None = None,
                    T: int | None = None) -> Mapping:
    """Map the network ``sizes`` (inputs, then each layer's neurons) onto ``cores`` cores
    (default: all) of a system built from ``config``; see the module docstring."""
    from spikeforge.sim.host.device import DeviceInfo, LayerMap, NetworkMap
    check_build_config(config)
    sizes = tuple(int(n) for n in sizes)
    f = config.features
    built = f.cores
    cores = built if cores is None else cores
    if not isinstance(cores, int) or isinstance(cores, bool) or not 1 <= cores <= built:
        raise MappingError(f"cores must be between 1 and the {built} built, not {cores!r}")
    if len(sizes) < 2 or min(sizes) < 1:
        raise MappingError(f"a network needs an input size and at least one layer, all "
                           f"positive, not {list(sizes)}")
    info = DeviceInfo.from_config(config)
    P = f.lanes
    fan_in = max(sizes[:-1])
    T = 1 if T is None else T

    need = _needs(sizes, P, cores)
    problems = (need["neurons"] > f.neurons_per_core or need["blocks"] > f.max_layers or
                need["groups"] > info.neuron_groups or need["weight_words"] > info.weight_depth)
    if problems or fan_in > f.max_fan_in or T > f.max_time_steps:
        fixable = fan_in <= f.max_fan_in and T <= f.max_time_steps
        needed_cores = None
        if fixable:
            for c in range(cores + 1, 4097):
                n = _needs(sizes, P, c)
                if (n["neurons"] <= f.neurons_per_core and n["blocks"] <= f.max_layers and
                        n["groups"] <= info.neuron_groups and
                        n["weight_words"] <= info.weight_depth):
                    needed_cores = c
                    break
        mark = lambda a, b: f"{a} {'>' if a > b else '<='} {b}"      # noqa: E731
        net = "-".join(str(n) for n in sizes)
        cores_text = (f"cores {mark(needed_cores, cores)}" if needed_cores is not None else
                      f"cores: none fits (the fan-in or time steps exceed one core's)"
                      if not fixable else f"cores: more than 4096 needed (given {cores})")
        raise MappingError(
            f"the network {net} does not fit {cores} core(s) of {f.neurons_per_core} neurons "
            f"(needed versus built, per core: neurons {mark(need['neurons'], f.neurons_per_core)}, "
            f"layer blocks {mark(need['blocks'], f.max_layers)}, "
            f"fan-in {mark(fan_in, f.max_fan_in)}, "
            f"weight words per bank {mark(need['weight_words'], info.weight_depth)}, "
            f"time steps {mark(T, f.max_time_steps)}; {cores_text})")

    per_layer, per_core = _layout(sizes, P, cores)
    core_maps = []
    for k in range(cores):
        entries, out_g, wbase = [], 0, 0
        prev = None
        for b in per_core[k]:
            n_in = sizes[b.layer]
            local = (prev is not None and prev.layer == b.layer - 1 and prev.lo == 0 and
                     prev.hi == sizes[b.layer])
            in_hg = info.input_groups + entries[-1].out_g if local else 0
            entries.append(LayerMap(n_in, b.n, in_hg, out_g, wbase))
            out_g += _ceil(b.n, P)
            wbase += _ceil(b.n, P) * n_in
            prev = b
        blocks = tuple(per_core[k])
        netmap = NetworkMap(tuple([sizes[blocks[0].layer]] + [b.n for b in blocks]) if blocks
                            else (), tuple(entries), wbase, info.input_groups, P)
        core_maps.append(CoreMap(k, blocks, netmap, sum(b.n for b in blocks), wbase))

    spikes, chain, deliver = [], [], []
    hops = {"spikes": 0, "gin": 0}
    cols = f.cols
    for l, blocks in enumerate(per_layer):
        dst = tuple(b.core for b in blocks)
        src = ("host",) if l == 0 else tuple(b.core for b in per_layer[l - 1])
        spikes.append((src, dst))
        if l:
            for s in src:
                for d in dst:
                    if s != d:
                        hops["spikes"] += xy_hops(s, d, cols)
            chain.append(dst)
            deliver.append(tuple(b.core for b in per_layer[l - 1]))
            for a, b in zip(dst, dst[1:]):
                hops["gin"] += xy_hops(a, b, cols)
            for d in deliver[-1]:
                hops["gin"] += xy_hops(dst[-1], d, cols)
        else:
            chain.append(None)
            deliver.append(None)
    return Mapping(sizes, cores, built, P, tuple(tuple(b) for b in per_layer),
                   tuple(core_maps), tuple(spikes), tuple(chain), tuple(deliver), hops)


# --- the schedule, block by block (the reference for each core's values) --------------------

@dataclass
class BlockStep:
    """What one sample leaves on the cores, block by block (batch of one)."""
    spikes: list            # per layer: the whole layer's spikes (T, n), as the host moves them
    traces: dict            # (layer, core) -> LayerTrace of the block
    du: dict                # (layer, core) -> du of the block (T, n_block)
    g_in: list              # per layer >= 1: the chained input gradient (T, n_in); None for 0
    dWs: list               # per layer: the dW accumulator after the sample (whole layer)


def _continue_input_gradient(W, du, acc):
    """``acc = fma(W[i, j], du[t, i], acc)`` over the rows ``i`` of this block with
    ``du != 0``, ascending, continuing from the partial ``acc`` (SPEC section 3)."""
    from spikeforge.sim.golden import fp16
    from spikeforge.sim.golden.model import _POS_ZERO
    acc = acc.copy()
    nz = fp16.ne(du, _POS_ZERO)
    for i in np.flatnonzero(nz.any(axis=(0, 1))):
        mask = nz[:, :, i]
        acc[mask] = fp16.fma(W[i, :], du[:, :, i][mask][:, None], acc[mask])
    return acc


def schedule_sample(mapping: Mapping, weights, spikes, label, params, dWs=None) -> BlockStep:
    """One training sample computed the way the schedule of ``docs/multicore.md`` runs it
    on the cores of ``mapping``: each block's forward from the whole layer below, the loss
    per output block (its part of the one-hot label), ``du`` per block, the input
    gradient chained through the blocks of a layer in ascending neuron order (each
    continuing the partial it receives), ``dW`` per block. Uses the golden model's
    operations (:mod:`spikeforge.sim.golden.model`); the tests check that it gives the
    golden model's bits on any core count, and it is what each core's values are
    compared with."""
    from spikeforge.sim.golden import model
    c = params.consts
    spikes = np.asarray(spikes, dtype=bool)[None]                   # (1, T, N_in)
    L = len(mapping.layers)
    dWs = [np.zeros(np.shape(W), dtype=np.float16) for W in weights] if dWs is None else \
        [np.array(d, dtype=np.float16) for d in dWs]
    layer_s, traces, du, g_ins = [], {}, {}, [None] * L
    inp = spikes
    for l, blocks in enumerate(mapping.layers):
        parts = []
        for b in blocks:
            tr = model._forward_layer(np.asarray(weights[l])[b.lo:b.hi], inp, c)
            traces[l, b.core] = tr
            parts.append(tr.s)
        inp = np.concatenate(parts, axis=-1)
        layer_s.append(inp)
    g = {}
    for b in mapping.layers[-1]:
        local = label - b.lo if b.lo <= label < b.hi else -1         # -1: no class here
        _, _, gb = model.output_gradient(traces[L - 1, b.core].s, np.array([local]), params)
        g[b.core] = gb[:, None, :]
    for l in range(L - 1, -1, -1):
        W = np.asarray(weights[l])
        s_below = spikes if l == 0 else layer_s[l - 1]
        acc = None
        for b in mapping.layers[l]:                                  # ascending neurons
            d = model._du_layer(traces[l, b.core], g[b.core], c, params.reset_grad)
            du[l, b.core] = d
            dWs[l][b.lo:b.hi] = model._accumulate_dW(dWs[l][b.lo:b.hi].copy(), d, s_below)
            if l:
                if acc is None:
                    acc = np.zeros((1, d.shape[1], W.shape[1]), dtype=np.float16)  # +0.0
                acc = _continue_input_gradient(W[b.lo:b.hi], d, acc)
        if l:
            g_ins[l] = acc[0]
            g = {b.core: acc[..., b.lo:b.hi] for b in mapping.layers[l - 1]}
    return BlockStep(spikes=[s[0] for s in layer_s],
                     traces={k: v for k, v in traces.items()},
                     du={k: v[0] for k, v in du.items()}, g_in=g_ins, dWs=dWs)
