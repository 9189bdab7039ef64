"""Device profiles, one TOML file per device (installed as ``deploykit.device_profiles``). See deploykit/devices.py."""
