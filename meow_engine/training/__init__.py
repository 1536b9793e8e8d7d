"""Finetuning: the shared trainer, its data pipeline and the saved artifacts (see ``trainer``)."""

from meow_engine.training.artifacts import save_full, save_lora, save_merged
from meow_engine.training.data import TrainRow, rows_from_facts
from meow_engine.training.trainer import FinetuneResult, RoundDecision, finetune, plan_steps, save_artifact

__all__ = ["FinetuneResult", "RoundDecision", "TrainRow", "finetune", "plan_steps", "save_artifact", "rows_from_facts",
           "save_full", "save_lora",
           "save_merged"]
