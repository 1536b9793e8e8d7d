"""Finetuning: the shared trainer, its data pipeline and the saved artifacts (see ``trainer``)."""

from meow_engine.training.artifacts import save_full, save_lora, save_merged
from meow_engine.training.data import TrainRow, rows_from_facts
from meow_engine.training.trainer import FinetuneResult, finetune, plan_steps

__all__ = ["FinetuneResult", "TrainRow", "finetune", "plan_steps", "rows_from_facts", "save_full", "save_lora",
           "save_merged"]
