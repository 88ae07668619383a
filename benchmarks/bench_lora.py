"""Benchmark exercise 5.1: LoRALinear against a plain nn.Linear and the merged layer, same run.

    python benchmarks/bench_lora.py                    # the reference solution
    python benchmarks/bench_lora.py --impl exercises   # your work

Times are medians of interleaved repeats (llmkit.timing.compare_fixed), float32:

* forward: unmerged LoRALinear (eval, no dropout) / nn.Linear, and merged
  LoRALinear / nn.Linear, under torch.no_grad();
* forward + backward: LoRALinear (only A and B train) / nn.Linear with its
  weight trainable (full fine-tuning of that layer); the input requires grad in
  both, as inside a network.

Then the trainable-parameter fraction of transformer-like models with GPT-2
small's and LLaMA-7B's widths and depths (llmkit.toymodels.TinyTransformer:
untied head, ungated MLP, so the totals differ from the real models; built on
the meta device: no memory, no weights) for a few LoRA recipes.

On a shared, loaded machine, --threads 1 gives steadier ratios.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from llmkit.bench import benchmark_parser, header, load_benchmarked
from llmkit.timing import compare_fixed
from llmkit.toymodels import TinyTransformer

LAYER_CASES = [  # (tokens, in, out, r)
    (16, 4096, 4096, 16),
    (256, 4096, 4096, 16),
    (1024, 1024, 1024, 8),
    (512, 2048, 2048, 16),
]
MODELS = {
    "GPT-2 small sizes": dict(vocab=50257, d_model=768, n_heads=12, n_layers=12, d_ff=3072, context=1024),
    "LLaMA-7B sizes": dict(vocab=32000, d_model=4096, n_heads=32, n_layers=32, d_ff=11008, context=4096),
}
RECIPES = [  # (targets, r)
    (["q_proj", "v_proj"], 8),
    (["q_proj", "k_proj", "v_proj", "o_proj"], 16),
    (["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"], 64),
]


def time_layers(impl, repeats: int) -> None:
    print(f"{'case':<34} {'lora ms':>9} {'linear ms':>10} {'ratio':>6}   {'merged ratio':>12}")
    gen = torch.Generator().manual_seed(0)
    for tokens, d_in, d_out, r in LAYER_CASES:
        linear = nn.Linear(d_in, d_out)
        lora = impl.LoRALinear(copy.deepcopy(linear), r, 2.0 * r).eval()
        lora.load_state_dict({"lora_B": torch.randn(d_out, r, generator=gen) * 0.01}, strict=False)
        merged = copy.deepcopy(lora)
        merged.merge()
        x = torch.randn(tokens, d_in, generator=gen)
        case = f"fwd tokens={tokens} {d_in}->{d_out} r={r}"
        with torch.no_grad():
            fwd = compare_fixed(lambda: lora(x), lambda: linear(x), repeats=repeats)
            mrg = compare_fixed(lambda: merged(x), lambda: linear(x), repeats=repeats)
        print(
            f"{case:<34} {fwd.candidate_s * 1e3:9.3f} {fwd.baseline_s * 1e3:10.3f} {fwd.ratio:6.2f}"
            f"   {mrg.ratio:12.2f}"
        )
        xg = x.clone().requires_grad_(True)

        def step(module):
            out = module(xg)
            out.backward(torch.ones_like(out))

        train = compare_fixed(lambda: step(lora), lambda: step(linear), repeats=repeats)
        case = f"fwd+bwd tokens={tokens} {d_in}->{d_out} r={r}"
        print(f"{case:<34} {train.candidate_s * 1e3:9.3f} {train.baseline_s * 1e3:10.3f} {train.ratio:6.2f}")


def parameter_fractions(impl) -> None:
    print(f"\n{'model':<30} {'targets':<44} {'r':>3} {'trainable':>12} {'total':>15} {'fraction':>9}")
    for label, sizes in MODELS.items():
        for targets, r in RECIPES:
            with torch.device("meta"):
                model = TinyTransformer(**sizes)
                total_before = sum(p.numel() for p in model.parameters())
                adapted = impl.apply_lora(model, targets, r=r, alpha=2.0 * r)
            trainable = impl.trainable_parameters(adapted)
            total = sum(p.numel() for p in adapted.parameters())
            assert total - total_before == trainable, "adapter parameters should be the only trainable ones"
            print(
                f"{label:<30} {','.join(targets):<44} {r:>3} {trainable:>12,} {total:>15,} "
                f"{100 * trainable / total:8.3f}%"
            )


def main() -> None:
    args = benchmark_parser(__doc__, repeats=7).parse_args()
    impl = load_benchmarked(args, "5.1")
    print(header("LoRA", args, dtype="float32"))
    print("# ratio = LoRALinear time / nn.Linear time (lower is better); merged ratio: merged LoRALinear")
    time_layers(impl, args.repeats)
    parameter_fractions(impl)


if __name__ == "__main__":
    main()
