"""How a checkpoint's tensors are named, left out, renamed and transposed on their way to another framework: the
rules ``fastckpt.torch.load_into`` and ``fastckpt.convert`` share.

A checkpoint's tensors have up to three names (``names_of``): the checkpoint key, the object path of a TF2
checkpoint (``object_paths``), and the full name TensorFlow gave the variable (``full_names``). ``plan`` then
drops optimizer state and what ``skip`` matches, renames with ``rename`` and marks what ``transpose`` matches:

>>> import fastckpt
>>> from fastckpt.mapping import Mapped, plan
>>> named = {"dense/kernel": "dense/kernel", "dense/bias": "dense/bias", "dense/kernel/Adam": "dense/kernel/Adam",
...          "global_step": "global_step"}
>>> plan(named, skip_optimizer=True, rename=[(r"^dense/", "fc."), (r"kernel$", "weight")], transpose=[r"\\.weight$"])
{'fc.weight': Mapped(key='dense/kernel', transpose=True), 'fc.bias': Mapped(key='dense/bias', transpose=False)}

The names of a checkpoint come from its reader:

>>> names_of(fastckpt.NewCheckpointReader(fastckpt.examples.model_path()), "full")
{'v1': 'v1', 'v2': 'v2'}
"""

from __future__ import annotations

import re
from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from . import errors
from .reading.object_graph import OBJECT_GRAPH_KEY

__all__ = [
    "NAMES",
    "Mapped",
    "check_transpose",
    "is_optimizer_state",
    "names_of",
    "plan",
    "select",
]

# What names_of can name tensors by.
NAMES = ("key", "object", "full")

Patterns = Union[str, "re.Pattern[str]", Iterable[Union[str, "re.Pattern[str]"]]]
Renames = Union[Mapping[str, str], Iterable[Tuple[Union[str, "re.Pattern[str]"], str]]]


class Mapped(NamedTuple):
    """Where one output tensor comes from: the checkpoint ``key``, and whether it is to be ``transpose``d (a 2-D
    tensor, as a Keras ``Dense`` kernel ``[in, out]`` becomes a ``torch.nn.Linear`` weight ``[out, in]``)."""

    key: str
    transpose: bool


def names_of(reader, names: str = "key") -> Dict[str, str]:
    """``{checkpoint_key: name}`` of every tensor of ``reader`` (a ``CheckpointReader``), named by ``names``:

    * ``"key"``: the checkpoint key itself (what ``tf.train.list_variables`` lists);
    * ``"object"``: the object path of a TF2 checkpoint (``CheckpointReader.object_paths``), e.g.
      ``model/layer_with_weights-0/kernel``;
    * ``"full"``: the full name TensorFlow gave the variable (``CheckpointReader.full_names``), e.g.
      ``sequential/dense/kernel``: for a TF2 checkpoint the names a TF1 ``Saver`` would have saved under.

    Keys without such a name (every key of a name-based checkpoint, the object graph itself) keep their key.

    Raises:
        fastckpt.errors.InvalidArgumentError: ``names`` is none of those.
    """
    if names == "key":
        alias: Mapping[str, str] = {}
    elif names == "object":
        alias = reader.object_paths()
    elif names == "full":
        alias = reader.full_names()
    else:
        raise errors.InvalidArgumentError(
            f"names must be one of {', '.join(map(repr, NAMES))}, not {names!r}", getattr(reader, "path", None)
        )
    return {key: alias.get(key, key) for key in reader}


# TF1 slot variables are named <variable>/<optimizer name>[_<n>]: the optimizers' default names. Exponential
# moving averages (<variable>/ExponentialMovingAverage) are weights, kept. BERT's AdamWeightDecayOptimizer names
# its slots adam_m and adam_v.
_TF1_SLOT = re.compile(
    r"(Adam|AdamW|LazyAdam|AdaMax|Nadam|Momentum|RMSProp|Adagrad|AdagradDA|ProximalAdagrad|Adadelta|Ftrl|LAMB|"
    r"GGT|AddSign|PowerSign|ProximalGradientDescent)(_\d+)?|adam_m|adam_v|lamb_m|lamb_v"
)
# The non-slot variables of TF1 optimizers, and the step counter TF1 training keeps beside them.
_TF1_OPTIMIZER_VARIABLE = re.compile(r"(beta1_power|beta2_power|global_step)(_\d+)?")
# Keras 3 names an optimizer's variables <optimizer name>/<variable> (adam/iteration,
# adam/sequential_dense_kernel_momentum); the default names are the classes' in snake case, and legacy Keras
# (tf.keras 2) named its optimizers after their classes (Adam/iter).
_KERAS_OPTIMIZER = re.compile(
    r"(adam|adamw|adamax|adafactor|adagrad|adadelta|ftrl|lamb|lion|nadam|rmsprop|sgd|muon|loss_scale_optimizer|"
    r"lossscaleoptimizer)(_\d+)?",
    re.IGNORECASE,
)
# In a TF2 checkpoint key, the path of the object before the attribute.
_ATTRIBUTES = "/.ATTRIBUTES/"


def is_optimizer_state(key: str, name: Optional[str] = None) -> bool:
    """Whether the tensor at checkpoint ``key`` (named ``name``, see ``names_of``) is training state rather than a
    weight: what ``skip_optimizer`` leaves out.

    * TF1 (``tf.compat.v1.train.Saver``): the slots of the optimizers under their default names
      (``dense/kernel/Adam``, ``.../Adam_1``, ``Momentum``, ``RMSProp``, ``RMSProp_1``, ``Adagrad``,
      ``Adadelta``, ``Ftrl``, ..., BERT's ``adam_m`` and ``adam_v``), ``beta1_power``, ``beta2_power`` and
      ``global_step``. Exponential moving averages (``.../ExponentialMovingAverage``) are weights, kept.
    * TF2 (``tf.train.Checkpoint``): slots (keys with ``.OPTIMIZER_SLOT``), the variables of an object called
      ``optimizer`` (``optimizer/iter``, Keras 3's ``optimizer/_variables/3``), Keras 3 optimizer variables by
      their full names (``adam/...``, ``sgd/...``, ``adamw/...``), ``save_counter`` and the object graph
      (``_CHECKPOINTABLE_OBJECT_GRAPH``). Keras 3 lists the model's own variables under
      ``optimizer/_trainable_variables/``: those are weights, kept.

    An optimizer given a name of its own (``AdamOptimizer(name="mine")``) is not recognized by its slots' names;
    ``skip`` patterns drop those.

    >>> is_optimizer_state("dense/kernel/Adam_1"), is_optimizer_state("dense/kernel/ExponentialMovingAverage")
    (True, False)
    >>> is_optimizer_state("optimizer/_variables/2/.ATTRIBUTES/VARIABLE_VALUE", "adam/sequential_dense_kernel_momentum")
    True
    >>> is_optimizer_state("optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE", "sequential/dense/kernel")
    False
    """
    if key == OBJECT_GRAPH_KEY:
        return True
    if _ATTRIBUTES in key:
        # An object-graph key: the path of objects to the attribute.
        path = key[: key.index(_ATTRIBUTES)].split("/")
        if ".OPTIMIZER_SLOT" in path or path[0] == "save_counter":
            return True
        for i, part in enumerate(path[:-1]):
            if part == "optimizer" and path[i + 1] != "_trainable_variables":
                return True
    for text in (key, name) if name is not None and name != key else (key,):
        parts = text.split("/")
        if len(parts) > 1 and _TF1_SLOT.fullmatch(parts[-1]):
            return True
        if _TF1_OPTIMIZER_VARIABLE.fullmatch(parts[-1]) or text == "save_counter":
            return True
        if len(parts) > 1 and _KERAS_OPTIMIZER.fullmatch(parts[0]):
            return True
    return False


def _compile(pattern, what: str, filename: Optional[str]) -> "re.Pattern[str]":
    if isinstance(pattern, re.Pattern):
        return pattern
    if not isinstance(pattern, str):
        raise errors.InvalidArgumentError(
            f"{what} pattern {pattern!r} is a {type(pattern).__name__}, not a regular expression string", filename
        )
    try:
        return re.compile(pattern)
    except re.error as err:
        raise errors.InvalidArgumentError(f"invalid {what} pattern {pattern!r}: {err}", filename) from None


def _patterns(patterns: Optional[Patterns], what: str, filename: Optional[str]) -> List["re.Pattern[str]"]:
    if patterns is None:
        return []
    if isinstance(patterns, (str, re.Pattern)):
        patterns = [patterns]
    return [_compile(p, what, filename) for p in patterns]


def _renames(rename: Optional[Renames], filename: Optional[str]) -> List[Tuple["re.Pattern[str]", str]]:
    if rename is None:
        return []
    pairs = rename.items() if isinstance(rename, Mapping) else rename
    if isinstance(pairs, str):
        raise errors.InvalidArgumentError(
            f"rename must be a dict or a list of (pattern, replacement) pairs, not the string {pairs!r}", filename
        )
    rules = []
    for pair in pairs:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not isinstance(pair[1], str):
            raise errors.InvalidArgumentError(
                f"a rename rule is a (pattern, replacement) pair of strings, not {pair!r}", filename
            )
        rules.append((_compile(pair[0], "rename", filename), pair[1]))
    return rules


def plan(
    named: Mapping[str, str],
    *,
    rename: Optional[Renames] = None,
    skip: Optional[Patterns] = None,
    skip_optimizer: bool = False,
    transpose: Optional[Patterns] = None,
    filename: Optional[str] = None,
) -> Dict[str, Mapped]:
    """``{output name: Mapped(key, transpose)}`` of the tensors of ``named`` (``{checkpoint_key: name}``, as
    ``names_of`` gives), in the order of ``named``, after these steps:

    1. ``skip_optimizer``: optimizer state (``is_optimizer_state``) is left out;
    2. ``skip``: names matching any of these regular expressions (``re.search``) are left out;
    3. ``rename``: each ``(pattern, replacement)`` pair (a list of pairs, or a dict) is applied in order with
       ``re.sub``, each to the result of the one before;
    4. ``transpose``: renamed names matching any of these regular expressions (``re.search``) are marked to be
       transposed; they must be 2-D, which ``check_transpose`` checks once the shapes are known.

    ``skip`` and ``transpose`` are one pattern or several; patterns are strings or compiled ``re`` patterns.
    ``filename`` (the checkpoint's) goes into the errors.

    >>> plan({"a/kernel": "a/kernel", "a/bias": "a/bias"}, rename={"/": "."}, skip=["bias"])
    {'a.kernel': Mapped(key='a/kernel', transpose=False)}

    Raises:
        fastckpt.errors.InvalidArgumentError: a pattern is not a valid regular expression (or a replacement refers
            to a group it lacks), a rename gives an empty name, or two keys end up with the same name (the
            message names both).
    """
    skips = _patterns(skip, "skip", filename)
    renames = _renames(rename, filename)
    transposes = _patterns(transpose, "transpose", filename)
    planned: Dict[str, Mapped] = {}
    for key, name in named.items():
        if skip_optimizer and is_optimizer_state(key, name):
            continue
        if any(p.search(name) for p in skips):
            continue
        out = name
        for pattern, replacement in renames:
            try:
                out = pattern.sub(replacement, out)
            except (re.error, IndexError) as err:
                raise errors.InvalidArgumentError(
                    f"rename {pattern.pattern!r} -> {replacement!r} fails on {out!r}: {err}", filename, key
                ) from None
        if not out:
            raise errors.InvalidArgumentError(f"the renames make the name of {key!r} ({name!r}) empty", filename, key)
        if out in planned:
            other = planned[out].key
            raise errors.InvalidArgumentError(
                f"checkpoint keys {other!r} and {key!r} are both named {out!r}"
                + (" after renaming" if renames else "")
                + ": skip one of them or rename them apart",
                filename,
                key,
            )
        planned[out] = Mapped(key, any(p.search(out) for p in transposes))
    return planned


def check_transpose(
    planned: Mapping[str, Mapped], shapes: Mapping[str, Sequence[int]], *, filename: Optional[str] = None
) -> Dict[str, Tuple[int, ...]]:
    """``{output name: shape}`` of the planned tensors once transposed (``shapes`` is ``{checkpoint_key: shape}``,
    as ``CheckpointReader.get_variable_to_shape_map`` gives).

    >>> check_transpose({"w": Mapped("kernel", True)}, {"kernel": [3, 4]})
    {'w': (4, 3)}

    Raises:
        fastckpt.errors.InvalidArgumentError: a tensor marked for transposing is not 2-D (the message names it).
    """
    out = {}
    for name, (key, transpose) in planned.items():
        shape = tuple(int(d) for d in shapes[key])
        if transpose:
            if len(shape) != 2:
                raise errors.InvalidArgumentError(
                    f"a transpose rule matches {name!r} (checkpoint key {key!r}), which is {len(shape)}-D "
                    f"{list(shape)}: only 2-D tensors are transposed; make the rule match fewer names",
                    filename,
                    key,
                )
            shape = shape[::-1]
        out[name] = shape
    return out


def select(reader, names: Union[None, str, Iterable[str]] = None) -> Dict[str, str]:
    """``{output name: checkpoint_key}`` of the tensors a ``load(path, names=...)`` of ``fastckpt.torch`` or
    ``fastckpt.jax`` returns, before dtypes are considered: ``names=None`` every tensor under its key;
    ``"key"``, ``"object"`` or ``"full"`` every tensor under that name (``names_of``); an iterable of checkpoint
    keys those tensors, under their keys.

    Raises:
        fastckpt.errors.InvalidArgumentError: ``names`` is a string other than those three (a single key is
            passed as a list, ``["v1"]``), or two keys have the same name.
        fastckpt.errors.NotFoundError: a key the checkpoint does not hold.
    """
    path = getattr(reader, "path", None)
    if names is None:
        return {key: key for key in reader}
    if isinstance(names, str):
        if names not in NAMES:
            raise errors.InvalidArgumentError(
                f"names must be None, one of {', '.join(map(repr, NAMES))}, or an iterable of checkpoint keys "
                f"(a list, [{names!r}], for one tensor), not the string {names!r}",
                path,
            )
        return {name: mapped.key for name, mapped in plan(names_of(reader, names), filename=path).items()}
    selected = {}
    for key in names:
        if not isinstance(key, str):
            raise errors.InvalidArgumentError(f"a checkpoint key is a string, not {key!r}", path)
        if key not in reader:
            raise errors.NotFoundError(f"no tensor {key!r} in checkpoint {path}", path, key)
        selected[key] = key
    return selected
