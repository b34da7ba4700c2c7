"""mirrorctl: the control plane — OVS mirroring into mirror0, links, the local lab."""

__all__: list[str] = []
