"""Exponential moving averages of values, kept in numpy with TensorFlow's update rule, saved as TensorFlow
saves them (``v/ExponentialMovingAverage``) and restored into ``v`` for inference.

>>> import numpy as np, fastckpt
>>> ema = fastckpt.ExponentialMovingAverage(decay=0.99)
>>> ema.apply({"v": np.float32(0.0)})      # shadows start at the values' current value
>>> ema.apply({"v": np.float32(10.0)})
>>> ema.average("v")
np.float32(0.099999905)
>>> ema.variables_to_restore()
{'v/ExponentialMovingAverage': 'v'}
>>> ema.variables_to_restore(["v", "global_step"], moving_avg_names=["v"])
{'v/ExponentialMovingAverage': 'v', 'global_step': 'global_step'}
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Optional

import numpy as np

from ..arrays import to_numpy

__all__ = ["ExponentialMovingAverage"]


class ExponentialMovingAverage:
    """Shadow values updated as ``shadow -= (1 - decay) * (shadow - value)``, as
    ``tf.train.ExponentialMovingAverage`` does (in float32 for the decay, then in the value's dtype).

    With ``num_updates``, the decay used is ``min(decay, (1 + num_updates) / (10 + num_updates))``.
    """

    def __init__(self, decay: float, num_updates: Optional[int] = None, name: str = "ExponentialMovingAverage"):
        self.decay = decay
        self.num_updates = num_updates
        self.name = name
        self._averages: Dict[str, np.ndarray] = {}

    def _one_minus_decay(self) -> np.float32:
        decay = np.float32(self.decay)
        if self.num_updates is not None:
            n = np.float32(self.num_updates)
            decay = min(decay, (np.float32(1.0) + n) / (np.float32(10.0) + n))
        return np.float32(1.0) - decay

    def apply(self, values: Mapping[str, Any]) -> None:
        """Updates the shadow of each value; a value seen for the first time starts its shadow at itself."""
        one_minus_decay = self._one_minus_decay()
        for name, value in values.items():
            value = to_numpy(value)
            shadow = self._averages.get(name)
            if shadow is None:
                self._averages[name] = np.array(value, copy=True)
                continue
            step = one_minus_decay.astype(shadow.dtype) if shadow.dtype.kind in "fc" else one_minus_decay
            self._averages[name] = (shadow - (shadow - value) * step).astype(shadow.dtype)

    def average(self, name: str) -> np.ndarray:
        """The shadow value of ``name``."""
        shadow = self._averages[name]
        return shadow[()] if shadow.ndim == 0 else shadow

    def average_name(self, name: str) -> str:
        """The name the shadow of ``name`` is saved under: ``name/ExponentialMovingAverage``."""
        return f"{name}/{self.name}"

    def averages(self) -> Dict[str, np.ndarray]:
        """``{average_name: shadow}`` of every tracked value, ready to save beside the values."""
        return {self.average_name(name): shadow for name, shadow in self._averages.items()}

    def variables_to_restore(
        self, names: Optional[Iterable[str]] = None, moving_avg_names: Optional[Iterable[str]] = None
    ) -> Dict[str, str]:
        """A var_list that restores each averaged name from its shadow and the others from themselves:
        ``{"v/ExponentialMovingAverage": "v", "step": "step"}``. ``names`` defaults to every value this
        object averages (as TensorFlow's defaults to every variable); ``moving_avg_names`` (default: all of
        ``names``) says which are averaged."""
        names = list(self._averages if names is None else names)
        averaged = set(names if moving_avg_names is None else moving_avg_names)
        return {(self.average_name(name) if name in averaged else name): name for name in names}
