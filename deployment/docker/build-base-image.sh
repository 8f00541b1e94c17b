#!/bin/sh
# Builds the Python base image locally for hosts that cannot pull from Docker Hub (no
# registry reachable, as on the CI machines): a Debian bookworm root filesystem made by
# debootstrap from the machine's own apt mirror, brought in with `docker import`.
#
#   deployment/docker/build-base-image.sh            # prints the image name it built or found
#   docker build --build-arg PYTHON_IMAGE="$(deployment/docker/build-base-image.sh)" ...
#
# The tag carries a hash of this script and the mirror, so a second call finds the image
# and returns at once (debootstrap takes about two minutes) and any change here rebuilds it.
# Where Docker Hub is reachable, use python:3.11-slim-bookworm instead (the Dockerfile's
# default) and skip this script. Needs root (debootstrap, and the Docker socket).
set -eu

repository="${CARD_FRAUD_BASE_REPOSITORY:-card-fraud-base/python}"
suite=bookworm
# python3-venv brings ensurepip, which the builder stage uses to install uv (asked for
# directly, python3.11-venv fails: debootstrap misses its python3.11-distutils dependency);
# libgomp1 is the OpenMP runtime XGBoost links against; tzdata for the schedules' zones.
packages=python3.11,python3-venv,ca-certificates,libgomp1,tzdata

# The machine's own mirror: the one apt already reaches (deb822 or one-line sources).
mirror="${DEBIAN_MIRROR:-$(
    { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
      grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'
    } | grep -v security | head -n1)}"
mirror="${mirror:-http://deb.debian.org/debian}"

# Builds behind a TLS-inspecting proxy need the host's CA bundle inside the image, so the
# bundle is part of what the tag stands for.
ca_bundle="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
hash="$(cat "$0" "${ca_bundle}" | { cat; echo "${mirror}"; } | sha256sum | cut -c1-12)"
image="${repository}:3.11-${suite}-${hash}"

if docker image inspect "${image}" >/dev/null 2>&1; then
    echo "${image}"
    exit 0
fi

root="$(mktemp -d)"
trap 'rm -rf "${root}"' EXIT
debootstrap --variant=minbase --include="${packages}" "${suite}" "${root}" "${mirror}" >&2
cp "${ca_bundle}" "${root}/etc/ssl/certs/ca-certificates.crt"
# Nothing of apt's download cache or lists is needed at run time.
rm -rf "${root}/var/cache/apt/archives/"*.deb "${root}/var/lib/apt/lists/"*
ln -sf python3.11 "${root}/usr/bin/python3"
tar -C "${root}" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]' \
    - "${image}" >&2
echo "${image}"
