"""The precision a model runs in, by one rule: the notebooks' profile cells (ex04-ex06), the grader's own model
runs and the checks that read what the kernel reported.

bf16 on a GPU whose compute capability reaches course.toml's [precision] bf16_min_capability (8.0: A10, A100,
H100); fp32 below it (a T4 is 7.5) and without a GPU. torch.cuda.is_bf16_supported() is not asked: by default it
counts emulation, so it says yes on a T4, where bf16 runs emulated and slow. Gemma overflows in fp16, so fp32 is
the fallback, not fp16.
"""
from __future__ import annotations

from enum import Enum


class Precision(str, Enum):
    BF16 = "bfloat16"
    FP32 = "float32"

    @property
    def torch_name(self) -> str:
        """As str(torch.bfloat16) prints it, and as the notebooks report a dtype."""
        return f"torch.{self.value}"

    def torch_dtype(self):
        import torch

        return getattr(torch, self.value)


def precision_for(capability: tuple[int, int] | None, minimum: tuple[int, int]) -> Precision:
    """The rule: capability is the GPU's (major, minor), None without one; minimum is course.toml's
    bf16_min_capability."""
    minimum = tuple(minimum)
    return Precision.BF16 if capability is not None and tuple(capability) >= minimum else Precision.FP32


def device_capability() -> tuple[int, int] | None:
    """This machine's first CUDA device's compute capability, None without one."""
    import torch

    return tuple(torch.cuda.get_device_capability()) if torch.cuda.is_available() else None


def machine_precision(minimum: tuple[int, int]) -> Precision:
    """The rule on this machine (minimum: course.toml's bf16_min_capability): what the student's kernel, running
    here, chose too."""
    return precision_for(device_capability(), minimum)
