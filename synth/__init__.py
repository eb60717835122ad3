"""The corpus simulator: an E-ConvRec-like corpus in the documented format, with a known purchase model."""
import core  # noqa: F401
