"""Built-in feature kinds. Each module registers its kinds on import."""
from features.extractors import basic, context, custom, interactive, knowledge  # noqa: F401
