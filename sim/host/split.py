"""One network over the cores of a multi-core system: the split-layer schedule, driven by
the host.

:class:`SplitDevice` has the one-core :class:`~spikeforge.sim.host.device.Device` API
(load a network, run a sample forward or forward and backward with its label, update,
read weights, history, ``du`` and counters as whole layers), over the cores of a
:class:`~spikeforge.sim.host.device.SystemDevice` and the blocks of a
:class:`~spikeforge.sim.host.mapping.Mapping`. A sample runs as ``docs/multicore.md``
("Schedule") says, one phase of one layer-table entry at a time (RUN_PHASE):

1. per layer, upwards: the layer's inputs go into the input groups of every core whose
   block does not read them locally (LOAD_HISTORY), the blocks run FORWARD (on several
   cores at once), and the host reads their spikes (and window bits, which the
   input-gradient phase of the layer above needs);
2. the blocks of the output layer run LOSS, each with its part of the one-hot label;
3. per layer, downwards: each block's gradient ``g`` goes into its accumulators
   (WRITE_GRADIENTS; the output layer's are already there), the blocks run BACKWARD;
   the input gradient travels along the blocks in ascending neuron order, each core
   continuing the partial sum it receives (INPUT_GRAD, READ_GRADIENTS ``ACC``; SPEC
   section 3: the same bits on any core count), staged over chunks of time steps so that
   the cores work on different chunks at once (core ``k`` on chunk ``s - k`` in stage
   ``s``); WEIGHT_GRAD on every block;
4. UPDATE on every used core.

Every value moves through the host (the NoC carries the commands); core-to-core
transfers are the next step. ``compute_cycles`` and ``transfer_cycles`` add up the
device cycles of the phases and of the data moved, per sample.
"""

from __future__ import annotations

import numpy as np

from spikeforge.hdl.protocol import GradientKind, Phase

from .device import (DIGEST_VERSION, WEIGHTS, MapError, RunResult, SystemDevice, drive_sync,
                     plans, weights_digest)
from .mapping import Mapping, MappingError, compile_mapping

__all__ = ["SplitDevice"]


class SplitDevice:
    """A network over ``cores`` cores of the system behind ``link`` (see the module
    doc). ``config`` is the system's build configuration (the mapping's limits)."""

    def __init__(self, link, config, *, cores: int, gin_steps: int | None = None):
        """``gin_steps``: time steps per chunk of the staged input-gradient chain (default:
        about ``T / (2 * blocks)``, so a chain of ``n`` blocks takes ``2n + n - 1``
        stages); 0 runs the chain unstaged, one core after the other."""
        if gin_steps is not None and (not isinstance(gin_steps, int) or gin_steps < 0):
            raise ValueError(f"gin_steps must be a non-negative integer, not {gin_steps!r}")
        self.gin_steps = gin_steps
        self.link, self.config = link, config
        built = config.features.cores
        if not isinstance(cores, int) or isinstance(cores, bool) or not 1 <= cores <= built:
            raise ValueError(f"cores must be between 1 and the {built} built, not {cores!r}")
        self.cores = cores
        self.system = SystemDevice(link, built)
        self.info = self.system.core[0].info
        self.mapping: Mapping | None = None
        self.params = None
        self.compute_cycles = 0         # device cycles of the phases (RUN_PHASE, UPDATE)
        self.transfer_cycles = 0        # device cycles of the data the host moved
        self.phase_cycles: dict[str, int] = {}   # compute cycles by phase (and "update")
        self.core_counters: list[dict] = []
        self._spikes = None
        self._runs = 0                  # samples run since the counters were cleared

    # -- plumbing ----------------------------------------------------------------------

    def _do(self, k: int, plan, *, compute=False, phase=None):
        return drive_sync(plan, lambda cmd, payload: self._transact(k, cmd, payload, compute,
                                                                    phase))

    def _transact(self, k, cmd, payload, compute, phase):
        p = self.system.core[k].link.transact(cmd, payload)
        self._count(compute, phase)
        return p

    def _count(self, compute, phase=None):
        cycles = getattr(self.link, "last_cycles", None) or 0
        if compute:
            self.compute_cycles += cycles
            key = "update" if phase is None else phase.name.lower()
            self.phase_cycles[key] = self.phase_cycles.get(key, 0) + cycles
        else:
            self.transfer_cycles += cycles

    def _phase(self, blocks, phase: Phase, *, labels=None, cont=False) -> bool:
        """``phase`` on every block of ``blocks`` (one layer): one broadcast when they sit
        at the same entry of consecutive cores and need no label, else core by core.
        Returns whether a core reported an inf or NaN."""
        entries = {b.entry for b in blocks}
        first, count = blocks[0].core, len(blocks)
        if (labels is None and len(entries) == 1 and count > 1 and
                [b.core for b in blocks] == list(range(first, first + count))):
            e = blocks[0].entry
            flags = self.system.broadcast(lambda: plans.run_phase(phase, e, cont=cont),
                                          first=first, count=count)
            self._count(True, phase)
            return any(flags)
        bad = False
        for i, b in enumerate(blocks):
            label = None if labels is None else labels[i]
            bad |= self._do(b.core, plans.run_phase(phase, b.entry, label, cont), compute=True,
                            phase=phase)
        return bad

    def _entry(self, b):
        return self.mapping.core_maps[b.core].netmap.layers[b.entry]

    def _local(self, b) -> bool:
        return self._entry(b).in_hg != 0

    # -- the network -------------------------------------------------------------------

    def load_network(self, sizes, params, weights=None):
        """Map ``sizes`` over the cores, load each core's layer table and constants (and the
        weight blocks when given; ``dW`` is cleared)."""
        try:
            self.mapping = compile_mapping(sizes, self.config, cores=self.cores, T=params.T)
        except MappingError as exc:
            raise MapError(str(exc)) from None
        self.params = params
        for cm in self.mapping.core_maps:
            self._do(cm.core, plans.configure(self.info, cm.netmap, params))
        self._inputs = [None] * self.cores      # what each core's input groups hold
        if weights is not None:
            self.write_weights(weights)

    @property
    def sizes(self):
        return self.mapping.sizes

    def write_weights(self, weights):
        sizes = self.sizes
        for l, W in enumerate(weights):
            if W.shape != (sizes[l + 1], sizes[l]):
                raise MapError(f"weights[{l}] has shape {W.shape}, the network needs "
                               f"{(sizes[l + 1], sizes[l])}")
            for b in self.mapping.layers[l]:
                self._do(b.core, plans.write_weights(self.info, b.entry, W[b.lo:b.hi]))

    def read_weights(self, which: str = "W"):
        out = []
        for l, blocks in enumerate(self.mapping.layers):
            n_in = self.sizes[l]
            out.append(np.concatenate([
                self._do(b.core, plans.read_weights(self.info, b.entry, (b.n, n_in),
                                                    WEIGHTS[which])) for b in blocks]))
        return out

    @property
    def has_digest(self) -> bool:
        """Whether the cores answer READ_DIGEST (INFO version 3 on)."""
        return self.info.version >= DIGEST_VERSION

    def digests(self, which: str = "W") -> list[list[int]]:
        """Per layer, the digest of each of its blocks' ``W`` or ``dW`` (READ_DIGEST on the
        block's core and entry), to compare with :meth:`digests_of` the expected values."""
        return [[self._do(b.core, plans.read_digest(b.entry, WEIGHTS[which])) for b in blocks]
                for blocks in self.mapping.layers]

    def digests_of(self, weights) -> list[list[int]]:
        """What :meth:`digests` answers when the layers hold ``weights``."""
        P = self.info.lanes
        return [[weights_digest(W[b.lo:b.hi], P) for b in blocks]
                for W, blocks in zip(weights, self.mapping.layers)]

    def _read_blocks(self, l, read):
        return np.concatenate([read(b) for b in self.mapping.layers[l]], axis=-1)

    def history(self, layer: int, which: str = "s"):
        T = self.params.T
        return self._read_blocks(layer, lambda b: self._do(b.core, plans.read_history(
            self.info, which, self.info.input_groups + self._entry(b).out_g, b.n, T)))

    def du(self, layer: int):
        T = self.params.T
        return self._read_blocks(layer, lambda b: self._do(b.core, plans.read_gradients(
            self.info, GradientKind.DU, self._entry(b).out_g, b.n, T)))

    # -- a sample ----------------------------------------------------------------------

    def load_spikes(self, spikes):
        spikes = np.asarray(spikes, dtype=bool)
        if spikes.shape != (self.params.T, self.sizes[0]):
            raise MapError(f"spikes have shape {spikes.shape}, the network needs "
                           f"{(self.params.T, self.sizes[0])}")
        self._spikes = spikes

    def run(self, spikes, label=None) -> RunResult:
        self.load_spikes(spikes)
        return self.run_loaded(label)

    def _inputs_of(self, b, layer_s, layer_m, *, window: bool):
        """The inputs of block ``b`` (and their window bits) into its core's input groups,
        unless they are there already or the block reads them locally."""
        if self._local(b):
            return
        l = b.layer
        have = self._inputs[b.core]
        if have is None or have[0] != l or (window and not have[1]):
            s_in = self._spikes if l == 0 else layer_s[l - 1]
            if have is None or have[0] != l:
                self._do(b.core, plans.load_history(self.info, "s", s_in))
            if window and l:
                self._do(b.core, plans.load_history(self.info, "m", layer_m[l - 1]))
            self._inputs[b.core] = (l, window and l > 0)

    def run_loaded(self, label=None) -> RunResult:
        """The loaded sample forward (and, with ``label``, backward: ``dW`` accumulates on
        every core) by the split-layer schedule."""
        layers = self.mapping.layers
        L = len(layers)
        self._runs += 1
        layer_s, layer_m = [], []
        nonfinite = False
        self._inputs = [None] * self.cores      # the previous sample's inputs are stale
        for l, blocks in enumerate(layers):
            for b in blocks:
                self._inputs_of(b, layer_s, layer_m, window=False)
            nonfinite |= self._phase(blocks, Phase.FORWARD)
            layer_s.append(self.history(l, "s"))
            # the window bits of a layer whose next layer reads it from the input groups
            if l + 1 < L and label is not None and \
                    not all(self._local(b) for b in layers[l + 1]):
                layer_m.append(self.history(l, "m"))
            else:
                layer_m.append(None)
        out = layer_s[-1]
        counts = out.sum(axis=0).astype(np.int64)
        prediction = int(np.argmax(counts))            # the lowest index among the most
        if label is not None:
            labels = [label - b.lo if b.lo <= label < b.hi else None for b in layers[-1]]
            nonfinite |= self._phase(layers[-1], Phase.LOSS, labels=labels)
            nonfinite |= self._backward(layer_s, layer_m)
        return RunResult(counts, prediction, nonfinite)

    def _backward(self, layer_s, layer_m) -> bool:
        layers = self.mapping.layers
        bad = False
        g = None                                        # the gradient of layer l, (T, n)
        for l in range(len(layers) - 1, -1, -1):
            blocks = layers[l]
            if g is not None:
                for b in blocks:
                    self._do(b.core, plans.write_acc(self.info, g[:, b.lo:b.hi]))
            bad |= self._phase(blocks, Phase.BACKWARD)
            if l:
                for b in blocks:
                    self._inputs_of(b, layer_s, layer_m, window=True)
                g, flag = self._input_gradient(l, blocks)
                bad |= flag
            for b in blocks:
                self._inputs_of(b, layer_s, layer_m, window=False)
            bad |= self._phase(blocks, Phase.WEIGHT_GRAD)
        return bad

    def _read_acc(self, b):
        return self._do(b.core, plans.read_gradients(self.info, GradientKind.ACC, 0,
                                                     self.sizes[b.layer], self.params.T))

    def _input_gradient(self, l, blocks):
        """The input gradient of layer ``l`` (``(T, n_in)``) through its blocks in ascending
        neuron order; returns it and whether a core reported an inf or NaN."""
        T, n = self.params.T, len(blocks)
        steps = self.gin_steps if self.gin_steps is not None else max(1, -(-T // (2 * n)))
        staged = n > 1 and steps > 0 and [b.core for b in blocks] == list(range(n))
        bad = False
        if not staged:                  # one block after the other, every step
            partial = None
            for b in blocks:
                if partial is not None:
                    self._do(b.core, plans.write_acc(self.info, partial))
                bad |= self._phase([b], Phase.INPUT_GRAD, cont=partial is not None)
                partial = self._read_acc(b)
            return partial, bad
        # stage s: block k (on core k) on the steps of chunk s - k, continuing the partial
        # sums block k - 1 gave in stage s - 1; the last block's chunks are the result
        chunks = -(-T // steps)
        rows = lambda c: slice(c * steps, min(T, (c + 1) * steps))     # noqa: E731
        out = np.zeros((T, self.sizes[l]), dtype=np.float16)
        handed = {}                     # block k -> the partial sums it gave last stage
        for s in range(chunks + n - 1):
            active = [k for k in range(n) if 0 <= s - k < chunks]
            for k in active:
                if k and k - 1 in handed:
                    self._do(blocks[k].core, plans.write_acc(self.info, handed.pop(k - 1)))
            bad |= self._stage(blocks, s, steps, active)
            for k in active:
                got = self._read_acc(blocks[k])
                if k == n - 1:
                    out[rows(s - k)] = got[rows(s - k)]
                else:
                    handed[k] = got
        return out, bad

    def _stage(self, blocks, s, steps, active) -> bool:
        """Stage ``s`` of a staged input gradient on the ``active`` blocks: one broadcast to
        cores ``0 .. n-1`` when the blocks sit at the same entry (the cores outside their
        chunks answer at once), else block by block."""
        if len({b.entry for b in blocks}) == 1:
            e = blocks[0].entry
            flags = self.system.broadcast(
                lambda: plans.run_phase(Phase.INPUT_GRAD, e, stage=s, steps=steps),
                first=0, count=len(blocks))
            self._count(True, Phase.INPUT_GRAD)
            return any(flags)
        bad = False
        for k in active:
            bad |= self._do(blocks[k].core, plans.run_phase(
                Phase.INPUT_GRAD, blocks[k].entry, stage=s, steps=steps), compute=True,
                phase=Phase.INPUT_GRAD)
        return bad

    def update(self):
        if self.cores > 1:
            self.system.broadcast(plans.update, first=0, count=self.cores)
            self._count(True)
        else:
            self._do(0, plans.update(), compute=True)

    def counters(self, clear: bool = False) -> dict:
        """The counters summed over the used cores (each core's in ``core_counters``);
        ``runs`` is the samples the schedule ran (a core counts RUNs, not phases)."""
        self.core_counters = [self._do(k, plans.read_counters(clear))
                              for k in range(self.cores)]
        out = {name: sum(c[name] for c in self.core_counters)
               for name in self.core_counters[0]}
        out["runs"] = self._runs
        if clear:
            self._runs = 0
        return out
