"""deploykit: reference mobile vision backbones, exported, verified, measured and compared across devices."""

__version__ = "0.1.0"
