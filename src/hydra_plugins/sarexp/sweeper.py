"""``hydra.sweeper._target_`` for sarexp sweeps: Hydra's Optuna sweeper with a persistent study."""

from typing import Any

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper


class PersistentOptunaSweeper(OptunaSweeper):
    def __init__(self, **settings: Any) -> None:
        from sarexp.sweepers.optuna import PersistentStudySweep

        self.sweeper = PersistentStudySweep(**settings)
