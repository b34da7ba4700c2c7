# mirrorscope: the capture service and mirrorctl, for a DaemonSet beside kube-ovn-cni.
#
# What the container needs at run time (deploy/helm sets exactly this):
#   - hostNetwork, to see the node's mirror0 and br-int's links;
#   - CAP_NET_RAW for the AF_PACKET ring on mirror0;
#   - CAP_NET_ADMIN to bring mirror0 up and join the PACKET_FANOUT group of --workers N;
#   - OVS's socket, /var/run/openvswitch/db.sock, mounted from the host: it is root's and
#     mode 0750 on Kube-OVN nodes, so the pod runs as uid 0 with every other capability dropped.
#     Where the socket is group-readable, run as the image's user 65532 with that group instead.
# tests/unit/test_image.py runs this file's install steps in a fresh venv.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md /src/
COPY capture /src/capture
COPY analyzers /src/analyzers
COPY exporters /src/exporters
COPY mirrorctl /src/mirrorctl
RUN python -m venv /opt/mirrorscope && /opt/mirrorscope/bin/pip install /src

FROM python:3.11-slim-bookworm
# libpcap compiles --filter expressions to BPF.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpcap0.8 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/mirrorscope /opt/mirrorscope
ENV PATH=/opt/mirrorscope/bin:$PATH PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 10097
ENTRYPOINT ["mirrorctl"]
CMD ["capture", "run"]
