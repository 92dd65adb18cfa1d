"""The host protocol: framing constants, status codes, CRC-8 and the internal beat layout.

Shared by the RTL (:mod:`spikeforge.hdl.host_port`, the core's command decoder)
and the Python host driver (:mod:`spikeforge.sim.host.driver`), so that nobody packs
frames by hand. The framing (byte stream, little-endian):

* request (host -> device): ``0xA5``, ``cmd``, ``len`` (2 bytes), ``payload[len]``,
  ``crc`` over ``cmd``, ``len`` and ``payload``;
* response (device -> host): ``0x5A``, ``status``, ``cmd`` (echo), ``len`` (2 bytes),
  ``payload[len]``, ``crc`` over ``status``, ``cmd``, ``len`` and ``payload``.

The CRC is CRC-8 with polynomial 0x07, initial value 0x00, no reflection and no
final xor (the "CRC-8/SMBUS" parameters; check value 0xF4 on ``b"123456789"``).

Inside the device a request travels from the host port to the command decoder,
and a response back, as a stream of :data:`BEAT_LAYOUT` beats: ``data`` (a
byte), ``first`` (1 on the ``cmd`` / ``status`` beat) and ``last`` (1 on the
final beat of the request or response).

Status codes below 0x10 belong to the transport (:class:`Status`); codes from
0x10 up are the core's and are added to :class:`Status` in this module.

The payloads of the core's commands are :mod:`amaranth.lib.data` layouts
(:data:`INFO`, :data:`SET_CONSTANTS`, :data:`SET_LAYER`, ...; fields least
significant first, so a layout's bytes are its little-endian encoding). The RTL
reads a request's arguments through views of these layouts; Python packs them
with :func:`pack` (``Layout.const``) and reads them with :func:`unpack`
(``Layout.from_bits``). Kinds and modes are :mod:`amaranth.lib.enum` enums of
one byte.
"""

from __future__ import annotations

from amaranth.lib import data, enum

__all__ = [
    "REQUEST_SYNC", "RESPONSE_SYNC", "REQUEST_HEADER", "RESPONSE_HEADER",
    "REQUEST_HEADER_BYTES", "RESPONSE_HEADER_BYTES",
    "CRC_BYTES", "MAX_LENGTH", "DEFAULT_MAX_PAYLOAD", "CRC8_POLY",
    "Status", "Command", "BEAT_LAYOUT", "crc8", "CRC8_TABLE",
    "CONSTANTS", "COUNTERS", "ResetGrad", "RunMode", "WeightKind", "HistoryKind",
    "GradientKind", "MODE_FLAGS", "INFO", "SET_CONSTANTS", "SET_LAYER", "WRITE_WEIGHTS",
    "READ_WEIGHTS", "LOAD_SPIKES", "RUN", "RUN_RESULT", "READ_HISTORY", "READ_GRADIENTS",
    "READ_COUNTERS", "Phase", "RUN_PHASE", "READ_DIGEST", "DIGEST_RESULT", "NO_LABEL", "WRITE_GRADIENTS", "LOAD_HISTORY",
    "ARGUMENT_BYTES", "pack", "unpack", "nbytes",
    "AddressMode", "ADDRESS", "ROUTE_BYTES", "ROUTE_RECORD",
    "InferenceCommand", "Readout", "ResetKind", "INFERENCE_KIND_INTEGER", "INF_COUNTERS",
    "INF_INFO", "INF_SET_NETWORK", "INF_LEAK", "INF_SET_LAYER", "INF_WRITE_WEIGHTS",
    "INF_WRITE_BIASES", "INF_LOAD_SPIKES", "INF_RUN_RESULT", "INF_READ_RESULTS",
    "INF_READ_COUNTERS",
]

#: First byte of a request frame.
REQUEST_SYNC = 0xA5
#: First byte of a response frame.
RESPONSE_SYNC = 0x5A
#: A request frame before its payload.
REQUEST_HEADER = data.StructLayout({"sync": 8, "cmd": 8, "len": 16})
#: A response frame before its payload.
RESPONSE_HEADER = data.StructLayout({"sync": 8, "status": 8, "cmd": 8, "len": 16})
#: Bytes of a request before its payload: sync, cmd, len (2).
REQUEST_HEADER_BYTES = REQUEST_HEADER.size // 8
#: Bytes of a response before its payload: sync, status, cmd, len (2).
RESPONSE_HEADER_BYTES = RESPONSE_HEADER.size // 8
#: Bytes after the payload (the CRC).
CRC_BYTES = 1
#: Largest value of the 16-bit ``len`` field.
MAX_LENGTH = 0xFFFF
#: Default payload buffer size of the host port (bytes, each direction).
DEFAULT_MAX_PAYLOAD = 1024
#: CRC-8 generator polynomial (x^8 + x^2 + x + 1), not reflected.
CRC8_POLY = 0x07


class Status(enum.IntEnum, shape=8):
    """Status byte of a response. Codes >= 0x10 are the core's."""

    #: The command was carried out; the payload is its result.
    OK = 0x00
    #: The request's CRC did not match (answered by the host port; payload empty).
    BAD_CRC = 0x01
    #: The request declared ``len`` > the port's ``max_payload`` (answered by the
    #: host port at once, which then discards ``len + 1`` further bytes), or the
    #: core's response was longer than ``max_payload`` (the port answers this
    #: status instead of it). Payload empty.
    BAD_LENGTH = 0x02
    #: No such command (answered by the command decoder).
    UNKNOWN_COMMAND = 0x03
    #: The command's payload has the wrong size or a value out of range.
    BAD_ARGUMENT = 0x04
    #: The command is not allowed in the device's present state.
    BAD_STATE = 0x05


#: One beat of the internal request / response streams.
BEAT_LAYOUT = data.StructLayout({"data": 8, "first": 1, "last": 1})


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ CRC8_POLY) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


#: CRC-8 (poly 0x07) of every single byte from a zero register.
CRC8_TABLE = _make_table()


def crc8(payload: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-8 (poly 0x07, init ``crc``, no reflection, no final xor) of ``payload``."""
    if not isinstance(crc, int) or not 0 <= crc <= 0xFF:
        raise ValueError(f"crc must be an integer from 0 to 255, not {crc!r}")
    for byte in bytes(payload):
        crc = CRC8_TABLE[crc ^ byte]
    return crc


class Command(enum.IntEnum, shape=8):
    """Command codes of the core (payloads in ``docs/host-protocol.md``)."""

    INFO = 0x20
    SET_CONSTANTS = 0x21
    SET_LAYER = 0x22
    WRITE_WEIGHTS = 0x23
    READ_WEIGHTS = 0x24
    LOAD_SPIKES = 0x25
    RUN = 0x26
    UPDATE = 0x27
    READ_HISTORY = 0x28
    READ_GRADIENTS = 0x29
    READ_COUNTERS = 0x2A
    #: Split layers over several cores (``docs/multicore.md``, "Schedule"): accumulator
    #: values (a block's gradient, an input-gradient partial) from the host
    WRITE_GRADIENTS = 0x2B
    #: the spike or window history of the input groups from the host
    LOAD_HISTORY = 0x2C
    #: one phase of one layer-table entry
    RUN_PHASE = 0x2D
    #: the CRC-32 of a layer's ``W`` or ``dW`` (:data:`READ_DIGEST`), in place of the values
    READ_DIGEST = 0x2E
    #: Multi-core systems: the payload is an :data:`ADDRESS`, then the command
    #: (1 byte) and its payload for the addressed core(s) (``hdl/system.py``).
    ROUTE = 0x30


# --- command payloads ----------------------------------------------------------------------

#: The fp16 run-time constants of SET_CONSTANTS, in the order the host loads them.
CONSTANTS = ("alpha", "v_th", "lo", "hi", "beta", "inv_T", "gscale", "neg_lr")

#: Counter names in the order READ_COUNTERS returns them (32 bits each).
COUNTERS = (
    "cycles_forward", "cycles_backward", "cycles_update",
    "fp_busy", "fp_stalled", "fp_fmas", "fp_skipped",
    "bp_busy", "bp_stalled", "bp_fmas", "bp_skipped",
    "wg_busy", "wg_stalled", "wg_fmas", "wg_skipped",
    "w_reads", "w_writes", "runs",
    "bp_skipped_out",
    # flits the core's network interface took from the NoC and gave to it (a multi-core
    # system; 0 behind the one-core top)
    "noc_flits_in", "noc_flits_out",
)


class ResetGrad(enum.Enum, shape=8):
    """``reset_grad`` mode of SET_CONSTANTS."""
    DETACH = 0
    THROUGH = 1


class RunMode(enum.Enum, shape=8):
    """Mode of RUN."""
    FORWARD = 0     # forward only
    TRAIN = 1       # forward, then backward with the label (accumulates dW)


class WeightKind(enum.Enum, shape=8):
    """Which weights READ_WEIGHTS returns."""
    W = 0
    DW = 1


class HistoryKind(enum.Enum, shape=8):
    """Which history READ_HISTORY returns (one bit per time step)."""
    SPIKES = 0
    WINDOW = 1
    NONZERO = 2     # du != 0


class GradientKind(enum.Enum, shape=8):
    """Which per-step values READ_GRADIENTS returns (WRITE_GRADIENTS writes ``ACC`` only)."""
    DU = 0
    U = 1           # potentials (``through`` builds only)
    #: the accumulators ``acc[t, group]``: the gradient ``g`` of a block before its
    #: backward phase, the input gradient ``g_in`` (a partial sum) after its
    #: input-gradient phase; a word not written since the last phase that starts from
    #: +0 (forward accumulation, input gradient without ``cont``) reads +0
    ACC = 2


class Phase(enum.Enum, shape=8):
    """What RUN_PHASE runs on one layer-table entry (the steps of ``docs/core.md``)."""
    FORWARD = 0         # accumulate, LIF: spikes, window bits (and potentials)
    LOSS = 1            # the output gradient g of the entry's neurons, into acc
    BACKWARD = 2        # backward terms and du, t descending, from g in acc
    INPUT_GRAD = 3      # g_in of the entry's inputs into acc (from +0, or continued)
    WEIGHT_GRAD = 4     # dW += du over the active inputs


#: The build's modes in INFO.
MODE_FLAGS = data.StructLayout({"detach": 1, "through": 1, "inference_only": 1, "reserved": 5})

#: Response of INFO.
INFO = data.StructLayout({
    "version": 8,
    "lanes": 16,
    "neurons_per_core": 16,
    "max_fan_in": 16,
    "max_time_steps": 8,
    "max_layers": 8,
    "modes": MODE_FLAGS,
    "fma_stages": 8,
    "weight_depth": 24,         # weight words per bank
    "input_groups": 16,
    "neuron_groups": 16,
    "max_payload": 16,
    "counters": 8,
})

#: Request of SET_CONSTANTS.
SET_CONSTANTS = data.StructLayout({
    "T": 16,
    "layers": 8,
    "reset_grad": ResetGrad,
    "wcount": 32,               # weight words used per bank
    "constants": data.StructLayout({name: 16 for name in CONSTANTS}),   # fp16 patterns
})

#: Request of SET_LAYER.
SET_LAYER = data.StructLayout({
    "layer": 8,
    "n_in": 16,
    "n_out": 16,
    "in_hg": 16,                # history group of the inputs
    "out_g": 16,                # neuron group of the neurons
    "wbase": 32,                # first weight address
})

#: Header of WRITE_WEIGHTS (the fp16 weights from ``(i, j)`` on, row-major, follow).
WRITE_WEIGHTS = data.StructLayout({"layer": 8, "i": 16, "j": 16})

#: Request of READ_WEIGHTS.
READ_WEIGHTS = data.StructLayout({"layer": 8, "i": 16, "j": 16, "which": WeightKind,
                                  "count": 16})

#: Header of LOAD_SPIKES (one 16-bit word per input neuron follows: bit t = step t).
LOAD_SPIKES = data.StructLayout({"first": 16})

#: Request of RUN.
RUN = data.StructLayout({"mode": RunMode, "label": 16})

#: Tail of RUN's response (after one 16-bit spike count per output neuron).
RUN_RESULT = data.StructLayout({
    "prediction": 16,           # most spikes, lowest index on ties
    "flags": data.StructLayout({"nonfinite": 1, "reserved": 7}),
})

#: Request of RUN_PHASE. ``label``: the class relative to the entry's first neuron
#: (LOSS), or :data:`NO_LABEL` when the class is not among the entry's neurons (every
#: target 0); ``cont`` (INPUT_GRAD): 1 continues the partial sums loaded into ``acc``
#: by WRITE_GRADIENTS, 0 starts from +0.0. ``steps`` (INPUT_GRAD): 0 runs every time
#: step; ``steps`` = C > 0 runs stage ``stage`` of the staged chain: the core at chain
#: position ``p`` (its index in the system: block ``p`` of a layer sits on core ``p``)
#: computes the steps ``(stage - p) * C .. + C - 1`` (none when outside ``0 .. T-1``),
#: continuing the loaded partial sums when ``p > 0`` and from +0.0 on core 0 (``cont``
#: is then not used). The response is a :data:`RUN_RESULT`.
RUN_PHASE = data.StructLayout({"phase": Phase, "entry": 8, "label": 16, "cont": 8,
                               "stage": 8, "steps": 8})

#: ``label`` of a RUN_PHASE whose entry does not hold the class.
NO_LABEL = 0xFFFF

#: Header of WRITE_GRADIENTS (``count * T`` fp16 values follow, neuron-major: value
#: ``k`` goes to neuron ``group * lanes + first + k // T`` at step ``k % T``).
WRITE_GRADIENTS = data.StructLayout({"which": GradientKind, "group": 16, "first": 16,
                                     "count": 16})

#: Header of LOAD_HISTORY (one 16-bit word per input neuron follows, bit t = step t,
#: into the input groups; ``which`` SPIKES or WINDOW).
LOAD_HISTORY = data.StructLayout({"which": HistoryKind, "first": 16})

#: Request of READ_HISTORY.
READ_HISTORY = data.StructLayout({"which": HistoryKind, "group": 16, "first": 16, "count": 16})

#: Request of READ_GRADIENTS.
READ_GRADIENTS = data.StructLayout({"which": GradientKind, "group": 16, "first": 16,
                                    "count": 16})

#: Request of READ_DIGEST: the digest of every ``W`` (or ``dW``) word of layer ``layer``.
#: The words go in the order the banks hold them: weight address ``wbase + b * n_in + j``
#: for neuron group ``b`` ascending, input ``j`` ascending, and at each address banks
#: ``k = 0 .. P-1``, where bank ``k`` holds neuron ``b * P + (k - j) mod P`` (a neuron past
#: ``n_out`` counts as the word 0x0000); the digest is the CRC-32 of zlib of these words
#: as little-endian bytes (``spikeforge.sim.host.device.weights_digest``).
READ_DIGEST = data.StructLayout({"layer": 8, "which": WeightKind})

#: Response of READ_DIGEST.
DIGEST_RESULT = data.StructLayout({"crc": 32})

#: Request of READ_COUNTERS.
READ_COUNTERS = data.StructLayout({"clear": 8})   # 1: zero the counters after reading


class AddressMode(enum.Enum, shape=8):
    """Which cores a ROUTE request goes to."""
    CORE = 0        # core ``first`` (the response is that core's, unchanged)
    ALL = 1         # every core (one record per core in the response)
    RANGE = 2       # cores ``first`` .. ``first + count - 1`` (one record per core)


#: Start of a ROUTE payload: the destination; the command byte and its payload follow.
#: Cores are numbered row-major over the mesh (core ``y * cols + x``).
ADDRESS = data.StructLayout({"mode": AddressMode, "first": 16, "count": 16})

#: Header of one core's record in the response to a ROUTE to ALL or a RANGE (the
#: core's payload, ``len`` bytes, follows; records in ascending core order).
ROUTE_RECORD = data.StructLayout({"status": 8, "len": 16})


def nbytes(layout: data.Layout) -> int:
    """Bytes of a payload layout."""
    return layout.size // 8


#: Bytes of the longest fixed request arguments (the core keeps this many).
ARGUMENT_BYTES = max(nbytes(layout) for layout in (
    SET_CONSTANTS, SET_LAYER, WRITE_WEIGHTS, READ_WEIGHTS, LOAD_SPIKES, RUN, READ_HISTORY,
    READ_GRADIENTS, READ_COUNTERS, RUN_PHASE, WRITE_GRADIENTS, LOAD_HISTORY, READ_DIGEST))

#: Bytes a ROUTE adds in front of the routed command's payload (the address, the command).
ROUTE_BYTES = nbytes(ADDRESS) + 1


def pack(layout: data.Layout, fields: dict) -> bytes:
    """The little-endian bytes of ``fields`` in ``layout`` (through ``Layout.const``)."""
    return layout.const(fields).as_value().value.to_bytes(nbytes(layout), "little")


def unpack(layout: data.Layout, payload: bytes):
    """A view of the first ``nbytes(layout)`` bytes of ``payload`` (through
    ``Layout.from_bits``); raises ``ValueError`` when ``payload`` is shorter."""
    size = nbytes(layout)
    if len(payload) < size:
        raise ValueError(f"a payload of this layout has at least {size} bytes, "
                         f"not {len(payload)}")
    return layout.from_bits(int.from_bytes(bytes(payload[:size]), "little"))


# --- the integer inference core (SPEC section 8, hdl/inference/) ----------------------------
# Same framing, host port and status codes; its own command codes and payloads
# (docs/inference.md, "The RTL inference core").


class InferenceCommand(enum.IntEnum, shape=8):
    """Command codes of the integer inference core."""

    INFO = 0x40             # -> INF_INFO
    SET_NETWORK = 0x41      # INF_SET_NETWORK
    SET_LAYER = 0x42        # INF_SET_LAYER
    WRITE_WEIGHTS = 0x43    # INF_WRITE_WEIGHTS, then 16-bit weight words
    WRITE_BIASES = 0x44     # INF_WRITE_BIASES, then 16-bit biases
    LOAD_SPIKES = 0x45      # INF_LOAD_SPIKES, then 16-bit pieces of the input bitmaps
    RUN = 0x46              # -> INF_RUN_RESULT
    READ_RESULTS = 0x47     # INF_READ_RESULTS -> 16-bit results
    READ_COUNTERS = 0x48    # INF_READ_COUNTERS -> 32-bit counters


class Readout(enum.Enum, shape=8):
    """Readout of the last layer (SPEC section 8)."""
    SPIKES = 0      # spike counts; the last layer fires and resets
    POTENTIAL = 1   # final potentials; the last layer never fires nor resets


class ResetKind(enum.Enum, shape=8):
    """Reset of a neuron that spiked."""
    SUBTRACT = 0    # v' - theta
    ZERO = 1        # 0


#: Kind byte of INF_INFO.
INFERENCE_KIND_INTEGER = 1

#: Counter names in the order the inference core's READ_COUNTERS returns them (32 bits each).
INF_COUNTERS = ("cycles", "busy", "sops", "beats", "updates", "runs")

#: Response of the inference core's INFO.
INF_INFO = data.StructLayout({
    "version": 8,
    "kind": 8,                  # INFERENCE_KIND_INTEGER
    "lanes": 16,
    "weight_bits": 8,           # B of the build (networks with fewer bits run too)
    "potential_bits": 8,        # Q of the build (the run-time Q may be smaller)
    "weights_per_word": 8,      # 16 // B
    "group": 16,                # neurons updated together: lanes * weights_per_word
    "max_neurons": 16,          # most neurons of one layer
    "max_fan_in": 16,
    "max_time_steps": 16,
    "max_layers": 8,
    "weight_depth": 24,         # weight words per lane
    "bias_rows": 16,            # rows of `group` biases
    "step_words": 8,            # bitmap words (of `group` bits) per time step
    "max_payload": 16,
    "counters": 8,
})

#: Request of the inference core's SET_NETWORK.
INF_SET_NETWORK = data.StructLayout({"T": 16, "layers": 8, "Q": 8, "readout": Readout})

#: Leak of a layer: ``v - (v >> shift)``, or integrate-and-fire when ``none``.
INF_LEAK = data.StructLayout({"shift": 4, "none": 1, "reserved": 3})

#: Request of the inference core's SET_LAYER. Neuron ``i`` of the layer is slot
#: ``i % group`` of group ``i // group``; its weight for input ``j`` is lane
#: ``(i % group) // weights_per_word``, sub-word ``i % weights_per_word``, at
#: address ``wbase + (i // group) * n_in + j``; its bias is in row ``bbase + i // group``.
INF_SET_LAYER = data.StructLayout({
    "layer": 8,
    "n_in": 16,
    "n_out": 16,
    "wbase": 32,
    "bbase": 16,
    "theta": 32,                # signed Q-bit, > 0
    "leak": INF_LEAK,
    "reset": ResetKind,
})

#: Header of WRITE_WEIGHTS: 16-bit words follow; word ``k`` goes to lane ``k % lanes``
#: at address ``addr + k // lanes`` (sub-word ``p`` holds bits ``p*B .. p*B + B - 1``).
INF_WRITE_WEIGHTS = data.StructLayout({"addr": 32})

#: Header of WRITE_BIASES: 16-bit two's complement biases follow; bias ``k`` goes to
#: slot ``k % group`` of row ``row + k // group``.
INF_WRITE_BIASES = data.StructLayout({"row": 16})

#: Header of LOAD_SPIKES: 16-bit pieces of the input bitmaps follow; piece ``k`` is
#: bits ``16 * (p % (group / 16)) ..`` of word ``p // (group / 16)``, ``p = piece + k``,
#: and word ``t * step_words + w`` holds inputs ``w * group ..`` of step ``t``.
INF_LOAD_SPIKES = data.StructLayout({"piece": 16})

#: Response of the inference core's RUN.
INF_RUN_RESULT = data.StructLayout({"cycles": 32, "sops": 32})

#: Request of READ_RESULTS: ``count`` 16-bit results (spike counts, or final
#: potentials sign-extended) of the last layer's neurons from ``first`` on.
INF_READ_RESULTS = data.StructLayout({"first": 16, "count": 16})

#: Request of the inference core's READ_COUNTERS.
INF_READ_COUNTERS = data.StructLayout({"clear": 8})   # 1: zero the counters after reading
