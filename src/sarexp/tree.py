"""Print the composed config as a rich tree, one branch per config group."""

import rich
import rich.syntax
import rich.tree
from omegaconf import DictConfig, OmegaConf

_GROUP_ORDER = ("task", "data", "model", "loss", "optimizer", "scheduler", "system", "trainer",
                "callbacks", "logger", "launcher", "paths")


def config_tree(cfg: DictConfig) -> rich.tree.Tree:
    """A tree with the top-level scalars first, then each group as YAML (interpolations resolved)."""
    tree = rich.tree.Tree("config", style="bold")
    scalars = {key: cfg[key] for key in cfg if not OmegaConf.is_config(cfg[key]) and cfg[key] is not None}
    if scalars:
        tree.add(rich.syntax.Syntax(OmegaConf.to_yaml(OmegaConf.create(scalars)), "yaml"))
    groups = [key for key in _GROUP_ORDER if key in cfg] + [
        key for key in cfg if key not in _GROUP_ORDER and OmegaConf.is_config(cfg[key])
    ]
    for key in groups:
        node = cfg[key]
        body = OmegaConf.to_yaml(node, resolve=True) if OmegaConf.is_config(node) else f"{node}\n"
        tree.add(key, style="bold cyan").add(rich.syntax.Syntax(body, "yaml"))
    return tree


def print_config_tree(cfg: DictConfig) -> None:
    """Print the tree to the terminal (the run dir keeps the config itself in .hydra/)."""
    rich.print(config_tree(cfg))
