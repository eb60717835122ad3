"""Built-in feature kinds. Each module registers its kinds on import."""
from features.extractors import basic, interactive, context, knowledge  # noqa: F401
