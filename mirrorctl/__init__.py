"""mirrorctl: the control plane — OVS mirroring into mirror0 (ovsdbapp), links (pyroute2), the lab."""

__all__: list[str] = []
