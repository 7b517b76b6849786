"""``neurosim.run.bench``: how fast the simulator runs on this machine.

* :mod:`~neurosim.run.bench.kernels`: the Numba kernels vs dense PyTorch (``bench_kernels``);
* :mod:`~neurosim.run.bench.costs`: the scatter / dense path cost model the engines use
  (``measure_path_model``, saved per machine by ``neurosim bench kernels``);
* :mod:`~neurosim.run.bench.model`: whole models, the user's case: PyTorch (batched) vs the
  sync and async engines at B = 1 and B = 100, a low-density configuration and set-up time
  (``bench_model``);
* :mod:`~neurosim.run.bench.calibrate`: firing calibration of untrained benchmark models;
* :mod:`~neurosim.run.bench.common`: machine description, load and repeated timing.
"""
from neurosim.run.bench.calibrate import calibrate_firing, calibrate_firing_rates
from neurosim.run.bench.common import machine_info
from neurosim.run.bench.costs import linear_in_engine, measure_path_model
from neurosim.run.bench.kernels import bench_kernels
from neurosim.run.bench.model import bench_model

__all__ = ["bench_kernels", "bench_model", "calibrate_firing", "calibrate_firing_rates",
           "linear_in_engine", "machine_info", "measure_path_model"]
