"""Information-plane monitoring, in three parts and their composition.

* :mod:`gibloss.monitor.hooks` — :class:`ActivationRecorder`: activations of chosen layers while
  a probe runs through a model;
* :mod:`gibloss.monitor.record` — :func:`measurement_record`: pure functions from activations,
  outputs, features and labels to one record (IB, GIB, nulls, diagnostics);
* :mod:`gibloss.monitor.store` — :class:`RunStore`: the JSON Lines records, kept activations,
  run ids and resuming of one run;
* :mod:`gibloss.monitor.monitor` — :class:`InformationPlaneMonitor`, which composes them.
"""

from .hooks import ActivationRecorder, default_layers
from .monitor import InformationPlaneMonitor
from .record import Probe, measurement_record, record_scalars, run_range_records
from .store import RunStore, recompute_run_range

__all__ = [
    "ActivationRecorder",
    "InformationPlaneMonitor",
    "Probe",
    "RunStore",
    "default_layers",
    "measurement_record",
    "record_scalars",
    "recompute_run_range",
    "run_range_records",
]
