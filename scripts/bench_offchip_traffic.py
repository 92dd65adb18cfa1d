"""Off-chip traffic per training sample: the accelerator against BPTT in PyTorch.

For each network, ``T`` and minibatch size the script counts the bytes one
training sample moves through off-chip (device) memory:

* **accelerator, weights on chip** (``spikeforge.sim.energy.offchip_bytes_per_sample``):
  the input spike bitmap (``T * N_in`` bits) and the label; nothing else per
  sample (weights, ``dW``, spike history and ``du`` stay in the core memories).
* **accelerator, weights streamed** (for a network that does not fit): also the
  fp16 weights read once per sample in the forward pass and once in the backward
  pass (layers above the first, for ``g_in``), ``dW`` read and written once per
  sample, and per minibatch the update (read ``W`` and ``dW``, write ``W``).
* **PyTorch BPTT** (a plain LIF network written here, hard reset, reset detached,
  rectangular surrogate window of SPEC section 3, rate loss), one training step
  (forward over ``T`` steps, ``backward()``, SGD step, ``zero_grad``) on the CPU,
  counted two ways:

  - *saved-tensor model* (the minimum a BPTT implementation moves, counted with
    ``torch.autograd.graph.saved_tensors_hooks``): every tensor autograd saves
    that the forward pass produced is written once (once per distinct storage) and
    read once per unpack in the backward pass; saved parameters and saved inputs
    are not written again but are read once per unpack; each layer's weights are
    read once per time step by the forward pass; the input spikes are read once
    and the labels once; the weight gradient is written once; the SGD step reads
    the weights and the gradient and writes the weights; ``zero_grad(set_to_none)``
    moves nothing.
  - *kernel model* (eager PyTorch, counted with a ``TorchDispatchMode``): every
    ATen operator reads each of its tensor operands once and writes each output
    once; views (``t``, ``expand``, ``detach``, ...) move nothing. No fusion and no
    cache: an upper bound for a GPU whose caches are cold between kernels.

  Neither model knows an A100's 40 MB L2 cache, which would hold these small
  networks whole; the seeds' 55-85 % comes from measured DRAM accesses of larger
  networks, so these ratios are estimates beside it, not the same measurement.

    python scripts/bench_offchip_traffic.py --json docs/offchip-traffic.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from spikeforge.sim.energy import offchip_bytes_per_sample

SEED_REDUCTION = (0.55, 0.85)   # Li et al. 2024: 55-85 % less DRAM traffic than an A100
NETWORKS = {"digits 64-128-10": [64, 128, 10], "wide 64-256-256-10": [64, 256, 256, 10]}


# ---------------------------------------------------------------------------
# The accelerator
# ---------------------------------------------------------------------------

def accelerator_streamed_bytes(sizes, T, batch) -> float:
    """Per-sample bytes when the weights stream from off-chip memory (fp16)."""
    nw = [sizes[l] * sizes[l + 1] for l in range(len(sizes) - 1)]
    per_sample = 2 * sum(nw)                 # W read, forward
    per_sample += 2 * sum(nw[1:])            # W read, backward (g_in above layer 0)
    per_sample += 2 * 2 * sum(nw)            # dW read and written
    per_batch = 3 * 2 * sum(nw)              # update: read W and dW, write W
    base = offchip_bytes_per_sample(sizes, T)["bytes_per_sample"]
    return base + per_sample + per_batch / batch


# ---------------------------------------------------------------------------
# PyTorch BPTT
# ---------------------------------------------------------------------------

def _torch():
    import torch
    return torch


def make_spike_fn(torch, v_th, a, beta):
    class SpikeFn(torch.autograd.Function):
        """s = u >= v_th; ds/du = beta inside (v_th - a, v_th + a), else 0."""

        @staticmethod
        def forward(ctx, u):
            ctx.save_for_backward(u)
            return (u >= v_th).to(u.dtype)

        @staticmethod
        def backward(ctx, grad):
            (u,) = ctx.saved_tensors
            window = ((u > v_th - a) & (u < v_th + a)).to(grad.dtype)
            return grad * window * beta

    return SpikeFn.apply


def bptt_loss(torch, weights, spikes, labels, *, alpha=0.25, v_th=0.25, a=0.5, beta=2.0):
    """Rate loss of a LIF network over ``spikes`` ``(T, B, N_in)``: hard reset, the
    reset detached from the graph (``reset_grad = detach``)."""
    spike = make_spike_fn(torch, v_th, a, beta)
    T, B, _ = spikes.shape
    s_in = [spikes[t] for t in range(T)]
    for W in weights:
        u = torch.zeros(B, W.shape[0], dtype=spikes.dtype)
        s = torch.zeros_like(u)
        out = []
        for t in range(T):
            x = torch.nn.functional.linear(s_in[t], W)
            u = torch.where(s.detach() > 0, x, alpha * u + x)
            s = spike(u)
            out.append(s)
        s_in = out
    rate = torch.stack(s_in).sum(0) / T
    y = torch.nn.functional.one_hot(labels, weights[-1].shape[0]).to(rate.dtype)
    return ((rate - y) ** 2).sum() / 2


def _nbytes(t):
    return t.numel() * t.element_size()


def torch_traffic(sizes, T, batch, *, dtype="float32", seed=0) -> dict:
    """Bytes one BPTT training step moves, per sample, under both counting models."""
    torch = _torch()
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    dt = getattr(torch, dtype)
    g = torch.Generator().manual_seed(seed)
    weights = [(torch.randn(sizes[l + 1], sizes[l], generator=g) / math.sqrt(sizes[l]))
               .to(dt).requires_grad_() for l in range(len(sizes) - 1)]
    spikes = (torch.rand(T, batch, sizes[0], generator=g) < 0.3).to(dt)
    labels = torch.randint(0, sizes[-1], (batch,), generator=g)
    opt = torch.optim.SGD(weights, lr=0.01)

    param_ptrs = {W.untyped_storage().data_ptr() for W in weights}
    input_ptrs = {spikes.untyped_storage().data_ptr(), labels.untyped_storage().data_ptr()}
    saved = {"written": 0, "read": 0, "written_keys": set(), "tensors": 0}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        key = (ptr, t.storage_offset(), tuple(t.shape))
        saved["tensors"] += 1
        if ptr not in param_ptrs and ptr not in input_ptrs and key not in saved["written_keys"]:
            saved["written_keys"].add(key)
            saved["written"] += _nbytes(t)
        return t

    def unpack(t):
        saved["read"] += _nbytes(t)
        return t

    class Kernels(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.phase = "forward"
            self.bytes = {}
            self.ops = {}

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if not getattr(func, "is_view", False):
                ins = [x for x in tree_flatten((args, kwargs or {}))[0]
                       if isinstance(x, torch.Tensor)]
                outs = [x for x in tree_flatten(out)[0] if isinstance(x, torch.Tensor)]
                n = sum(_nbytes(x) for x in ins) + sum(_nbytes(x) for x in outs)
                self.bytes[self.phase] = self.bytes.get(self.phase, 0) + n
                self.ops[self.phase] = self.ops.get(self.phase, 0) + 1
            return out

    kern = Kernels()
    with kern:
        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            loss = bptt_loss(torch, weights, spikes, labels)
            kern.phase = "backward"
            loss.backward()
        kern.phase = "optimizer"
        opt.step()
        opt.zero_grad(set_to_none=True)

    esz = torch.tensor([], dtype=dt).element_size()
    nw = sum(sizes[l] * sizes[l + 1] for l in range(len(sizes) - 1))
    model = {
        "saved_activations_written": saved["written"],
        "saved_tensors_read": saved["read"],
        "weights_read_forward": T * nw * esz,
        "inputs_read": _nbytes(spikes) + _nbytes(labels),
        "weight_gradient_written": nw * esz,
        "sgd_step": 3 * nw * esz,
    }
    total_saved = sum(model.values())
    total_kern = sum(kern.bytes.values())
    return {
        "dtype": dtype, "loss": float(loss.detach()),
        "saved_tensors_packed": saved["tensors"],
        "saved_model_bytes_per_sample": total_saved / batch,
        "saved_model_parts_per_sample": {k: v / batch for k, v in model.items()},
        "kernel_model_bytes_per_sample": total_kern / batch,
        "kernel_model_parts_per_sample": {k: v / batch for k, v in kern.bytes.items()},
        "kernel_ops": kern.ops,
    }


def run(networks, T, batches, dtypes) -> dict:
    rows = []
    for name, sizes in networks.items():
        for batch in batches:
            acc = offchip_bytes_per_sample(sizes, T)["bytes_per_sample"]
            stream = accelerator_streamed_bytes(sizes, T, batch)
            for dtype in dtypes:
                tt = torch_traffic(sizes, T, batch, dtype=dtype)
                row = {"network": name, "sizes": sizes, "T": T, "batch": batch,
                       "accelerator_bytes_per_sample": acc,
                       "accelerator_streamed_bytes_per_sample": stream, **tt}
                for model in ("saved", "kernel"):
                    pt = tt[f"{model}_model_bytes_per_sample"]
                    row[f"reduction_vs_{model}_model"] = 1 - acc / pt
                    row[f"streamed_reduction_vs_{model}_model"] = 1 - stream / pt
                rows.append(row)
    return {"estimate": True, "seed_reduction": list(SEED_REDUCTION), "rows": rows,
            "counting_rules": __doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, default=16)
    p.add_argument("--batches", default="1,32")
    p.add_argument("--dtypes", default="float32,float16")
    p.add_argument("--json", default="offchip_traffic.json")
    args = p.parse_args(argv)
    try:
        _torch()
    except ImportError:
        print("bench_offchip_traffic: torch is not installed (pip install torch)",
              file=sys.stderr)
        return 2
    batches = [int(b) for b in args.batches.split(",")]
    report = run(NETWORKS, args.T, batches, args.dtypes.split(","))
    tmp = args.json + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(report, fh, indent=2)
    os.replace(tmp, args.json)
    lo, hi = SEED_REDUCTION
    print(f"off-chip bytes per training sample (T = {args.T}); seed: {lo:.0%}-{hi:.0%} "
          "less DRAM traffic than an A100")
    print(f"{'network':<20} {'batch':>5} {'dtype':>8} {'accel':>7} {'streamed':>9} "
          f"{'torch saved':>12} {'torch kernels':>14} {'reduction (on chip/streamed)':>36}")
    for r in report["rows"]:
        red = (f"{r['reduction_vs_saved_model']:.2%}/{r['streamed_reduction_vs_saved_model']:.1%}"
               f" .. {r['reduction_vs_kernel_model']:.2%}/"
               f"{r['streamed_reduction_vs_kernel_model']:.1%}")
        print(f"{r['network']:<20} {r['batch']:>5} {r['dtype']:>8} "
              f"{r['accelerator_bytes_per_sample']:>7.0f} "
              f"{r['accelerator_streamed_bytes_per_sample']:>9.0f} "
              f"{r['saved_model_bytes_per_sample']:>12.0f} "
              f"{r['kernel_model_bytes_per_sample']:>14.0f} {red:>36}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
