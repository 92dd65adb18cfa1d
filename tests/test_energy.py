"""The energy model (sim/energy.py) on hand-worked event and counter sets.

Expected energies are worked out here from a table of round constants (given as a
user's JSON), one event kind at a time, not from the model's own output.
"""

import json

import numpy as np
import pytest

from spikeforge.sim import energy as E

# Round constants: no technology scaling (node = reference), fp16 add 1 pJ, mul 2 pJ
# (FMA 3 pJ), a 16-bit access of an 8 KB bank = 4 pJ * 16/64 = 1 pJ, of a 2 KB bank
# 1 pJ * sqrt(1/4) = 0.5 pJ; registers 0.5 pJ per lane-cycle; static 0.5 * (3 + 0.5)
# = 1.75 pJ per lane-cycle; DRAM 10 pJ/byte; a 32-bit flit over 2 mm of 0.1 pJ/bit/mm
# wire = 6.4 pJ plus a write and a read of two 16-bit words of an 8 KB buffer = 4 pJ.
ROUND = {
    "node_nm": 45, "reference_node_nm": 45, "fp16_add_pj": 1.0, "fp16_mul_pj": 2.0,
    "int8_add_pj": 0.2, "int32_add_pj": 0.6, "sram_64b_pj_at_8kb": 4.0,
    "sram_reference_bytes": 8192, "sram_capacity_exponent": 0.5,
    "sram_write_over_read": 1.0, "register_pj_per_lane_cycle": 0.5,
    "dram_pj_per_byte": 10.0, "wire_pj_per_bit_mm": 0.1, "hop_mm": 2.0,
    "static_fraction": 0.5, "clock_mhz": 100.0,
}
PJ = 1e-12


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "round.json"
    path.write_text(json.dumps(ROUND))
    return E.EnergyModel.from_json(path)


def _geo():
    return {"lanes": 2, "memories": {"w": 8192, "acc": 2048, "du": 2048},
            "flit_bits": 32, "router_buffer_bytes": 8192}


def test_round_constants_give_the_hand_worked_event_energies(model):
    assert model.scale == 1.0
    assert model.fma == pytest.approx(3.0)
    assert model.add == pytest.approx(1.0)
    assert model.sram16(8192) == pytest.approx(1.0)
    assert model.sram16(2048) == pytest.approx(0.5)
    assert model.sram16(32768) == pytest.approx(2.0)
    assert model.flit_hop(32, 8192) == pytest.approx(6.4 + 4.0)
    assert model.overhead_lane_cycle == pytest.approx(0.5)
    assert model.static_lane_cycle == pytest.approx(1.75)
    # integer add linear in width through 0.2 pJ (8 bits) and 0.6 pJ (32 bits)
    assert model.int_add(8) == pytest.approx(0.2)
    assert model.int_add(32) == pytest.approx(0.6)
    assert model.int_add(16) == pytest.approx(0.2 + 8 * 0.4 / 24)


def test_one_phase_totals_shares_and_tflops_per_watt(model):
    core = dict(_geo(), phases={"forward": {
        "fma": 10, "add": 20, "reads": {"w": 8}, "writes": {"acc": 4}, "busy_cycles": 5,
        "cycles": 6, "dram_bytes": 3, "flit_hops": 2, "skipped_add": 40}})
    r = E.estimate(core, samples=2, model=model)
    want = {"fp16_fma": 30.0, "fp16_add": 20.0, "sram_read": 8.0, "sram_write": 2.0,
            "register_control": 5 * 2 * 0.5, "static": 6 * 2 * 1.75, "dram": 30.0,
            "noc": 2 * 10.4, "int_add": 0.0}
    total = sum(want.values())                       # 136.8 pJ
    assert total == pytest.approx(136.8)
    assert r["joules_total"] == pytest.approx(total * PJ)
    assert r["joules_per_sample"] == pytest.approx(total / 2 * PJ)
    for k, v in want.items():
        assert r["joules_per_sample_by_kind"][k] == pytest.approx(v / 2 * PJ), k
        assert r["shares"][k] == pytest.approx(v / total), k
    assert sum(r["shares"].values()) == pytest.approx(1.0)
    assert r["per_phase_joules_per_sample"] == {"forward": pytest.approx(total / 2 * PJ)}
    assert r["per_memory_joules_per_sample"] == {"w": pytest.approx(4 * PJ),
                                                 "acc": pytest.approx(1 * PJ)}
    # 10 FMAs = 20 FLOPs, 20 adds = 20 FLOPs: 40 FLOPs over 136.8 pJ
    assert r["flops_per_sample"] == 20
    assert r["tflops_per_watt"] == pytest.approx(40 / (total * PJ) / 1e12)
    assert r["effective_tflops_per_watt"] == pytest.approx(80 / (total * PJ) / 1e12)
    assert r["tsops_per_watt"] is None
    # 6 cycles at 100 MHz for 2 samples
    assert r["seconds_per_sample"] == pytest.approx(3e-8)
    assert r["watts"] == pytest.approx(total * PJ / 6e-8)
    line = E.summary_line(r)
    assert "0.0684 nJ/sample" in line and "TFLOPS/W" in line


def test_integer_sops_give_tsops_per_watt(model):
    core = {"lanes": 4, "memories": {"w": 8192}, "lane_op": "int_add", "lane_bits": 8,
            "phases": {"forward": {"int_add": 100, "int_other": 20, "int_add_bits": 8,
                                   "reads": {"w": 100}, "cycles": 25, "busy_cycles": 25}}}
    r = E.estimate(core, samples=1, model=model)
    # static: 0.5 * (8-bit add 0.2 + registers 0.5) per lane-cycle
    total = 120 * 0.2 + 100 * 1.0 + 25 * 4 * 0.5 + 25 * 4 * 0.5 * (0.2 + 0.5)
    assert r["joules_total"] == pytest.approx(total * PJ)
    assert r["tsops_per_watt"] == pytest.approx(100 / (total * PJ) / 1e12)
    assert r["tflops_per_watt"] is None
    assert r["shares"]["int_add"] == pytest.approx(24 / total)


def test_several_cores_and_phases_add_up(model):
    a = dict(_geo(), phases={"forward": {"add": 4}, "backward": {"fma": 2}})
    b = dict(_geo(), phases={"update": {"fma": 1}, "forward": {"add": 1}})
    r = E.estimate([a, b], samples=1, model=model)
    assert r["per_core_joules_per_sample"] == [pytest.approx(10 * PJ), pytest.approx(4 * PJ)]
    assert r["per_phase_joules_per_sample"] == {"forward": pytest.approx(5 * PJ),
                                                "backward": pytest.approx(6 * PJ),
                                                "update": pytest.approx(3 * PJ)}
    assert r["joules_total"] == pytest.approx(14 * PJ)


def test_zero_work_gives_zero_energy_and_no_efficiency(model):
    r = E.estimate(dict(_geo(), phases={}), samples=3, model=model)
    assert r["joules_total"] == 0 and r["joules_per_sample"] == 0
    assert set(r["shares"].values()) == {0.0}
    assert r["tflops_per_watt"] is None and r["tsops_per_watt"] is None
    assert r["watts"] is None
    r = E.estimate(dict(_geo(), phases={"forward": {"cycles": 10}}), samples=1, model=model)
    assert r["shares"]["static"] == pytest.approx(1.0)     # idle: only static energy
    assert r["tflops_per_watt"] is None
    E.summary_line(r)


def _counters(**kw):
    c = dict.fromkeys(("cycles_forward", "cycles_backward", "cycles_update", "fp_busy",
                       "fp_stalled", "fp_fmas", "fp_skipped", "bp_busy", "bp_stalled",
                       "bp_fmas", "bp_skipped", "wg_busy", "wg_stalled", "wg_fmas",
                       "wg_skipped", "w_reads", "w_writes", "runs"), 0)
    c.update(kw)
    return c


def test_core_counters_are_split_into_operations_by_the_loops(model):
    # network 4-3-2, T = 2, one training run and one update, 2 lanes:
    #   LIF lanes T * (3 + 2) = 10, so 22 FP lanes = 12 forward adds + 10 LIF;
    #   BP: loss (T + 2) * 2 = 8, term and du 2 * T * 5 = 20, so 34 BP lanes leave 6 g_in;
    #   WG: 39 W/dW writes - 23 WG lanes = 16 update lanes, 7 dW adds;
    #   W/dW reads: 2 * 16 by the update, 25 by the 12 + 6 + 7 W-reading lanes.
    c = _counters(runs=1, fp_fmas=22, bp_fmas=34, wg_fmas=23, w_writes=39, w_reads=57,
                  cycles_forward=14, cycles_backward=40, cycles_update=8, fp_busy=12,
                  bp_busy=20, wg_busy=15, fp_skipped=5, bp_skipped=3, wg_skipped=2)
    ev = E.core_events(c, geometry=_geo(), sizes=[4, 3, 2], T=2, dram_bytes=5)
    f, b, u = (ev["phases"][p] for p in ("forward", "backward", "update"))
    assert (f["add"], f["fma"]) == (12, 10)
    assert (b["add"], b["fma"]) == (7, 8 + 10 + 10 + 6)
    assert (u["add"], u["fma"]) == (0, 16)
    assert f["reads"]["w"] == pytest.approx(12) and b["reads"]["w"] == pytest.approx(13)
    assert (u["reads"]["w"], u["writes"]["w"]) == (32, 32) and b["writes"]["w"] == 7
    # local words: adds 1 read + 1 write of acc, LIF 2 reads + 1 write of acc
    assert f["reads"]["acc"] == 12 + 2 * 10 and f["writes"]["acc"] == 12 + 10
    # loss 1 + 1 acc, term 1 acc read + 1 du write, du 2 du reads + 1 write,
    # g_in 1 + 1 acc, dW add 1 du read
    assert b["reads"]["acc"] == 8 + 10 + 6 and b["writes"]["acc"] == 8 + 6
    assert b["reads"]["du"] == 2 * 10 + 7 and b["writes"]["du"] == 10 + 10
    assert (f["busy_cycles"], b["busy_cycles"], u["busy_cycles"]) == (12, 20 + 15 - 8, 8)
    assert f["dram_bytes"] == 5
    r = E.estimate(ev, samples=1, model=model)
    pj = {
        "forward": 10 * 3 + 12 * 1 + 12 * 1 + (32 + 22) * 0.5 + 12 * 2 * 0.5
                   + 14 * 2 * 1.75 + 5 * 10,
        "backward": 34 * 3 + 7 * 1 + 13 * 1 + 7 * 1 + (24 + 14 + 27 + 20) * 0.5
                    + 27 * 2 * 0.5 + 40 * 2 * 1.75,
        "update": 16 * 3 + 64 * 1 + 8 * 2 * 0.5 + 8 * 2 * 1.75,
    }
    for p, v in pj.items():
        assert r["per_phase_joules_per_sample"][p] == pytest.approx(v * PJ), p
    flops = 2 * (10 + 34 + 16) + 12 + 7
    assert r["tflops_per_watt"] == pytest.approx(flops / (sum(pj.values()) * PJ) / 1e12)
    skipped = 5 + 2 * 3 + 2
    assert r["effective_tflops_per_watt"] == pytest.approx(
        (flops + skipped) / (sum(pj.values()) * PJ) / 1e12)


def test_counters_that_do_not_fit_the_network_are_refused():
    c = _counters(runs=1, fp_fmas=5)          # fewer FP lanes than the LIF pass alone
    with pytest.raises(E.EnergyError, match="forward adds"):
        E.core_events(c, geometry=_geo(), sizes=[4, 3, 2], T=2)
    with pytest.raises(E.EnergyError, match="lack 'runs'"):
        E.core_events({k: v for k, v in _counters().items() if k != "runs"}, geometry=_geo(), sizes=[4, 3, 2], T=2)
    with pytest.raises(E.EnergyError, match="sizes"):
        E.core_events(_counters(), geometry=_geo(), sizes=[4], T=2)


def test_contract_work_counts_by_hand():
    # 3-2-1, T = 2; inputs active {0, 2} then {1}; hidden spikes: neuron 0 at t = 0;
    # output spike at t = 1
    spikes = np.array([[1, 0, 1], [0, 1, 0]], bool)
    s = [np.array([[1, 0], [0, 0]], bool), np.array([[0], [1]], bool)]
    m = [np.array([[1, 1], [0, 1]], bool), np.array([[1], [1]], bool)]
    nz = [np.array([[1, 0], [0, 1]], bool), np.array([[1], [0]], bool)]
    w = E.contract_work([3, 2, 1], spikes, s, m, nz, update=True)
    assert w["fp_add"] == (2 + 1) * 2 + (1 + 0) * 1
    assert w["lif"] == (4 - 1) + 2            # hidden neuron 0 reset at t = 1
    assert w["loss"] == 3
    assert w["term"] == 3 + 2
    assert w["du"] == (4 - 1) + (2 - 1)
    assert w["gin"] == 1 * 2                  # layer 1: one non-zero du x 2 inputs
    assert w["wg_add"] == (1 * 2 + 1 * 1) + (1 * 1 + 0 * 0)
    assert w["upd"] == 6 + 2
    d = E.dense_work([3, 2, 1], 2, update=True)
    assert d["fp_add"] == 2 * (6 + 2) and d["gin"] == 2 * 2 and d["wg_add"] == 2 * 8
    assert d["lif"] == d["term"] == d["du"] == 2 * 3


def test_accelerator_offchip_bytes():
    r = E.offchip_bytes_per_sample([64, 128, 10], 16)
    assert r["input_bytes"] == 16 * 64 // 8 and r["label_bytes"] == 1
    assert r["bytes_per_sample"] == 129
    assert r["per_run_bytes"] == 4 * (64 * 128 + 128 * 10)
    r = E.offchip_bytes_per_sample([64, 128, 10], 16, input_format="pixels", train=False)
    assert r["bytes_per_sample"] == 64
    assert E.offchip_bytes_per_sample([3, 2], 3)["input_bytes"] == 2   # 9 bits


def test_default_table_is_scaled_from_45_to_28_nm():
    m = E.EnergyModel()
    assert m.scale == pytest.approx(28 / 45)
    assert m.fma == pytest.approx((1.1 + 0.4) * 28 / 45)
    assert m.sram16(8192) == pytest.approx(10 * 16 / 64 * 28 / 45)
    assert m.dram_byte == pytest.approx(1300 / 8)          # not scaled
    for k, c in m.constants.items():
        assert c.source and c.unit, k


def test_user_json_replaces_entries_and_keeps_the_rest(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"fp16_add_pj": 0.5,
                             "dram_pj_per_byte": {"value": 31.2, "source": "HBM2, 3.9 pJ/bit"}}))
    t = E.load_constants(p)
    assert t["fp16_add_pj"].value == 0.5 and "c.json" in t["fp16_add_pj"].source
    assert t["dram_pj_per_byte"].source == "HBM2, 3.9 pJ/bit"
    assert t["fp16_mul_pj"] == E.DEFAULT_CONSTANTS["fp16_mul_pj"]
    assert E.EnergyModel(t).add == pytest.approx(0.5 * 28 / 45)


@pytest.mark.parametrize("content, match", [
    ('{"fp16_fma_pj": 1}', "unknown energy constant 'fp16_fma_pj'"),
    ('{"fp16_add_pj": -1}', "'fp16_add_pj' must not be negative"),
    ('{"node_nm": 0}', "'node_nm' must be greater than 0"),
    ('{"fp16_add_pj": "0.4"}', "'fp16_add_pj' must be a number"),
    ('{"fp16_add_pj": true}', "'fp16_add_pj' must be a number"),
    ('{"hop_mm": {"val": 1}}', "'hop_mm' must be a number or an object"),
    ('{"hop_mm": {"value": 1, "source": 3}}', "source of energy constant 'hop_mm'"),
    ('[1, 2]', "must hold a JSON object"),
    ('{"fp16_add_pj": 0.4,', "is not valid JSON"),
    ('{"fp16_add_pj": NaN}', "'fp16_add_pj' must be finite"),
])
def test_bad_user_json_gets_one_sentence(tmp_path, content, match):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(E.EnergyError, match=match) as exc:
        E.load_constants(p)
    msg = str(exc.value)
    assert "\n" not in msg and msg.count(". ") == 0


def test_missing_file_and_bad_events_are_refused(tmp_path, model):
    with pytest.raises(E.EnergyError, match="does not exist"):
        E.load_constants(tmp_path / "none.json")
    with pytest.raises(E.EnergyError, match="unknown event key"):
        E.estimate(dict(_geo(), phases={"forward": {"fmas": 1}}), samples=1, model=model)
    with pytest.raises(E.EnergyError, match="memory 'x'"):
        E.estimate(dict(_geo(), phases={"forward": {"reads": {"x": 1}}}), samples=1,
                   model=model)
    with pytest.raises(E.EnergyError, match="non-negative"):
        E.estimate(dict(_geo(), phases={"forward": {"fma": -1}}), samples=1, model=model)
    with pytest.raises(E.EnergyError, match="samples"):
        E.estimate(dict(_geo(), phases={}), samples=0, model=model)


def test_geometry_of_the_digits_preset():
    from spikeforge.hdl.config import preset
    from spikeforge.hdl.core.defs import CoreGeometry
    cfg = preset("digits")
    g = E.geometry_of(cfg)
    geo = CoreGeometry(cfg)
    assert g["lanes"] == 16
    assert g["memories"]["w"] == 2 * geo.weight_depth
    assert g["memories"]["acc"] == 2 * geo.acc_depth
    assert "u" not in g["memories"]
    assert "u" in E.geometry_of(preset("digits-through"))["memories"]


@pytest.mark.verilator
def test_core_counters_split_equals_the_work_the_golden_model_implies():
    """On the RTL core, the split of the counters into operation kinds gives exactly
    the forward adds, input-gradient FMAs and dW adds counted from the golden model's
    spikes and du, and the padded update lanes of the weight layout."""
    from spikeforge.hdl.accelerator import Accelerator as AcceleratorTop
    from spikeforge.hdl.config import preset
    from spikeforge.sim.engines.rtl import session_name
    from spikeforge.sim.golden import fp16
    from spikeforge.sim.golden import model as golden
    from spikeforge.sim.host.device import Device
    from spikeforge.sim.verilator.session import rtl_session

    cfg = preset("tiny")
    sizes, T = [20, 12, 5], 6
    params = golden.Params(T=T, v_th=0.2)
    W = golden.init_weights(sizes, 3, gain=2.0)
    rng = np.random.default_rng(5)
    geo = E.geometry_of(cfg)
    P = geo["lanes"]
    padded = sum(-(-sizes[l + 1] // P) * P * sizes[l] for l in range(len(sizes) - 1))
    with rtl_session(AcceleratorTop(cfg), name=session_name(cfg), ports_only=True,
                     wall_timeout_s=300.0) as link:
        acc = Device(link)
        acc.load_network(sizes, params, W)
        acc.counters(clear=True)
        for k, d in enumerate([0.3, 0.7]):
            sp = rng.random((T, sizes[0])) < d
            acc.run(sp, k)
            tr = golden.forward(W, sp, params)
            gr = golden.backward(W, tr, sp, k, params)
            want = E.contract_work(sizes, sp, [t.s for t in tr], [t.m for t in tr],
                                   [fp16.ne(g.du, np.float16(0)) for g in gr])
            acc.update()
            W = golden.update(W, [g.dW for g in gr], params)
            ev = E.core_events(acc.counters(clear=True), geometry=geo, sizes=sizes, T=T)
            f, b, u = (ev["phases"][p] for p in ("forward", "backward", "update"))
            assert f["add"] == want["fp_add"] > 0
            assert b["add"] == want["wg_add"] > 0
            gin = b["fma"] - (T + 2) * sizes[-1] - 2 * T * sum(sizes[1:])
            assert gin == want["gin"] > 0
            assert u["fma"] == padded
            r = E.estimate(ev, samples=1)
            assert r["joules_per_sample"] > 0 and 0 < r["tflops_per_watt"] < 100


def test_inference_events_by_hand(model):
    # 3-2, T = 2: inputs {0, 2} then {1}: 3 SOPs x 2 neurons = 6; 4 neuron-steps
    spikes = np.array([[1, 0, 1], [0, 1, 0]], bool)
    s = [np.array([[1, 0], [0, 0]], bool)]
    ev = E.inference_events([3, 2], spikes, s, weight_bits=8, potential_bits=16, lanes=2,
                            memories={"w": 8192, "v": 2048})
    ph = ev["phases"]["forward"]
    assert ph["int_add"] == 6 and ph["int_other"] == 4 * 4
    assert ph["reads"] == {"w": 6 * 8 / 16, "v": 4} and ph["writes"] == {"v": 4}
    assert ph["busy_cycles"] == ph["cycles"] == (6 + 4) / 2
    assert ph["skipped_add"] == 2 * 6 - 6
    r = E.estimate(ev, samples=1, model=model)
    add16 = 0.2 + 8 * 0.4 / 24
    total = (22 * add16 + 3 * 1.0 + 8 * 0.5 + 5 * 2 * 0.5
             + 5 * 2 * 0.5 * (add16 + 0.5))
    assert r["joules_total"] == pytest.approx(total * PJ)
    assert r["tsops_per_watt"] == pytest.approx(6 / (total * PJ) / 1e12)
    with pytest.raises(E.EnergyError, match="weight_bits"):
        E.inference_events([3, 2], spikes, s, weight_bits=1, potential_bits=16, lanes=2,
                           memories={"w": 1, "v": 1})


def test_density_script_energy_falls_with_sparsity(tmp_path):
    from script_loader import load_script
    mod = load_script("bench_energy_density")
    out = tmp_path / "d.json"
    assert mod.main(["--preset", "tiny", "--sizes", "16,12,4", "--T", "4", "--samples", "2",
                     "--densities", "0,0.5,1", "--json", str(out),
                     "--png", str(tmp_path / "d.png")]) == 0
    rep = json.loads(out.read_text())
    e = [r["train_joules_per_sample"] for r in rep["rows"]]
    assert e[0] < e[1] < e[2] <= rep["dense_train_joules_per_sample"]
    f = [r["forward_joules_per_sample"] for r in rep["rows"]]
    assert f[0] < f[1] < f[2] <= rep["dense_forward_joules_per_sample"]
    assert (tmp_path / "d.png").stat().st_size > 0


def test_inference_core_events_from_hand_counters():
    # two runs of a 4-3-2 network, T = 2, on 2 lanes of groups of 4 neurons
    counters = {"cycles": 100, "busy": 80, "sops": 30, "beats": 12, "updates": 8, "runs": 2}
    ev = E.inference_core_events(counters, sizes=[4, 3, 2], T=2, lanes=2, group=4,
                                 weight_bits=8, potential_bits=12, weight_bank_bytes=512,
                                 dram_bytes=1)
    ph = ev["phases"]["forward"]
    assert ph["int_add"] == 15                      # 30 SOPs over 2 runs
    assert ph["reads"] == {"w": 12}                 # 6 beats per run x 2 lane banks
    assert ph["int_other"] == E.INT_OPS_PER_NEURON_STEP * 4 * 4   # 4 group updates x 4
    assert ph["skipped_add"] == 2 * (4 * 3 + 3 * 2) - 15          # dense 36 less 15
    assert (ph["busy_cycles"], ph["cycles"]) == (40, 50)
    rep = E.estimate(ev, samples=1)
    assert rep["sops_per_sample"] == 15
    assert rep["tsops_per_watt"] == pytest.approx(15 / rep["joules_per_sample"] / 1e12)
    assert sum(rep["shares"].values()) == pytest.approx(1.0)
    with pytest.raises(E.EnergyError, match="counters lack 'beats'"):
        E.inference_core_events({k: v for k, v in counters.items() if k != "beats"},
                                sizes=[4, 3, 2], T=2, lanes=2, group=4, weight_bits=8,
                                potential_bits=12, weight_bank_bytes=512)
    with pytest.raises(E.EnergyError, match="no run"):
        E.inference_core_events({**counters, "runs": 0}, sizes=[4, 3, 2], T=2, lanes=2,
                                group=4, weight_bits=8, potential_bits=12, weight_bank_bytes=512)
