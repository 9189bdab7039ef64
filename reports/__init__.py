"""Report rendering (HTML Pareto fronts) and its templates. Installed as ``deploykit.reports``."""
