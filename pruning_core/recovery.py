"""Recovery fine-tune: distil a pruned (and repaired) model from the full one, and the
compensation view's data (each kept head's importance before and after).

The student learns the teacher's softened class distribution (KL divergence at temperature T,
scaled by T^2) and optionally its hidden states (mean squared error of every layer's output over
non-padding tokens) on the calibration set, with AdamW and a linear decay. Dropout stays off and
step i's batch is drawn from ``default_rng([seed, i])``, so a run that was cancelled and resumed
from its checkpoint ends with exactly the weights of an uninterrupted one. Checkpoints (weights,
optimiser state, step, losses) go to the result cache, keyed by student, teacher, data and
settings; a finished run is found there and not repeated.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from .batching import collate, encode
from .cache import DiskCache, cache_key
from .data import TextDataset
from .evaluation import forward_logits
from .gating import strip_gate_hooks
from .loading import LoadedModel, model_fingerprint
from .progress import ProgressFn, no_progress
from .scores import head_importance

CancelFn = Callable[[], bool] | threading.Event


@dataclass(frozen=True)
class RecoveryParams:
    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-5
    temperature: float = 2.0
    hidden_weight: float = 0.0
    seed: int = 0


@dataclass
class RecoveryResult:
    """The fine-tuned model (the part done so far when cancelled) and how the run went."""

    model: LoadedModel
    steps_done: int
    completed: bool
    losses: list[float]
    seconds: float
    resumed_from: int
    params: RecoveryParams
    data: str

    def summary(self) -> dict:
        return {
            "steps_done": self.steps_done,
            "completed": self.completed,
            "resumed_from": self.resumed_from,
            "seconds": round(self.seconds, 1),
            "first_loss": round(self.losses[0], 5) if self.losses else None,
            "last_loss": round(float(np.mean(self.losses[-10:])), 5) if self.losses else None,
            "data": self.data,
            **asdict(self.params),
        }


def _cancelled(cancel: CancelFn | None) -> bool:
    if cancel is None:
        return False
    return cancel.is_set() if isinstance(cancel, threading.Event) else bool(cancel())


def _save(cache: DiskCache, key: str, model, optimizer, step: int, losses: list[float], seconds: float, final: bool) -> None:
    arrays = {f"model.{name}": t.detach().cpu().numpy() for name, t in model.state_dict().items()}
    if not final:
        for index, state in optimizer.state_dict()["state"].items():
            for name, value in state.items():
                arrays[f"opt.{index}.{name}"] = value.detach().cpu().numpy() if torch.is_tensor(value) else np.asarray(value)
    cache.put(key, arrays, {"step": step, "losses": json.dumps(losses), "seconds": seconds, "final": final})


def _restore(hit, model, optimizer) -> tuple[int, list[float], float]:
    arrays, meta = hit
    state = {name[len("model.") :]: torch.from_numpy(a) for name, a in arrays.items() if name.startswith("model.")}
    model.load_state_dict(state, strict=True)
    opt_state: dict[int, dict] = {}
    for name, value in arrays.items():
        if name.startswith("opt."):
            _, index, key = name.split(".", 2)
            opt_state.setdefault(int(index), {})[key] = torch.from_numpy(np.array(value))
    if opt_state:
        groups = optimizer.state_dict()["param_groups"]
        optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    return int(meta["step"]), list(json.loads(meta["losses"])), float(meta["seconds"])


def recover(
    student: LoadedModel,
    teacher: LoadedModel,
    data: TextDataset,
    params: RecoveryParams = RecoveryParams(),
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    cache: DiskCache | None = None,
    checkpoint_every: int = 50,
) -> RecoveryResult:
    """Distil ``student`` (a pruned model) from ``teacher`` (the full model) on ``data``.

    ``cancel`` (an Event or a callable returning True) is checked before every step; on cancel the
    state is checkpointed and the partial result returned (``completed`` False). Calling again
    with the same arguments resumes from the last checkpoint. Neither input model is changed.
    """
    cache = cache if cache is not None else DiskCache()
    report = progress or no_progress
    if student.num_labels != teacher.num_labels:
        raise ValueError("The student and the teacher must predict the same classes.")
    key = cache_key("recovery", student=student.fingerprint, teacher=teacher.fingerprint, data=data.fingerprint, params=asdict(params))
    model = copy.deepcopy(student.model)
    strip_gate_hooks(model)
    model.eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.lr, weight_decay=0.0)
    step, losses, spent = 0, [], 0.0
    hit = cache.get(key)
    if hit is not None:
        step, losses, spent = _restore(hit, model, optimizer)
    resumed_from = step
    started = time.perf_counter()
    encoded = encode(teacher, data)
    student_encoded = encode(student, data)
    if not np.array_equal(encoded.lengths, student_encoded.lengths):
        raise ValueError("The student and the teacher tokenise the data differently.")
    if step < params.steps:
        report(step / params.steps, "teacher predictions")
        teacher_logits = torch.as_tensor(forward_logits(teacher, encoded), device=student.device)
    temperature = params.temperature
    completed = True
    while step < params.steps:
        if _cancelled(cancel):
            completed = False
            break
        rng = np.random.default_rng([params.seed, step])
        indices = np.sort(rng.choice(len(encoded), size=min(params.batch_size, len(encoded)), replace=False))
        batch = collate(student_encoded, indices, student.pad_id, student.device)
        for group in optimizer.param_groups:
            group["lr"] = params.lr * (1.0 - step / params.steps)
        out = model(**batch, output_hidden_states=params.hidden_weight > 0)
        target = F.log_softmax(teacher_logits[indices] / temperature, dim=-1)
        loss = F.kl_div(F.log_softmax(out.logits / temperature, dim=-1), target, log_target=True, reduction="batchmean") * temperature**2
        if params.hidden_weight > 0:
            with torch.no_grad():
                reference = teacher.model(**collate(encoded, indices, teacher.pad_id, teacher.device), output_hidden_states=True)
            tokens = batch["attention_mask"].bool()
            hidden_loss = sum(F.mse_loss(s[tokens], t[tokens]) for s, t in zip(out.hidden_states[1:], reference.hidden_states[1:]))
            loss = loss + params.hidden_weight * hidden_loss / (len(out.hidden_states) - 1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.item()))
        step += 1
        report(step / params.steps, f"recovery step {step}/{params.steps} loss {losses[-1]:.4f}")
        if step % checkpoint_every == 0 and step < params.steps:
            _save(cache, key, model, optimizer, step, losses, spent + time.perf_counter() - started, final=False)
    seconds = spent + time.perf_counter() - started
    if step > resumed_from or hit is None:
        _save(cache, key, model, optimizer, step, losses, seconds, final=completed)
    model.eval()
    trained = replace(
        student,
        name=f"{student.name} + recovery",
        model=model,
        fingerprint=model_fingerprint(model, extra=json.dumps(student.kept_heads)),
        notices=list(student.notices),
        _eager=None,
        caches={},
    )
    return RecoveryResult(trained, step, completed, losses, seconds, resumed_from, params, data.name)


@dataclass
class Compensation:
    """Each head's importance (Michel et al.) before and after recovery on the same data; pruned
    heads are NaN. ``raw`` values are comparable across layers and models, ``normalized`` are
    layer-normalised as everywhere else."""

    raw_before: np.ndarray
    raw_after: np.ndarray
    normalized_before: np.ndarray
    normalized_after: np.ndarray
    data: str
    notes: list[str] = field(default_factory=list)

    @property
    def change(self) -> np.ndarray:
        """raw_after - raw_before per head (NaN where pruned)."""
        return self.raw_after - self.raw_before

    def histogram(self, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
        """Counts and bin edges of the change over the kept heads."""
        values = self.change[np.isfinite(self.change)]
        return np.histogram(values, bins=bins)

    def to_dict(self) -> dict:
        change = self.change
        kept = change[np.isfinite(change)]
        counts, edges = self.histogram()

        def grid(a: np.ndarray) -> list:
            return [[None if not np.isfinite(v) else round(float(v), 6) for v in row] for row in a]

        return {
            "data": self.data,
            "raw_before": grid(self.raw_before),
            "raw_after": grid(self.raw_after),
            "normalized_before": grid(self.normalized_before),
            "normalized_after": grid(self.normalized_after),
            "change": grid(change),
            "histogram": {"counts": counts.tolist(), "edges": [round(float(e), 6) for e in edges]},
            "summary": {
                "kept_heads": int(kept.size),
                "mean_change": round(float(kept.mean()), 6) if kept.size else None,
                "std_change": round(float(kept.std()), 6) if kept.size else None,
                "share_increased": round(float((kept > 0).mean()), 4) if kept.size else None,
            },
        }


def compensation(before: LoadedModel, after: LoadedModel, data: TextDataset, cache: DiskCache | None = None) -> Compensation:
    """Importance of every kept head before and after recovery (same heads, same data)."""
    if before.kept_heads != after.kept_heads:
        raise ValueError("Compensation compares the same pruned model before and after recovery.")
    first = head_importance(before, data, cache=cache)
    second = head_importance(after, data, cache=cache)
    return Compensation(first.raw, second.raw, first.normalized, second.normalized, data.name)
