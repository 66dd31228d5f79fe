"""Task families and the loader that turns any supported source into ``Task`` records."""

from pipelines.tasks.loader import TaskSourceConfig, load_tasks

__all__ = ["TaskSourceConfig", "load_tasks"]
