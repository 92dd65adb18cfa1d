"""cocotb check of a core (request/response beat streams) against the golden model.

Arguments (``harness.cocotb_args()``): ``sizes`` (layer sizes), ``params``
(golden ``Params`` fields), ``samples`` (list of ``{"density", "label"}``),
``seed``, ``update_every`` (samples per minibatch). After every sample the
spike and window history, ``du`` and ``dW`` of every layer are compared bit for
bit with :mod:`spikeforge.sim.golden`; after every update the weights.
"""

from __future__ import annotations

import numpy as np

import cocotb
from cocotb.triggers import RisingEdge

from spikeforge.sim import golden
from spikeforge.sim.accelerator import NetworkMap, drive_async, plans
from spikeforge.sim.cocotb_util import reset, start_clock
from spikeforge.sim.harness import cocotb_args
from spikeforge.sim.rtl_compare import first_difference


class CoreLink:
    """Drives the core's ``req`` and collects ``rsp`` (one request at a time)."""

    def __init__(self, dut):
        self.dut = dut
        dut.req__valid.value = 0
        dut.rsp__ready.value = 1

    async def transact(self, cmd: int, payload: bytes) -> bytes:
        dut = self.dut
        beats = [(cmd, 1, len(payload) == 0)]
        beats += [(b, 0, i == len(payload) - 1) for i, b in enumerate(payload)]
        for data, first, last in beats:
            dut.req__payload.value = data | (first << 8) | (int(last) << 9)
            dut.req__valid.value = 1
            while True:
                await RisingEdge(dut.clk)
                if int(dut.req__ready.value):
                    break
        dut.req__valid.value = 0
        out = []
        cycles = 0
        while True:
            await RisingEdge(dut.clk)
            cycles += 1
            if cycles > 5_000_000:
                raise TimeoutError(f"no response to command 0x{cmd:02x}")
            if int(dut.rsp__valid.value):
                v = int(dut.rsp__payload.value)
                out.append(v & 0xFF)
                if (v >> 9) & 1:
                    break
        status = out[0]
        if status != 0:
            raise AssertionError(f"command 0x{cmd:02x} answered status 0x{status:02x}")
        return bytes(out[1:])


@cocotb.test()
async def core_matches_golden(dut):
    args = cocotb_args()
    start_clock(dut)
    await reset(dut)
    link = CoreLink(dut)

    async def do(plan):
        return await drive_async(plan, link.transact)

    info = await do(plans.info())
    sizes = args["sizes"]
    params = golden.Params(**args["params"])
    rng = np.random.default_rng(args.get("seed", 0))
    weights = [(rng.uniform(-1, 1, size=(o, i)) * args.get("wscale", 1.0)).astype(np.float16)
               for i, o in zip(sizes[:-1], sizes[1:])]
    netmap = NetworkMap.build(sizes, info)
    await do(plans.configure(info, netmap, params))
    for l, W in enumerate(weights):
        await do(plans.write_weights(info, l, W))
    got = [await do(plans.read_weights(info, l, W.shape)) for l, W in enumerate(weights)]
    for l, W in enumerate(weights):
        first_difference(f"layer {l} W after loading", got[l], W, kind="W")
    dWs = golden.zero_grads(weights)
    every = args.get("update_every", 1)
    T = params.T
    for k, sample in enumerate(args["samples"]):
        spikes = rng.random((T, sizes[0])) < sample["density"]
        label = sample.get("label")
        await do(plans.load_spikes(info, spikes))
        res = await do(plans.run(label))
        if args.get("debug"):
            print("counters", await do(plans.read_counters(True)))
        traces = golden.forward(weights, spikes, params)
        counts = golden.spike_counts(traces[-1].s)
        inp = await do(plans.read_history(info, "s", 0, sizes[0], T))
        first_difference(f"sample {k} input spikes", inp, spikes, kind="trace")
        for l, lm in enumerate(netmap.layers):
            for which, want in (("m", traces[l].m), ("s", traces[l].s)):
                h = await do(plans.read_history(info, which, netmap.out_hg(l), lm.n_out, T))
                if args.get("debug") and (h != want).any():
                    print("hw", which, h.astype(int), "want", want.astype(int), "u", traces[l].u,
                          sep="\n")
                first_difference(f"sample {k} layer {l} {which}", h, want, kind="trace")
        assert list(res.counts) == list(counts), f"sample {k}: counts {res.counts} != {counts}"
        assert res.prediction == int(np.argmax(counts)), f"sample {k}: prediction"
        if label is None:
            continue
        grads = golden.backward(weights, traces, spikes, label, params, dWs)
        for l, lm in enumerate(netmap.layers):
            du = await do(plans.read_gradients(info, 0, lm.out_g, lm.n_out, T))
            first_difference(f"sample {k} layer {l} du", du, grads[l].du, kind="trace")
            dw = await do(plans.read_weights(info, l, weights[l].shape, 1))
            first_difference(f"sample {k} layer {l} dW", dw, grads[l].dW, kind="W")
        dWs = [gr.dW for gr in grads]
        if (k + 1) % every == 0:
            await do(plans.update())
            weights = golden.update(weights, dWs, params)
            dWs = golden.zero_grads(weights)
            for l, W in enumerate(weights):
                got = await do(plans.read_weights(info, l, W.shape))
                first_difference(f"sample {k} layer {l} W after update", got, W, kind="W")
    counters = await do(plans.read_counters(False))
    assert args.get("debug") or counters["runs"] == len(args["samples"]), counters
