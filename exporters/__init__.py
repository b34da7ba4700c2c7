"""Exporters: Prometheus metrics, pcap store, flow reports and IPFIX."""

__all__: list[str] = []
