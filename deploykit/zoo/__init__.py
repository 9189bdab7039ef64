"""The reference model zoo: ``create_model(name)``, ``get_spec(name)``, ``list_models()``."""

from .registry import ModelSpec, create_model, get_spec, list_models, published_facts

__all__ = ["ModelSpec", "create_model", "get_spec", "list_models", "published_facts"]
