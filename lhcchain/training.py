"""The resumable training loop shared by the stages that train networks (amplitudes, generate).

Learning rate: linear warm-up over the fraction ``warmup`` of the run, then a cosine decay from ``lr``
to ``lr * lr_min_factor``, as a function of ``progress = max(epoch / epochs, elapsed / max_minutes)``,
so that a wall-clock budget also ends at the low learning rate.

Epochs: each draws a fresh permutation of the training indices and steps the optimiser on batches of
``batch_size`` of them; after each, the validation loss selects the best model. Training stops after
``epochs`` epochs, after ``max_minutes`` or after ``patience`` epochs without improvement.

Checkpoints: ``<checkpoint>.last`` is rewritten atomically (temp file + rename) at most every
``save_every`` seconds and whenever the caller's epoch hook asks: current and best model, optimiser,
loop state (epoch, elapsed time, patience counter, history and the caller's extra entries) and the
torch RNG state, next to the caller's metadata. A run that finds one whose metadata agrees on the
``match`` keys resumes from it; otherwise it is ignored. :meth:`Trainer.finish` writes the best model
with the metadata to ``checkpoint`` and deletes the ``.last`` file.

Validation noise: :func:`seeded` runs a block (a validation loss with random times or noise) on torch's
generators seeded with a fixed seed and then restores their states, so each epoch's validation loss sees
the same noise and the training's random stream is untouched.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .io import staged_outputs


def lr_schedule(settings: Mapping[str, Any], progress: float) -> float:
    """Learning rate at ``progress`` in [0, 1] (module doc)."""
    peak, floor, warm = float(settings["lr"]), float(settings["lr"]) * float(settings["lr_min_factor"]), float(settings["warmup"])
    progress = min(max(progress, 0.0), 1.0)
    if warm > 0 and progress < warm:
        return peak * max(progress / warm, 0.01)
    frac = (progress - warm) / max(1.0 - warm, 1e-12)
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * frac))


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run the block on torch's global generators seeded with ``seed`` and restore every state it changed on
    exit (:func:`torch.random.fork_rng`): the CPU generator's and, for a CUDA ``device``, those of the GPUs.
    Without the GPUs' restore, seeding inside a training loop would replay the same GPU noise every epoch."""
    gpus = list(range(torch.cuda.device_count())) if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=gpus):
        torch.random.default_generator.manual_seed(int(seed))
        if gpus:
            torch.cuda.manual_seed_all(int(seed))
        yield


def save_atomic(obj: dict, path: Path) -> None:
    """``torch.save`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Trainer:
    """Epoch loop with early stopping, a time budget, best-model selection and resume (module doc).

    ``settings`` needs ``epochs``, ``batch_size``, ``max_minutes``, ``patience`` and the schedule's
    keys; ``meta`` is stored in both checkpoint files; ``extra_state`` adds entries to the loop state
    that a resumed run restores (e.g. the training index list of boosting).
    """

    def __init__(self, name: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer, settings: Mapping[str, Any],
                 meta: Mapping[str, Any], checkpoint: str | os.PathLike[str], match: Sequence[str], seed: int,
                 log: logging.Logger, extra_state: Mapping[str, Any] | None = None,
                 log_every: float = 10.0, save_every: float = 30.0) -> None:
        self.name, self.model, self.opt, self.settings, self.meta, self.log = name, model, optimizer, settings, dict(meta), log
        self.checkpoint = Path(checkpoint)
        self.last_path = self.checkpoint.with_name(self.checkpoint.name + ".last")
        self.seed, self.log_every, self.save_every = int(seed), float(log_every), float(save_every)
        self.state: dict[str, Any] = {"epoch": 0, "elapsed": 0.0, "bad": 0, "best_val": math.inf, "best_epoch": 0,
                                      "history": [], **(extra_state or {})}
        self.best_state = copy.deepcopy(model.state_dict())
        self.resumed = self._resume(match)
        self.stop_reason = "epochs"
        self._t_start = time.perf_counter() - self.state["elapsed"]

    def _resume(self, match: Sequence[str]) -> bool:
        if not self.last_path.exists():
            return False
        try:
            last = torch.load(self.last_path, map_location=next(self.model.parameters()).device, weights_only=False)
            ok = all(last.get(key) == self.meta[key] for key in match)
        except Exception as exc:  # corrupt partial file: start afresh
            self.log.warning("ignoring unreadable %s (%s)", self.last_path, exc)
            return False
        if not ok:
            self.log.warning("%s: %s does not match these settings/data; starting afresh", self.name, self.last_path)
            return False
        self.model.load_state_dict(last["model"])
        self.opt.load_state_dict(last["optimizer"])
        self.best_state, self.state = last["best_model"], last["state"]
        torch.set_rng_state(last["rng"])
        self.log.info("%s: resuming from %s at epoch %d", self.name, self.last_path, self.state["epoch"])
        return True

    @property
    def elapsed(self) -> float:
        """Seconds of training, resumed runs included."""
        return time.perf_counter() - self._t_start

    def save_last(self) -> None:
        """Write ``<checkpoint>.last`` (module doc)."""
        self.state["elapsed"] = self.elapsed
        save_atomic({**self.meta, "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                     "best_model": self.best_state, "state": self.state, "rng": torch.get_rng_state()}, self.last_path)

    def run(self, indices: Callable[[], torch.Tensor], batch_loss: Callable[[torch.Tensor], torch.Tensor],
            validate: Callable[[], float], after_epoch: Callable[[], bool] | None = None) -> str:
        """Train until a stop condition (module doc), leave the model at its best weights and return the
        condition: ``epochs``, ``max_minutes`` or ``early_stopping``. ``indices()`` gives the (CPU) training indices of the next epoch,
        ``batch_loss(idx)`` the loss of a batch, ``validate()`` the validation loss; ``after_epoch()``
        returning True asks for a ``.last`` checkpoint now."""
        s = self.settings
        epochs, bs, patience = int(s["epochs"]), int(s["batch_size"]), int(s["patience"])
        budget = 60.0 * float(s["max_minutes"])
        device = next(self.model.parameters()).device
        gen = torch.Generator(device="cpu").manual_seed(self.seed + self.state["epoch"])
        t_log = t_save = time.perf_counter()
        self.model.train()
        while self.state["epoch"] < epochs:
            if self.elapsed > budget:
                self.stop_reason = "max_minutes"
                break
            if self.state["epoch"] > 0 and self.state["bad"] >= patience:
                self.stop_reason = "early_stopping"
                break
            index = indices()
            perm = index[torch.randperm(len(index), generator=gen)].to(device)
            total, count = 0.0, 0
            n_batches = max(1, len(perm) // bs)
            for b in range(n_batches):
                progress = max((self.state["epoch"] + b / n_batches) / epochs, self.elapsed / budget)
                for g in self.opt.param_groups:
                    g["lr"] = lr_schedule(s, progress)
                idx = perm[b * bs:(b + 1) * bs]
                loss = batch_loss(idx)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            self.state["epoch"] += 1
            val = validate()
            self.state["history"].append([self.state["epoch"], total / max(count, 1), val])
            if val < self.state["best_val"]:
                self.state["best_val"], self.state["best_epoch"], self.state["bad"] = val, self.state["epoch"], 0
                self.best_state = copy.deepcopy(self.model.state_dict())
            else:
                self.state["bad"] += 1
            now = time.perf_counter()
            if now - t_log >= self.log_every:
                t_log = now
                self.log.info("%s: epoch %d/%d, train loss %.4f, val loss %.4f (best %.4f @ %d), lr %.2e, %.1f epochs/min",
                              self.name, self.state["epoch"], epochs, total / max(count, 1), val, self.state["best_val"],
                              self.state["best_epoch"], self.opt.param_groups[0]["lr"], 60.0 * self.state["epoch"] / max(self.elapsed, 1e-9))
            if (after_epoch is not None and after_epoch()) or now - t_save >= self.save_every:
                self.save_last()
                t_save = time.perf_counter()
        self.model.load_state_dict(self.best_state)
        return self.stop_reason

    def finish(self) -> float:
        """Write the best model with the metadata and history to ``checkpoint``, delete the ``.last``
        file; returns the training minutes."""
        minutes = self.elapsed / 60.0
        with staged_outputs(self.checkpoint) as (tmp,):
            torch.save({**self.meta, "model": self.best_state, "epoch": self.state["epoch"], "best_epoch": self.state["best_epoch"],
                        "best_val_loss": self.state["best_val"], "history": self.state["history"]}, tmp)
        self.last_path.unlink(missing_ok=True)
        return minutes
