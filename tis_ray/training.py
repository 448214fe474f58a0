"""Fine-tuning as a function: `fit(spec, train_set, ...)` returns the trained model and how long it took.

This is the one place the HF Trainer is built. Whatever should happen around training is passed in as
Transformers `TrainerCallback`s, which see the model, the optimizer and the trainer state at every step
and epoch: the trial's epoch evaluator today, epoch checkpoints and training-dynamics recording next.
A trial (`tis_ray.trial`) and the preparation's reference fine-tune (`tis_ray.preparation`) both call it.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import transformers
from datasets import Dataset
from transformers import PreTrainedModel, PrinterCallback, Trainer, TrainerCallback, TrainingArguments

from tis_ray.batching import LengthBucketSampler, PairCollator, PassSampler
from tis_ray.data.schema import MNLI_LABELS
from tis_ray.device import Placement, loader_workers
from tis_ray.dynamics import Dynamics
from tis_ray.errors import TisRayError
from tis_ray.models import freeze_base, load_model, model_label_ids
from tis_ray.progress import Progress
from tis_ray.spec import SweepSpec

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """A trained model, the wall time of training (callbacks included), the epochs and optimizer steps trained."""

    model: PreTrainedModel
    seconds: float
    epochs: int
    steps: int = 0


def build_model(spec: SweepSpec, seed: int, vocab_size: int, labels: Sequence[str] = MNLI_LABELS) -> PreTrainedModel:
    """Return the spec's classifier for the task's `labels`, initialised from `seed`, with its encoder frozen when
    the spec says so."""
    model = load_model(spec.model.name, seed=seed, vocab_size=vocab_size, label_order=spec.model.label_order,
                       labels=labels)
    if spec.model.freeze_base:
        freeze_base(model)
    return model


def labels_in_model_order(train_set: Dataset, model: PreTrainedModel, labels: Sequence[str] = MNLI_LABELS) -> Dataset:
    """Return `train_set` with labels renumbered to the model's output ids when its order differs from the
    task's `labels`."""
    label_ids = np.asarray(model_label_ids(model, labels))
    if np.array_equal(label_ids, np.arange(len(labels))):
        return train_set
    return train_set.map(lambda b: {"label": label_ids[np.asarray(b["label"])].tolist()}, batched=True)


def training_arguments(spec: SweepSpec, output_dir: Path, seed: int, placement: Placement,
                       checkpoints: bool = False) -> TrainingArguments:
    """Return the Trainer's arguments for the spec's training settings on `placement`.

    With `checkpoints`, a full checkpoint (model, optimizer, scheduler, RNG states, trainer state) is written
    to output_dir/checkpoint-<step> at the end of every epoch, only the newest kept; otherwise output_dir is
    a scratch folder and nothing is saved.
    """
    t = spec.train
    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=t.epochs,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_ratio,
        fp16=placement.precision == "fp16",
        bf16=placement.precision == "bf16",
        use_cpu=not placement.on_gpu,
        seed=seed,
        data_seed=seed,
        train_sampling_strategy="random",  # group_by_length: LengthBucketSampler, see BucketTrainer
        remove_unused_columns=False,  # keeps `length` for the length-bucketed sampler
        eval_strategy="no",  # callers evaluate through callbacks (the trial's EpochEvaluator)
        save_strategy="epoch" if checkpoints else "no",
        save_total_limit=1,
        logging_strategy="no",
        # the NaN/inf loss filter reads the loss back at every step: a host-device sync that stalls the GPU
        logging_nan_inf_filter=False,
        report_to="none",
        disable_tqdm=True,
        # on a GPU, worker processes collate the next batches while the GPU computes this one
        dataloader_num_workers=loader_workers(placement, spec.resources.cpu),
        dataloader_pin_memory=placement.on_gpu,
    )


class DynamicsRecorder(TrainerCallback):
    """Fills [epochs, n] arrays from the training batches; `BucketTrainer.compute_loss` hands it each batch."""

    def __init__(self, n_examples: int, epochs: int, n_classes: int = 3):
        self.probs = np.full((epochs, n_examples, n_classes), np.nan, dtype=np.float32)
        self.loss = np.full((epochs, n_examples), np.nan, dtype=np.float32)
        self.labels = np.full(n_examples, -1, dtype=np.int64)
        self.epoch, self.seconds = 0, 0.0

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.epoch = int(round(state.epoch or 0))

    def record(self, rows: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Store one batch's softmax and per-example loss at the rows of the training set it holds."""
        start = time.perf_counter()
        with torch.no_grad():
            logp = torch.log_softmax(logits.detach().float(), dim=-1)
            loss = -logp.gather(1, labels[:, None]).squeeze(1)
            rows_np = rows.cpu().numpy()
            self.probs[self.epoch, rows_np] = logp.exp().cpu().numpy()
            self.loss[self.epoch, rows_np] = loss.cpu().numpy()
            self.labels[rows_np] = labels.cpu().numpy()
        self.seconds += time.perf_counter() - start

    def result(self) -> Dynamics:
        """Return the recorded dynamics; every example must have been seen in every epoch."""
        if np.isnan(self.loss).any():
            missing = int(np.isnan(self.loss).any(axis=0).sum())
            raise TisRayError(f"training dynamics: {missing} examples were not seen in every epoch")
        return Dynamics(self.probs, self.loss, self.labels)


EPOCH_LOSS = "train/loss"  # the mean training loss of an epoch, in every trial's metrics
EPOCH_LR = "train/lr"  # the learning rate at the end of an epoch


class TrainingLoss(TrainerCallback):
    """The mean training loss and the learning rate of each epoch, from the training forward passes themselves.

    Each batch's loss is added up on the device (no host sync per step, unlike the Trainer's own logging) and
    read once at the epoch's end; the result is appended to `state.log_history`, where the epoch's evaluator
    finds it (`epoch_training_metrics`).
    """

    def __init__(self):
        self.total, self.batches = None, 0

    def add(self, loss: torch.Tensor) -> None:
        """Add one training batch's loss."""
        loss = loss.detach().float()
        self.total = loss if self.total is None else self.total + loss
        self.batches += 1

    def mean(self) -> float:
        """Return the mean loss of this epoch's batches so far (NaN before the first)."""
        return float((self.total / self.batches).item()) if self.batches else float("nan")

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.total, self.batches = None, 0

    def on_epoch_end(self, args, state, control, lr_scheduler=None, **kwargs):
        mean = self.mean()
        lr = float(lr_scheduler.get_last_lr()[0]) if lr_scheduler is not None else float("nan")
        state.log_history.append({"epoch": round(state.epoch), EPOCH_LOSS: mean, EPOCH_LR: lr})


class FitProgress(TrainerCallback):
    """Progress of a long fine-tune (the reference run): optimizer steps of the total, the running mean training
    loss, examples/s and the ETA, as a bar on a terminal or a timed line at most every 30 s."""

    def __init__(self, desc: str, batch_size: int, loss: TrainingLoss):
        self.desc, self.batch_size, self.loss, self.progress = desc, batch_size, loss, None

    def on_train_begin(self, args, state, control, **kwargs):
        self.progress = Progress(self.desc, state.max_steps, unit="step")
        self.first_step = self.progress.n = state.global_step  # a resumed run starts where its checkpoint was

    def on_step_end(self, args, state, control, **kwargs):
        elapsed = time.monotonic() - self.progress.start
        done = self.batch_size * (state.global_step - self.first_step)
        fields = {"examples/s": round(done / max(elapsed, 1e-9))}
        if self.progress.due():  # reading the loss syncs with the device: only when a line is shown
            fields["loss"] = self.loss.mean()
        self.progress.update(1, **fields)

    def on_train_end(self, args, state, control, **kwargs):
        self.progress.close()


def epoch_training_metrics(state) -> dict[str, float]:
    """Return {'train/loss', 'train/lr'} of the epoch the Trainer's `state` has just finished (empty if none)."""
    for entry in reversed(state.log_history):
        if EPOCH_LOSS in entry and entry["epoch"] == round(state.epoch):
            return {EPOCH_LOSS: entry[EPOCH_LOSS], EPOCH_LR: entry[EPOCH_LR]}
    return {}


class BucketTrainer(Trainer):
    """The HF Trainer with length-bucketed batches in random order when the spec groups by length, handing
    each training batch's logits to a DynamicsRecorder when one is given, and its loss to TrainingLoss."""

    def __init__(self, *args, group_by_length: bool, recorder: DynamicsRecorder | None = None,
                 pass_sampler: PassSampler | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.group_by_length, self.recorder, self.pass_sampler = group_by_length, recorder, pass_sampler
        self.training_loss = TrainingLoss()
        # first among the callers' callbacks: the epoch's evaluator reads what it records
        self.callback_handler.callbacks.insert(0, self.training_loss)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        rows = inputs.pop("rows", None)
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if model.training:
            self.training_loss.add(loss)
            if rows is not None and self.recorder is not None:
                self.recorder.record(rows, outputs.logits, inputs["labels"])
        return (loss, outputs) if return_outputs else loss

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.pass_sampler is not None:
            return self.pass_sampler
        if not self.group_by_length:
            return super()._get_train_sampler(train_dataset)
        return LengthBucketSampler(dataset["length"], self.args.train_batch_size, seed=self.args.seed)


def fit(spec: SweepSpec, train_set: Dataset, *, seed: int, tokenizer, placement: Placement,
        callbacks: Sequence[TrainerCallback] = (), checkpoint_dir: str | Path | None = None,
        resume_from: str | Path | None = None, recorder: DynamicsRecorder | None = None,
        progress: str | None = None, passes: Sequence[np.ndarray] | None = None,
        full_size: int | None = None, labels: Sequence[str] = MNLI_LABELS) -> FitResult:
    """Fine-tune `spec.model` on the tokenized `train_set` for `spec.train.epochs`; returns the FitResult.

    `checkpoint_dir`: write an epoch checkpoint there after every epoch (callbacks' `on_save` sees each one).
    `resume_from`: a checkpoint written so; training continues after its epoch with the model, optimizer,
    scheduler and RNG states it holds, so the result equals an uninterrupted run's. `recorder`: record every
    example's softmax and loss from the training forward passes (row i = example i of `train_set`).
    `progress`: show the run's progress under this name (the reference fine-tune; a trial logs its epochs). With
    `train.epochs: 0` the model is returned as built (evaluate-only runs).
    `passes`: row lists of `train_set`, one a pass in turn (a fresh random subset each epoch); `full_size`: the
    full training set's size, from which `train.schedule: steps` takes its steps (default: len(train_set)).
    `labels`: the task's label names in dataset id order (the model's head is built for them).
    """
    transformers.set_seed(seed)
    transformers.logging.set_verbosity_error()
    model = build_model(spec, seed, len(tokenizer), labels)
    if spec.train.epochs == 0:
        return FitResult(model.to(placement.device), 0.0, 0)
    train_set = labels_in_model_order(train_set, model, labels)
    if recorder is not None:
        train_set = train_set.add_column("row", np.arange(len(train_set)))
        callbacks = [*callbacks, recorder]
    with tempfile.TemporaryDirectory(prefix="tis_ray_hf_") as scratch:
        args = training_arguments(spec, Path(checkpoint_dir or scratch), seed, placement, checkpoints=bool(checkpoint_dir))
        trainer = BucketTrainer(model=model, args=args, train_dataset=train_set,
                                data_collator=PairCollator(tokenizer.pad_token_id), callbacks=list(callbacks),
                                group_by_length=spec.train.group_by_length, recorder=recorder,
                                pass_sampler=pass_sampler(spec, train_set, seed, passes, full_size))
        trainer.remove_callback(PrinterCallback)  # its end-of-training dict duplicates the callers' metrics
        if progress:
            trainer.add_callback(FitProgress(progress, spec.train.batch_size, trainer.training_loss))
        start = time.perf_counter()
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        seconds = time.perf_counter() - start
    return FitResult(trainer.model, seconds, spec.train.epochs, trainer.state.global_step)


def pass_sampler(spec: SweepSpec, train_set: Dataset, seed: int, passes: Sequence[np.ndarray] | None,
                 full_size: int | None) -> PassSampler | None:
    """Return the training order of a `steps` schedule or of per-epoch subsets (None: the Trainer's own, one
    pass over `train_set` per epoch)."""
    if spec.train.schedule == "epochs" and passes is None:
        return None
    passes = list(passes) if passes is not None else [np.arange(len(train_set))]
    per_epoch = spec.train.examples_per_epoch(len(passes[0]), full_size or len(train_set))
    lengths = np.asarray(train_set["length"]) if spec.train.group_by_length else None
    return PassSampler(passes, per_epoch, spec.train.batch_size, seed, lengths)
