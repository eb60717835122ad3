"""Built-in feature kinds. Each module registers its kinds on import."""
from features.extractors import basic, constraints, context, custom, feedback, interactive, knowledge  # noqa: F401
