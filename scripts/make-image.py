#!/usr/bin/env python3
"""Writes an OCI image layout of random (incompressible) layers, for benchmarks and memory tests.

usage: scripts/make-image.py DIR TOTAL_MIB LAYERS [TAG]
The layers are uncompressed (media type ...layer.v1.tar) so no tool has to decompress them; the
config lists their digests as diff_ids. Streams in 8 MiB pieces: memory stays small.
"""
import hashlib
import json
import os
import sys


def main():
    out, total_mib, layers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    tag = sys.argv[4] if len(sys.argv) > 4 else "1.0"
    blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(data):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + digest, "size": len(data)}

    per_layer = total_mib * (1 << 20) // layers
    descriptors = []
    for _ in range(layers):
        tmp = os.path.join(blobs, "incoming")
        h = hashlib.sha256()
        with open(tmp, "wb") as f:
            left = per_layer
            while left:
                piece = os.urandom(min(left, 8 << 20))
                h.update(piece)
                f.write(piece)
                left -= len(piece)
        os.replace(tmp, os.path.join(blobs, h.hexdigest()))
        descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                            "digest": "sha256:" + h.hexdigest(), "size": per_layer})
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]}},
                        separators=(",", ":")).encode()
    config_desc = dict(mediaType="application/vnd.oci.image.config.v1+json", **put(config))
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": config_desc, "layers": descriptors}, separators=(",", ":")).encode()
    manifest_desc = put(manifest)
    index = {"schemaVersion": 2, "manifests": [dict(
        mediaType="application/vnd.oci.image.manifest.v1+json", **manifest_desc,
        annotations={"org.opencontainers.image.ref.name": tag})]}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    print(manifest_desc["digest"])


if __name__ == "__main__":
    main()
