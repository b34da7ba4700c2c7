"""`capture run`'s configuration: the flags checked and resolved into one ``RunConfig``."""

from __future__ import annotations

import argparse
import logging
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from analyzers import NoticeOptions, PipelineOptions
from exporters import (
    CardinalityConfig,
    IpfixOptions,
    IpfixTarget,
    MetricsConfig,
    PcapStoreError,
    RecordsRetention,
    StoreConfig,
    TlsFiles,
    parse_size,
)
from mirrorctl import ovs
from mirrorctl.ovs import OVSDBUnreachableError, UsageError

log = logging.getLogger(__name__)

NETNS_ENV = "MIRRORSCOPE_NETNS"
TOKEN_ENV = "MIRRORSCOPE_TOKEN"  # noqa: S105 - the variable's name, not a secret


@dataclass(frozen=True, slots=True)
class PcapApiConfig:
    """The pcap API's limits and the alert captures' windows and kept area (``--alert-*``)."""

    max_downloads: int = 4
    max_download_bytes: int = 1 << 30
    alert_lookback_s: float = 60.0
    alert_lookahead_s: float = 30.0
    kept_quota_bytes: int = 1 << 30


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything a capture worker needs (picklable: workers may be separate processes)."""

    iface: str
    netns: str | None
    bpf: str | None
    snaplen: int
    block_size: int
    block_count: int
    records: Path | None
    rotate_bytes: int
    node: str
    endpoint: str
    bridge: str
    options: PipelineOptions
    duration: float | None
    workers: int = 1
    fanout_group: int = 0
    wait_iface_s: float = 0.0  # how long to wait for a missing interface (--keep-mirror)
    metrics: MetricsConfig | None = None  # None: MetricsConfig(node) with its defaults
    ipfix: IpfixOptions | None = None  # --ipfix collectors; None: no IPFIX export
    #: The bearer token of the listener's API; None serves it open.
    token: str | None = field(default=None, repr=False)
    records_retention: RecordsRetention | None = None  # --records-quota, --records-retention
    notices: NoticeOptions | None = None  # the detectors' options; None: --no-notices
    pcap: StoreConfig | None = None  # --pcap-dir and friends; each worker sets its own index
    pcap_api: PcapApiConfig = field(default_factory=PcapApiConfig)
    tls: TlsFiles | None = None  # --tls-cert, --tls-key; None: plain HTTP
    peers: tuple[str, ...] = ()  # --peers: the other nodes' services, linked from the page
    coalesce_ms: int = 0  # --coalesce-ms: wait after a wake-up for more ring blocks


def _size_flag(text: str, flag: str) -> int:
    """A size flag's value in bytes (``exporters.parse_size``), or a usage error naming it."""
    try:
        return parse_size(text)
    except ValueError as e:
        raise UsageError(f"{flag}: {e}") from None


def pcap_config(args: argparse.Namespace, node: str) -> StoreConfig | None:
    """--pcap-dir, --pcap-quota, --pcap-file-size, --pcap-file-age, --pcap-min-free,
    --pcap-snaplen; None without --pcap-dir."""
    if args.pcap_dir is None:
        return None
    config = StoreConfig(
        directory=Path(args.pcap_dir),
        node=node,
        quota_bytes=_size_flag(args.pcap_quota, "--pcap-quota"),
        max_file_bytes=_size_flag(args.pcap_file_size, "--pcap-file-size"),
        max_file_age_s=args.pcap_file_age,
        min_free_bytes=_size_flag(args.pcap_min_free, "--pcap-min-free"),
        snaplen=args.pcap_snaplen,
    )
    try:
        config.check()
    except PcapStoreError as e:
        raise UsageError(f"--pcap-dir: {e}") from None
    return config


def pcap_api_config(args: argparse.Namespace) -> PcapApiConfig:
    if args.max_downloads < 1:
        raise UsageError(f"--max-downloads must be at least 1, not {args.max_downloads}")
    if args.alert_lookback < 0 or args.alert_lookahead < 0:
        raise UsageError("--alert-lookback and --alert-lookahead must not be negative")
    return PcapApiConfig(
        max_downloads=args.max_downloads,
        max_download_bytes=_size_flag(args.max_download_size, "--max-download-size"),
        alert_lookback_s=args.alert_lookback,
        alert_lookahead_s=args.alert_lookahead,
        kept_quota_bytes=_size_flag(args.kept_quota, "--kept-quota"),
    )


def pipeline_options(args: argparse.Namespace) -> PipelineOptions:
    """--max-flows and --no-dedup (``capture run`` and ``capture read``)."""
    if args.max_flows < 1:
        raise UsageError(f"--max-flows must be at least 1, not {args.max_flows}")
    options = PipelineOptions(max_flows=args.max_flows)
    return replace(options, dedup_window_ns=0) if args.no_dedup else options


def ipfix_options(args: argparse.Namespace) -> IpfixOptions | None:
    """--ipfix, --ipfix-mtu and --ipfix-active-timeout (``capture run`` and ``capture read``)."""
    if not args.ipfix:
        return None
    targets = tuple(IpfixTarget.parse(v) for v in args.ipfix)
    try:
        return IpfixOptions(targets, mtu=args.ipfix_mtu, active_timeout_s=args.ipfix_active_timeout)
    except ValueError as e:
        text = str(e).replace("active_timeout_s", "--ipfix-active-timeout")
        raise UsageError(text.replace("mtu", "--ipfix-mtu", 1)) from None


def notice_options(args: argparse.Namespace) -> NoticeOptions:
    """The --notice-* flags (``capture run`` and ``capture read``)."""
    try:
        return NoticeOptions(
            port_scan_threshold=args.notice_port_scan,
            port_scan_window_s=args.notice_port_scan_window,
            address_scan_threshold=args.notice_address_scan,
            address_scan_window_s=args.notice_address_scan_window,
            syn_flood_threshold=args.notice_syn_flood,
            syn_flood_window_s=args.notice_syn_flood_window,
            new_peers=args.notice_new_peers,
            new_peers_learn_s=args.notice_learn,
            suppress_s=args.notice_suppress,
            max_entries=args.notice_max_entries,
        )
    except ValueError as e:
        text = str(e).removesuffix("_threshold").replace("_s ", " ")
        raise UsageError(f"--notice-* flags: {text}") from None


def run_config(args: argparse.Namespace) -> RunConfig:
    """Check ``capture run``'s flags and resolve the OVSDB endpoint, netns and node name."""
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, not {args.workers}")
    if args.duration is not None and args.duration <= 0:
        raise UsageError(f"--duration must be positive, not {args.duration}")
    if args.rotate_mb < 1 or args.block_mb < 1 or args.blocks < 1:
        raise UsageError("--rotate-mb, --block-mb and --blocks must be at least 1")
    if args.coalesce_ms < 0:
        raise UsageError(f"--coalesce-ms must be 0 or more, not {args.coalesce_ms}")
    metrics = _metrics_config(args)  # bad flags fail before anything connects
    ipfix = ipfix_options(args)
    api = pcap_api_config(args)
    token = resolve_token(args.token_file, os.environ)
    tls = tls_files(args.tls_cert, args.tls_key)
    peers = peer_urls(args.peers)
    retention = records_retention(args)
    notices = None if args.no_notices else notice_options(args)
    endpoint = ovs.resolve_endpoint(args.ovsdb, os.environ)
    netns = args.netns or os.environ.get(NETNS_ENV) or None
    node = _resolve_node(args, endpoint)
    pcap = pcap_config(args, node)
    return RunConfig(
        iface=args.iface,
        netns=netns,
        bpf=args.filter,
        snaplen=args.snaplen,
        block_size=args.block_mb << 20,
        block_count=args.blocks,
        coalesce_ms=args.coalesce_ms,
        records=args.records,
        rotate_bytes=args.rotate_mb << 20,
        node=node,
        endpoint=endpoint,
        bridge=args.bridge,
        options=pipeline_options(args),
        duration=args.duration,
        workers=args.workers,
        fanout_group=os.getpid() & 0xFFFF,
        wait_iface_s=15.0 if args.keep_mirror != "none" else 0.0,
        metrics=replace(metrics, node=node),
        ipfix=ipfix,
        token=token,
        records_retention=retention,
        notices=notices,
        pcap=pcap,
        pcap_api=api,
        tls=tls,
        peers=peers,
    )


def tls_files(cert: Path | None, key: Path | None) -> TlsFiles | None:
    """``--tls-cert`` with ``--tls-key``: both or neither, each a readable file."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise UsageError("--tls-cert and --tls-key go together: give both or neither")
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not path.is_file():
            raise UsageError(f"{flag} {path}: no such file")
    return TlsFiles(cert, key)


def peer_urls(urls: Sequence[str] | None) -> tuple[str, ...]:
    """``--peers``: http(s) base URLs, without a trailing slash (the page appends paths)."""
    peers: list[str] = []
    for url in urls or ():
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--peers {url}: expected an http:// or https:// URL")
        peers.append(url.rstrip("/"))
    return tuple(peers)


def resolve_token(token_file: Path | None, environ: Mapping[str, str]) -> str | None:
    """The API's bearer token: the first line of ``--token-file``, else ``MIRRORSCOPE_TOKEN``.

    A named file that cannot be read or holds no token is an error, never an open service.
    """
    if token_file is not None:
        try:
            lines = token_file.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise UsageError(f"--token-file {token_file}: {e.strerror or e}") from None
        token = lines[0].strip() if lines else ""
        if not token:
            raise UsageError(f"--token-file {token_file} is empty: put the token on its first line")
        return token
    return environ.get(TOKEN_ENV, "").strip() or None


def records_retention(args: argparse.Namespace) -> RecordsRetention:
    """--records-quota SIZE and --records-retention AGE."""
    from exporters import parse_duration  # noqa: PLC0415 - a report name, resolved lazily

    quota, age = getattr(args, "records_quota", None), getattr(args, "records_retention", None)
    try:
        return RecordsRetention(
            parse_size(quota) if quota else None, parse_duration(age) if age else None
        )
    except ValueError as e:
        raise UsageError(f"--records-quota/--records-retention: {e}") from None


def _resolve_node(args: argparse.Namespace, endpoint: str) -> str:
    if args.node:
        return str(args.node)
    try:
        with ovs.connect(endpoint, timeout=2.0) as session:
            found = ovs.node_name(session.snapshot())
    except OVSDBUnreachableError as e:
        log.warning("%s; naming this node by its hostname", e)
        found = None
    return found or socket.gethostname()


_METRICS_FLAGS = {
    "top_k": "--metrics-top-k",
    "max_series": "--metrics-max-series",
    "grace_s": "--metrics-grace-s",
}


def _metrics_config(args: argparse.Namespace, node: str = "") -> MetricsConfig:
    """--metrics-top-k, --metrics-max-series, --metrics-grace-s, --coverage-window-s."""
    if args.coverage_window_s <= 0:
        raise UsageError(f"--coverage-window-s must be positive, not {args.coverage_window_s}")
    try:
        cardinality = CardinalityConfig(
            top_k=args.metrics_top_k,
            max_series=args.metrics_max_series,
            grace_s=args.metrics_grace_s,
        )
    except ValueError as e:
        text = str(e)  # names the field; the user knows the flag
        for field_name, flag in _METRICS_FLAGS.items():
            text = text.replace(field_name, flag)
        raise UsageError(text) from None
    return MetricsConfig(
        node=node, cardinality=cardinality, coverage_window_s=args.coverage_window_s
    )
