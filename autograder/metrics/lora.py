"""LoRA parameter counts from a model config, without loading any weights.

A LoRA adapter of rank r on a linear layer in -> out adds r * (in + out) parameters
(matrices A: r x in and B: out x r). Shapes follow the Gemma 3 / Llama-style decoder.
"""
from __future__ import annotations


def linear_shapes(config) -> dict[str, tuple[int, int]]:
    hidden = config.hidden_size
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    inter = config.intermediate_size
    return {
        "q_proj": (hidden, heads * head_dim),
        "k_proj": (hidden, kv_heads * head_dim),
        "v_proj": (hidden, kv_heads * head_dim),
        "o_proj": (heads * head_dim, hidden),
        "gate_proj": (hidden, inter),
        "up_proj": (hidden, inter),
        "down_proj": (inter, hidden),
    }


def lora_trainable_params(config, r: int, target_modules) -> int:
    shapes = linear_shapes(config)
    unknown = set(target_modules) - set(shapes)
    if unknown:
        raise ValueError(f"no such linear layers in a {config.model_type} decoder: {sorted(unknown)}")
    per_layer = sum(r * sum(shapes[name]) for name in target_modules)
    return per_layer * config.num_hidden_layers


def trainable_percent(trainable: int, base_params: int) -> float:
    """As peft reports it: trainable / (base + adapter) parameters, in percent."""
    return 100 * trainable / (base_params + trainable)
