"""Greedy DST decoding with and without the KV cache, at the real size (d = 512, 6 + 6 layers, T = 750).

A batch of ``--windows`` 750-frame windows (random inputs, the last window half padding) goes through
:meth:`fpspot.models.dst.DST.generate` twice: with the cache (``use_cache=True``: the memory's cross-attention
keys/values computed once, one new token per step) and without it (the baseline's way: the whole decoder,
including the memory projections, recomputed over the growing sequence at every step). The untrained model's
EOS and SOS logits are pushed down so both runs decode exactly ``--steps`` tokens (the worst case, as the
baseline which never stops early); the two outputs are checked to be identical. The encoder is timed alone
and subtracted, so the table shows the decoding time proper.

    python benchmarks/dst_decode_speed.py [--windows 4] [--steps 25] [--threads N] [--repeat 1] [--json OUT]

A 45-minute half is about 90 windows; decoding time grows linearly with the windows of a batch.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from fpspot.models import build
from fpspot.models.dst import DST, EOS, SOS


def timed(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--window", type=int, default=750)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", default=None, help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build("dst", window=args.window, max_events=args.steps).eval()
    with torch.no_grad():
        model.action_head.bias[EOS] = -1e4
        model.action_head.bias[SOS] = -1e4
    batch = DST.example_batch(model.config, batch_size=args.windows, generator=torch.Generator().manual_seed(1))
    batch = {k: batch[k] for k in ("teamvec", "logits", "frame_index")}

    with torch.inference_mode():
        model.generate(batch, max_events=1)  # warm-up
        t_encode, _ = timed(lambda: model.encode(batch), args.repeat)
        t_cached, cached = timed(lambda: model.generate(batch, use_cache=True), args.repeat)
        t_full, full = timed(lambda: model.generate(batch, use_cache=False), args.repeat)
    same = all(torch.equal(cached[k], full[k]) for k in ("action", "slot", "frame", "valid"))
    decode_cached, decode_full = t_cached - t_encode, t_full - t_encode
    result = {
        "windows": args.windows, "window": args.window, "steps": args.steps, "threads": torch.get_num_threads(),
        "parameters": model.num_parameters(), "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch": torch.__version__, "encode_s": t_encode, "generate_cached_s": t_cached, "generate_full_s": t_full,
        "decode_cached_s": decode_cached, "decode_full_s": decode_full,
        "decode_speedup": decode_full / decode_cached if decode_cached > 0 else float("nan"),
        "generate_speedup": t_full / t_cached, "identical_outputs": same,
        "steps_decoded": int(cached["valid"].sum(1).max()),
    }
    print(f"DST {result['parameters'] / 1e6:.1f} M parameters, {args.windows} windows x {args.window} frames, "
          f"{args.steps} greedy steps, {result['threads']} threads")
    print(f"{'':26s}{'seconds':>10s}")
    print(f"{'encoder (shared)':26s}{t_encode:10.3f}")
    print(f"{'decode, KV cache':26s}{decode_cached:10.3f}")
    print(f"{'decode, full recompute':26s}{decode_full:10.3f}")
    print(f"decode speed-up {result['decode_speedup']:.1f}x; whole generate() {result['generate_speedup']:.1f}x; "
          f"identical outputs: {same}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
