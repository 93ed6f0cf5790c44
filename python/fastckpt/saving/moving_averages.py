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

from typing import Any, Dict, Iterable, Mapping, Optional, Union

import numpy as np

from ..arrays import to_numpy

__all__ = ["ExponentialMovingAverage", "ShadowsInCheckpoint"]


class ExponentialMovingAverage:
    """Shadow values updated as ``shadow -= (1 - decay) * (shadow - value)``, as
    ``tf.train.ExponentialMovingAverage`` does (in float32 for the decay, then in the value's dtype).

    With ``num_updates``, the decay used is ``min(decay, (1 + num_updates) / (10 + num_updates))``.

    ``apply`` does what TensorFlow's two steps do: the first ``apply`` of a value creates its shadow at the
    value (TensorFlow's ``ema.apply([v])`` creates the shadow variable, initialized to ``v``), and each later
    one updates it (running the op ``ema.apply`` returned). TensorFlow's tutorial, ``v = 0``, shadow created,
    ``v = 10``, one update, gives TensorFlow's number:

    >>> import numpy as np, fastckpt
    >>> ema = fastckpt.ExponentialMovingAverage(0.99)
    >>> ema.apply({"v": np.float32(0.0)})        # v = 0: the shadow is created, at 0
    >>> ema.apply({"v": np.float32(10.0)})       # v = 10: one update
    >>> ema.average("v")
    np.float32(0.099999905)

    (A first ``apply({"v": 10})`` alone gives 10.0: that is the shadow's creation, as in TensorFlow 2, where
    ``ema.apply([v])`` creates and updates at once.) For inference, in a fresh process that averaged nothing,
    the model's variables (names, or arrays to restore into in place) say what ``variables_to_restore`` maps,
    as TensorFlow's graph does there:

    >>> import tempfile, os
    >>> values = {"v": np.float32(10.0), **ema.averages()}
    >>> prefix = fastckpt.Saver().save(values, os.path.join(tempfile.mkdtemp(), "model.ckpt"))
    >>> fastckpt.Saver(fastckpt.ExponentialMovingAverage(0.99).variables_to_restore()).restore(prefix)
    {'v': np.float32(0.099999905)}
    >>> v = np.zeros((), np.float32)                                  # the model's variable, filled in place
    >>> _ = fastckpt.Saver(fastckpt.ExponentialMovingAverage(0.99).variables_to_restore({"v": v})).restore(prefix)
    >>> v
    array(0.0999999, dtype=float32)
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
        self,
        names: Union[None, Iterable[str], Mapping[str, Any]] = None,
        moving_avg_names: Optional[Iterable[str]] = None,
    ) -> Dict[str, Any]:
        """A var_list that restores each averaged variable from its shadow and the others from themselves, as
        TensorFlow's ``variables_to_restore`` maps the graph's variables: ``{"v/ExponentialMovingAverage": "v",
        "step": "step"}``.

        ``names`` are the model's variables: their names, or ``{name: array}`` to restore into the arrays in place
        (the var_list then maps to the arrays, as TensorFlow's maps to variables); by default every value this
        object averages. ``moving_avg_names`` (default: all of ``names``) says which are averaged.

        Without ``names``, in a fresh process that averaged nothing (where TensorFlow takes the graph's
        variables), the var_list is the checkpoint's variables, each restored from its shadow where it has one:
        ``Saver(ema.variables_to_restore()).restore(path)`` returns ``{"v": shadow of v, "step": step}``.
        """
        if names is None and not self._averages:
            return ShadowsInCheckpoint(self.name)
        variables = (
            dict(names)
            if isinstance(names, Mapping)
            else {name: name for name in (self._averages if names is None else names)}
        )
        averaged = set(variables if moving_avg_names is None else moving_avg_names)
        return {(self.average_name(name) if name in averaged else name): value for name, value in variables.items()}


class ShadowsInCheckpoint:
    """The var_list ``variables_to_restore()`` gives where no variables are known (a fresh process): resolved
    against the checkpoint's names when a Saver restores, as TensorFlow's is against the graph's variables. Each
    variable ``v`` is restored from ``v/<name>`` where the checkpoint has that shadow, else from itself.

    >>> ShadowsInCheckpoint("ExponentialMovingAverage")(["step", "v", "v/ExponentialMovingAverage"])
    {'step': 'step', 'v/ExponentialMovingAverage': 'v'}
    """

    def __init__(self, name: str):
        self.name = name

    def __call__(self, available: Iterable[str]) -> Dict[str, str]:
        names = set(available)
        suffix = "/" + self.name
        variables = sorted(name for name in names if not name.endswith(suffix))
        return {(name + suffix if name + suffix in names else name): name for name in variables}

    def __repr__(self) -> str:
        return f"ShadowsInCheckpoint({self.name!r})"
