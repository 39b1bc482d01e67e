# glowapp on an official CUDA build of PyTorch. Build and run (README, "Docker"):
#   docker build -t glowapp .
#   docker run --rm --gpus all --ipc host -v glowapp-data:/data -v glowapp-ckpt:/checkpoints \
#     -v glowapp-out:/outputs glowapp fit --config configs/glow_cifar10.yaml --config configs/gpu.yaml
# The configs' relative paths data/, checkpoints/ and outputs/ resolve (through links in /app) to
# the volumes /data, /checkpoints and /outputs, so a container's results outlive it.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY glowapp ./glowapp
COPY configs ./configs
# The shipped models and the feature classifier: `pip install .` copies them into the installed
# package (setup.py), where `--ckpt fashion-mnist` finds them; /app/checkpoints becomes the volume.
COPY checkpoints/fashion-mnist.ckpt checkpoints/fashion-mnist-conditional.ckpt \
     checkpoints/fashion_mnist_features.pt checkpoints/fashion_mnist_features.json ./checkpoints/

# The constraints file holds torch and torchvision at the base image's CUDA builds: pip then
# installs only what the image lacks (Lightning, jsonargparse, ...) and fails loudly, instead of
# quietly downloading another torch, if a dependency ever asks for a newer one.
RUN python -c "from importlib.metadata import version; [print(f'{p}=={version(p)}') for p in ('torch', 'torchvision')]" > /tmp/base-constraints.txt \
    && pip install --no-cache-dir --constraint /tmp/base-constraints.txt ".[demo]" \
    && rm -r /tmp/base-constraints.txt checkpoints \
    && groupadd --gid 1000 glow \
    && useradd --create-home --uid 1000 --gid 1000 --shell /bin/bash glow \
    && mkdir -p /data /checkpoints /outputs \
    && chown glow:glow /app /data /checkpoints /outputs \
    && ln -s /data data \
    && ln -s /checkpoints checkpoints \
    && ln -s /outputs outputs

# Numeric, so the ID is valid on hosts without a "glow" user (e.g. Kubernetes runAsNonRoot).
USER 1000:1000
VOLUME ["/data", "/checkpoints", "/outputs"]
# glowapp demo --host 0.0.0.0 (the shipped model; publish with -p 7860:7860), or --ckpt /checkpoints/RUN/last.ckpt
EXPOSE 7860

ENTRYPOINT ["glowapp"]
CMD ["--help"]
