"""Run a recipe: build the task, data, loggers and Trainer; train with exact resumption; save, log and evaluate.

This is what ``rszoo train`` calls. The run directory (``output_dir``) holds everything about a run::

    runs/<name>/
      recipe.yaml          the fully resolved recipe
      checkpoints/         step=N.ckpt (optimizer, scheduler, RNG, data order, step); folders when sharded (DCP)
      logs/metrics.csv     every logged metric (also in MLflow)
      mlflow.db, mlartifacts/   the local MLflow store (unless logging.tracking_uri points elsewhere)
      model/               the final model (save_pretrained format), loadable with rszoo.load_model
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rszoo.recipes import recipe_to_yaml
from rszoo.utils.io import atomic_write_text

__all__ = ["TrainResult", "resolve_resume", "train"]


@dataclasses.dataclass
class TrainResult:
    """Where a run put things, and its final numbers."""

    run_dir: Path
    model_dir: Path | None
    checkpoint: Path | None
    metrics: dict[str, float]
    eval: dict[str, Any]
    mlflow_uri: str | None
    mlflow_run_id: str | None
    is_global_zero: bool = True


def resolve_resume(resume: str | None, checkpoint_dir: Path) -> Path | None:
    """``auto`` -> the latest checkpoint if any; ``false``/``none`` -> None; otherwise an existing path."""
    from rszoo.training.callbacks import latest_checkpoint

    value = str(resume).strip().lower() if resume is not None else "false"
    if value in ("false", "none", "no", "0", ""):
        return None
    if value == "auto":
        latest = latest_checkpoint(checkpoint_dir)
        # a SLURM preemption checkpoint (Lightning's hpc_ckpt_N.ckpt in the run directory) wins if it is newer
        hpc = sorted(checkpoint_dir.parent.glob("hpc_ckpt_*.ckpt"), key=lambda p: p.stat().st_mtime)
        if hpc and (latest is None or hpc[-1].stat().st_mtime > latest.stat().st_mtime):
            return hpc[-1]
        return latest
    path = Path(str(resume))
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise FileNotFoundError(f"checkpoint.resume: no step=N.ckpt file in {path}")
        return found
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint.resume: {path} does not exist (use auto, false, or a checkpoint path)"
        )
    return path


def _checkpoint_network_config(path: Path) -> str | None:
    """The network config stored in a checkpoint, read without loading the weights."""
    import torch

    if path.is_dir():  # sharded: the small metadata file holds it
        meta = path / "meta.pt"
        state = torch.load(meta, map_location="cpu", weights_only=True) if meta.is_file() else {}
    else:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return state.get("rszoo_network_config")


def _unsharded_network(task: Any, trainer: Any) -> Any:
    """The trained network as a plain module on rank 0 (gathering FSDP2 shards is a collective on every rank)."""
    if not task.is_sharded:
        return task.network
    from rszoo.training.sharding import full_state_dict

    state = full_state_dict(task.network)
    if not trainer.is_global_zero:
        return None
    plain = type(task.network)(task.network.config)
    plain.load_state_dict(state)
    plain.processor = task.network.processor
    return plain


def _mlflow_logger(recipe: DictConfig, run_dir: Path) -> Any:
    from lightning.pytorch.loggers import MLFlowLogger

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = recipe.logging.tracking_uri or f"sqlite:///{(run_dir / 'mlflow.db').resolve()}"
    id_file = run_dir / "mlflow_run_id.txt"
    run_id = id_file.read_text().strip() if id_file.is_file() else None
    logger = MLFlowLogger(
        experiment_name=recipe.logging.experiment,
        run_name=recipe.logging.run_name or recipe.name,
        tracking_uri=uri,
        artifact_location=(run_dir / "mlartifacts").resolve().as_uri(),
        run_id=run_id,
        log_model=False,
    )
    return logger


def train(recipe: DictConfig, extra_callbacks: list[Any] | None = None) -> TrainResult:
    """Train ``recipe`` (a validated DictConfig from :func:`rszoo.recipes.load_recipe`)."""
    import lightning as L
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from rszoo.training.callbacks import PeriodicEval, ResumeState, Throughput, latest_checkpoint
    from rszoo.training.cluster import batch_arithmetic, check_checkpoint_matches, check_devices
    from rszoo.training.strategies import build_strategy
    from rszoo.training.task import task_class

    run_dir = Path(recipe.output_dir)
    ckpt_dir = run_dir / "checkpoints"
    resolved = recipe_to_yaml(recipe)
    cluster = recipe.cluster
    check_devices(cluster.accelerator, cluster.devices, cluster.num_nodes)
    accumulate, arithmetic = batch_arithmetic(
        recipe.data.batch_size,
        recipe.trainer.accumulate_grad_batches,
        cluster.devices * cluster.num_nodes,
        recipe.data.global_batch_size,
    )
    L.seed_everything(recipe.seed, workers=True, verbose=False)

    task_cls = task_class(recipe.task)
    task = task_cls(
        model=recipe.model.name,
        init_from=recipe.model.init_from,
        model_overrides=OmegaConf.to_container(recipe.model.overrides),
        stage=recipe.stage,
        stage_args=OmegaConf.to_container(recipe.stage_args),
        freeze=OmegaConf.to_container(recipe.model.freeze),
        optimizer=OmegaConf.to_container(recipe.optimizer),
        scheduler=OmegaConf.to_container(recipe.scheduler),
    )
    datamodule = task.build_datamodule(recipe.data, seed=recipe.seed)

    rank_zero = int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0"))) == 0
    if rank_zero:
        print(f"[rszoo] resolved recipe ({recipe.name}):\n{resolved}", flush=True)
        print(f"[rszoo] {arithmetic}", flush=True)
        atomic_write_text(run_dir / "recipe.yaml", resolved)

    ckpt_path = resolve_resume(recipe.checkpoint.resume, ckpt_dir)
    # a resumed run writes its CSV next to the first one (MLflow continues the same run)
    csv_version = "logs" if ckpt_path is None else f"logs-resumed-{ckpt_path.stem.replace('=', '')}"
    loggers: list[Any] = [CSVLogger(save_dir=str(run_dir), name="", version=csv_version)]
    mlflow_logger = None
    if recipe.logging.mlflow:
        mlflow_logger = _mlflow_logger(recipe, run_dir)
        loggers.append(mlflow_logger)

    checkpointing = ModelCheckpoint(
        dirpath=str(ckpt_dir),
        filename="{step}",
        every_n_train_steps=recipe.checkpoint.every_n_steps,
        save_top_k=-1,
        save_last=False,  # ResumeState always saves the final step; a "last" copy would double the disk use
        enable_version_counter=False,
    )
    callbacks = [
        ResumeState(ckpt_dir, recipe.checkpoint.keep_last),
        checkpointing,
        LearningRateMonitor("step"),
        Throughput(),
    ]
    if recipe.eval.data and recipe.eval.every_n_steps:
        callbacks.append(PeriodicEval(recipe.eval, recipe.eval.every_n_steps, run_dir / "eval"))
    callbacks += list(extra_callbacks or [])
    trainer_cfg = recipe.trainer
    trainer = L.Trainer(
        accelerator=recipe.cluster.accelerator,
        devices=recipe.cluster.devices,
        num_nodes=recipe.cluster.num_nodes,
        strategy=build_strategy(recipe, task),
        precision=trainer_cfg.precision,
        max_steps=trainer_cfg.max_steps,
        max_epochs=trainer_cfg.max_epochs,
        accumulate_grad_batches=accumulate,
        gradient_clip_val=trainer_cfg.gradient_clip_val,
        val_check_interval=trainer_cfg.val_check_interval,
        check_val_every_n_epoch=None if trainer_cfg.val_check_interval else 1,
        limit_val_batches=trainer_cfg.limit_val_batches,
        log_every_n_steps=trainer_cfg.log_every_n_steps,
        deterministic=trainer_cfg.deterministic,
        enable_progress_bar=trainer_cfg.enable_progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # ResumableSampler shards by rank itself
        default_root_dir=str(run_dir),
        logger=loggers,
        callbacks=callbacks,
    )
    if ckpt_path is not None:
        check_checkpoint_matches(_checkpoint_network_config(ckpt_path), task.model_config(), ckpt_path)
        if rank_zero:
            print(f"[rszoo] resuming from {ckpt_path}", flush=True)
    if mlflow_logger is not None and trainer.is_global_zero:
        mlflow_logger.experiment.log_text(mlflow_logger.run_id, resolved, "recipe.yaml")
        atomic_write_text(run_dir / "mlflow_run_id.txt", mlflow_logger.run_id + "\n")
    trainer.fit(task, datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None)

    metrics = {
        k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1
    }
    model_dir = None
    evaluation: dict[str, Any] = {}
    final = _unsharded_network(task, trainer)
    if trainer.is_global_zero:
        if recipe.checkpoint.save_final_model:
            model_dir = final.save_pretrained(run_dir / "model", recipe=resolved)
        if recipe.eval.data:
            evaluation = task.evaluate(recipe.eval, out_dir=run_dir / "eval", network=final)
            if mlflow_logger is not None:
                numeric = {
                    "eval/" + k.replace("@", "_at_"): float(v)
                    for k, v in evaluation.items()
                    if isinstance(v, int | float)
                }
                mlflow_logger.log_metrics(numeric, step=trainer.global_step)
                mlflow_logger.experiment.log_artifacts(mlflow_logger.run_id, str(run_dir / "eval"), "eval")
        if mlflow_logger is not None and model_dir is not None and recipe.logging.log_model:
            mlflow_logger.experiment.log_artifacts(mlflow_logger.run_id, str(model_dir), "model")
    if mlflow_logger is not None:
        mlflow_logger.finalize("success")
    return TrainResult(
        run_dir=run_dir,
        model_dir=model_dir,
        checkpoint=latest_checkpoint(ckpt_dir),
        metrics=metrics,
        eval=evaluation,
        mlflow_uri=getattr(mlflow_logger, "_tracking_uri", None),
        mlflow_run_id=getattr(mlflow_logger, "run_id", None),
        is_global_zero=trainer.is_global_zero,
    )
