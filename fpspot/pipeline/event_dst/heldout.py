"""Held-out scoring of the event DST during training (:class:`HeldOut`, the trainer's ``evaluate``): the
held-out training halves corrupted with a fixed seed, denoised through the inference path and scored with the
official matcher."""

from __future__ import annotations

import numpy as np

from fpspot.pipeline.event_dst.config import EvalSection


GATE_GRID = tuple(float(x) for x in np.round(np.arange(0.02, 0.961, 0.02), 2))


def gated_f1(gt, pred, grid=GATE_GRID) -> dict:
    """F1 of ``pred`` after the best threshold per class (``gated_macro_f1``, with the thresholds) and the best
    shared threshold (``gated_micro_f1``), fitted on ``gt`` itself (in-sample; compares checkpoints)."""
    from fpspot.post.gating import threshold_curves

    curves = threshold_curves(gt, pred, grid)
    f1, micro = curves.f1(), curves.micro_f1()
    return {"gated_macro_f1": float(f1.max(1).mean()), "gated_micro_f1": float(micro.max()),
            "thresholds": [float(curves.grid[i]) for i in f1.argmax(1)],
            "shared_threshold": float(curves.grid[int(micro.argmax())])}


class HeldOut:
    """``evaluate(model)`` for the trainer: held-out halves corrupted once (fixed seed) at strength 1 and at
    ``eval.low_strength``, denoised through the inference path and scored with the official matcher, as is
    (``macro_f1``, ``micro_f1``) and after per-class / shared thresholds fitted on them (``gated_*``).
    ``score`` (the selection metric) = mean of gated macro and gated micro F1 at strength 1."""

    def __init__(self, gt, keys: list[str], params, cfg: EvalSection):
        from fpspot.data.corrupt import corrupt_playbyplay

        self.gt = gt.subset(keys)
        self.cfg = cfg
        self.inputs = {"taad": corrupt_playbyplay(self.gt, params, cfg.seed, strength=1.0),
                       "low": corrupt_playbyplay(self.gt, params, cfg.seed + 1, strength=cfg.low_strength)}

    def __call__(self, model) -> dict:
        from fpspot.eval import evaluate
        from fpspot.post.event_dst import denoise_playbyplay

        out: dict = {}
        for name, pred in self.inputs.items():
            strength = 1.0 if name == "taad" else self.cfg.low_strength
            clean = denoise_playbyplay(model, pred, strength=strength, min_score=self.cfg.min_score,
                                       nms_window=self.cfg.nms_window, batch_size=self.cfg.batch_size)
            before, after = evaluate(pred, self.gt), evaluate(clean, self.gt)
            gated, gated_in = gated_f1(self.gt, clean), gated_f1(self.gt, pred)
            prefix = "" if name == "taad" else f"{name}_"
            out.update({f"{prefix}macro_f1": after.macro_f1, f"{prefix}micro_f1": after.micro_f1,
                        f"{prefix}gated_macro_f1": gated["gated_macro_f1"],
                        f"{prefix}gated_micro_f1": gated["gated_micro_f1"],
                        f"{prefix}input_macro_f1": before.macro_f1, f"{prefix}input_micro_f1": before.micro_f1,
                        f"{prefix}input_gated_macro_f1": gated_in["gated_macro_f1"],
                        f"{prefix}input_gated_micro_f1": gated_in["gated_micro_f1"]})
            out[f"{prefix}per_class_f1"] = {c: s.f1 for c, s in after.per_class.items()}
        out["score"] = 0.5 * (out["gated_macro_f1"] + out["gated_micro_f1"])
        return out
