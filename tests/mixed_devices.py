"""A check for the tests of device handling (``test_devices``, ``test_learnability``): with
a model on PyTorch's ``meta`` device standing in for a GPU, no operation may mix devices."""

from __future__ import annotations

import torch

#: Indexing by a CPU index (allowed on CUDA) and moving a module (``Module.to``).
_MAY_MIX = (
    torch.Tensor.__getitem__,
    torch.Tensor.__setitem__,
    torch._has_compatible_shallow_copy_type,
)


class MixedDevices(Exception):
    """An operation took tensors of two devices."""


class NoMixedDevices(torch.overrides.TorchFunctionMode):
    """Fails any torch operation on tensors of two devices (indexing by a CPU index and
    0-d scalars are allowed, as on CUDA), which meta tensors would otherwise let pass."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in _MAY_MIX:
            leaves = torch.utils._pytree.tree_leaves((args, kwargs))
            kinds = {t.device.type for t in leaves if torch.is_tensor(t) and t.dim() > 0}
            if len(kinds) > 1:
                raise MixedDevices(f"{func} on {sorted(kinds)}")
        return func(*args, **kwargs)
