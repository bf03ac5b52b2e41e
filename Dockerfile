# Tetrad in a container: the same install as a checkout's `make install`, so the Makefile stays the one source of
# truth for what an environment holds.
#
#   docker build -t tetrad .
#   docker run --gpus all -v $PWD/weights:/opt/tetrad/weights -v $PWD/videos:/videos \
#     tetrad analyze /videos --json /videos/results.jsonl
#
# The container runs as user `tetrad` (uid 10001), so /videos must be writable by it
# (or run it as yourself: --user "$(id -u):$(id -g)").
#
# CPU-only hosts: docker build --build-arg BASE=ubuntu:24.04 -t tetrad:cpu .
# That image still carries the CUDA 13 wheels (torch, nvidia-*, triton) because requirements.txt is the one
# pinned list for every machine; torch simply finds no GPU and runs on the CPU.

# torch's wheels bundle their own CUDA 13 libraries (the nvidia-* pins), so the CUDA image is here for what the
# NVIDIA container toolkit reads (NVIDIA_VISIBLE_DEVICES, NVIDIA_DRIVER_CAPABILITIES, the driver-compat setup).
ARG BASE=nvidia/cuda:13.0.2-runtime-ubuntu24.04
FROM ${BASE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG DEBIAN_FRONTEND=noninteractive

# Only what `make install` needs before it can run; it apt-installs espeak-ng and alsa-utils itself (system-deps),
# so that list lives in one place. The recommends switch also covers the Makefile's own apt-get, which has no flag.
# DL3008 (pin apt versions) is off: Ubuntu drops superseded versions from its archive, so pins break rebuilds,
# and the pins that matter (every Python package) are in requirements.txt.
# hadolint ignore=DL3008
RUN echo 'APT::Install-Recommends "false";' > /etc/apt/apt.conf.d/90-no-recommends \
 && apt-get update \
 && apt-get install -y --no-install-recommends make python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --user-group --create-home --shell /bin/bash tetrad

# What the Makefile exports, so `tetrad` behaves in here as it does under make: offline, no telemetry.
# No pip cache: the wheels (several GB with CUDA) would otherwise stay in the image a second time.
ENV PATH=/opt/tetrad/.venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    DVC_NO_ANALYTICS=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/tetrad

# Only the inputs of `make install` first (its stamp depends on requirements.txt and pyproject.toml; `pip install
# -e .` reads README.md and src/), so editing conf/, docs/ or tests/ does not reinstall the multi-GB venv.
COPY --chown=tetrad:tetrad Makefile requirements.txt pyproject.toml README.md ./
COPY --chown=tetrad:tetrad src/ src/

# Root for this step only: system-deps apt-installs when it runs as root. The chown shares the layer with the venv
# (a later RUN would copy all of it into a second layer); weights/ is made here so the volume below starts
# writable by `tetrad` (demo-weights writes there) when no host folder is mounted.
RUN make install \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p weights \
 && chown -R tetrad:tetrad /opt/tetrad

# The rest of the repo (conf/, dvc.yaml, stages/, ...). .dockerignore keeps out weights, data, runs and caches.
COPY --chown=tetrad:tetrad . .

# .git is not copied (size, history), and DVC refuses a repo without one unless told; config.local is the
# machine-local layer of DVC's config (gitignored, kept out by .dockerignore), so .dvc/config stays as committed.
RUN printf '[core]\n    no_scm = true\n' > .dvc/config.local

# Numeric, so the runtime (and Kubernetes' runAsNonRoot) can tell it is not root without the image's /etc/passwd.
USER 10001:10001

# Weights are mounted, never baked in: licences differ per checkpoint and they are GBs.
VOLUME ["/opt/tetrad/weights"]

ENTRYPOINT ["tetrad"]
CMD ["--help"]
