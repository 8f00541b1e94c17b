"""Real-time scoring over HTTP: the production model of the registry, reloaded on promotion."""

from fraud_assets.service.app import create_app
from fraud_assets.service.model_holder import NoProductionModel

__all__ = ["NoProductionModel", "create_app"]
