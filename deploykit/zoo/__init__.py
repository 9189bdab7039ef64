"""The reference model zoo: ``create_model(name)``, ``get_spec(name)``, ``list_models()``.

Importing this package registers every model, timm-style: the registry (``registry.py``) is a leaf, and the
family spec modules below register into it when imported. None of them imports torch: tables and specs are
data, and a spec's builder imports the network modules (``*_net.py``, ``blocks.py``, ``layers.py``) only when
a model is built. Keep it that way: ``deploykit models`` and name resolution must not pay torch's import time.
"""

from . import mobilenet_v1, mobilenet_v2, mobilenet_v3, mobilenet_v4, mobilevit, repvit  # noqa: F401  (registers)
from .registry import ModelSpec, create_model, get_spec, list_models, published_facts

__all__ = ["ModelSpec", "create_model", "get_spec", "list_models", "published_facts"]
