"""One spikeforge core (see ``docs/core.md``): :class:`Core` and its components.

* :mod:`.core` -- the wiring of the components;
* :mod:`.command` (with :mod:`.request`, :mod:`.response`) -- the command unit;
* :mod:`.sequencer` -- the steps of a run; :mod:`.counters` -- the counter file;
  :mod:`.layer_table` -- the layer table;
* :mod:`.fp_engine`, :mod:`.bp_engine`, :mod:`.wg_engine`, :mod:`.loss` -- the
  engines (:mod:`.engine`), built from the loops of :mod:`.op_loops`;
* :mod:`.lane_datapath` -- memories and the lane array; :mod:`.history_scanner`;
* :mod:`.defs` -- geometry, operation kinds, fp16 helpers; :mod:`.info` -- INFO.
"""

from ..protocol import COUNTERS
from .core import Core
from .defs import CoreGeometry
from .info import CORE_VERSION, info_payload

__all__ = ["Core", "CoreGeometry", "COUNTERS", "CORE_VERSION", "info_payload"]
