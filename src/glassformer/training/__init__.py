"""Training: one trainer for every task, checkpoints, schedules, data-parallel runs and saved models."""

from glassformer.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from glassformer.training.saved import SavedModel, SavedModelError, load_saved, register_model_class, save_model
from glassformer.training.trainer import TrainConfig, Trainer, TrainResult, model_loss, pause_points

__all__ = ["CheckpointError", "SavedModel", "SavedModelError", "TrainConfig", "TrainResult", "Trainer",
           "load_checkpoint", "load_saved", "model_loss", "pause_points", "register_model_class", "save_checkpoint", "save_model"]
