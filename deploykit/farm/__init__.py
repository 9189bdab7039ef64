"""A device farm on Ray: hosts advertise their attached devices as Ray resources, and a sweep's jobs run as Ray
tasks on the hosts that hold their devices (``deploykit sweep --executor ray``).

Layer: between orchestration (``sweep.py``, whose jobs it runs) and the CLI. Ray is an optional extra
(``deploykit[ray]``) and is imported only inside functions: ``deploykit --help`` imports no Ray.

- :mod:`.resources`: what this host advertises (``adb:SERIAL``, ``coral:ID``, ``apple:HOST``, ``host:HOSTNAME``,
  with a ``devicemodel`` label per device) and how a driver reads a cluster's devices back;
- :mod:`.executor`: the Ray executor (module-level task functions, plain data across the wire);
- :mod:`.node`: ``farm up`` / ``join`` / ``status``, token authentication and the version check at join.
"""
