#!/usr/bin/env python3
"""Writes the checked-in seed corpus under fuzz/corpus/TARGET/: small payloads of the shape our
tests see (what containerd 1.6, 2.1 and 2.4 send our shim, what runc 1.1.5 prints, the
archives and documents the client reads). Run from anywhere; it rewrites seed-* files only.
Real runc output is added when runc is installed."""

import hashlib
import io
import json
import os
import struct
import subprocess
import tarfile
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, value):
    """One protobuf field: bytes/str/message as length-delimited, int/bool as varint."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def message(*fields):
    return b"".join(field(n, v) for n, v in fields if v not in ("", b"", None))


def any_of(type_url, value):
    return message((1, type_url), (2, value))


def string_map(num, mapping):
    return b"".join(field(num, message((1, k), (2, v))) for k, v in mapping.items())


def write(target, name, data):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data)


STATE = "/run/containerd/io.containerd.runtime.v2.task/default/c1"
RUNC_OPTIONS = message((4, 0), (6, "runc"), (7, "/run/containerd/runc"), (9, True))
RUNC_ANY = any_of("containerd.runc.v1.Options", RUNC_OPTIONS)
OVERLAY = message(
    (1, "overlay"),
    (2, "overlay"),
    (4, "index=off"),
    (4, "workdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/3/work"),
    (4, "upperdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/3/fs"),
    (4, "lowerdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs"),
)
PROCESS = json.dumps({"terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", "echo hi"],
                      "env": ["PATH=/bin"], "cwd": "/"}).encode()
RESOURCES = json.dumps({"memory": {"limit": 8388608}, "cpu": {"shares": 512}, "pids": {"limit": 64}}).encode()

TASK = {
    "Create": message((1, "c1"), (2, STATE), (3, OVERLAY), (5, ""), (6, "/run/containerd/fifo/1/c1-stdout"),
                      (7, "/run/containerd/fifo/1/c1-stderr"), (10, RUNC_ANY)),
    "Create-file": message((1, "c1"), (2, STATE), (6, "file:///var/log/c1.log"), (7, "file:///var/log/c1.log")),
    "Create-binary": message((1, "web"), (2, STATE),
                             (6, "binary:///usr/local/bin/ctrd-log-driver?sink=json-file&path=%2Fvar%2Flog%2Fc.log"),
                             (7, "binary:///usr/local/bin/ctrd-log-driver?sink=json-file&path=%2Fvar%2Flog%2Fc.log")),
    "Exec": message((1, "c1"), (2, "exec-1"), (4, "/run/containerd/fifo/2/exec-1-stdin"),
                    (5, "/run/containerd/fifo/2/exec-1-stdout"),
                    (7, any_of("types.containerd.io/opencontainers/runtime-spec/1/Process", PROCESS))),
    "Update": message((1, "c1"), (2, any_of("types.containerd.io/opencontainers/runtime-spec/1/LinuxResources", RESOURCES))),
    "Kill": message((1, "c1"), (3, 9), (4, True)),
    "State": message((1, "c1"), (2, "exec-1")),
    "ResizePty": message((1, "c1"), (3, 80), (4, 24)),
    "Checkpoint": message((1, "c1"), (2, "/var/lib/containerd/checkpoint/c1")),
    "Wait": message((1, "c1")),
}
METHODS = ["State", "Create", "Start", "Delete", "Pids", "Pause", "Resume", "Checkpoint", "Kill", "Exec",
           "ResizePty", "CloseIO", "Update", "Wait", "Stats", "Connect", "Shutdown"]


def frame(stream, method, payload, metadata=()):
    request = message((1, "containerd.task.v2.Task"), (2, method), (3, payload), (4, 10_000_000_000),
                      *[(5, message((1, k), (2, v))) for k, v in metadata])
    return struct.pack(">IIBB", len(request), stream, 1, 0) + request


def tar_bytes(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def images():
    layer = tar_bytes([("bin/hello", b"#!/bin/sh\necho hello\n")])
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["/bin/hello"], "Env": ["PATH=/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": [digest(layer)]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": digest(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": digest(layer), "size": len(layer)}]}).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(manifest),
         "size": len(manifest), "platform": {"architecture": "amd64", "os": "linux"},
         "annotations": {"io.containerd.image.name": "docker.io/library/hello:latest"}}]}).encode()
    blob = lambda d: "blobs/sha256/" + hashlib.sha256(d).hexdigest()
    oci = tar_bytes([("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index),
                     (blob(manifest), manifest), (blob(config), config), (blob(layer), layer)])
    docker = tar_bytes([("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["hello:latest"],
                                                         "Layers": ["layer.tar"]}]).encode()),
                        ("config.json", config), ("layer.tar", layer)])
    write("image_archive", "oci-layout", oci)
    write("image_archive", "docker-save", docker)
    write("image_document", "manifest", b"127.0.0.1:5000/busybox:latest\n" + manifest)
    write("image_document", "index", b"127.0.0.1:5000/library/busybox@" + digest(index).encode() + b"\n" + index)
    write("image_document", "config", b"localhost:5000/hello:v1\n" + config)


def runc_seeds():
    write("runc_output", "state", json.dumps({"ociVersion": "1.0.2-dev", "id": "c1", "pid": 4242, "status": "running",
                                               "bundle": STATE, "rootfs": STATE + "/rootfs",
                                               "created": "2026-12-02T01:00:00.123456789Z", "owner": ""}))
    write("runc_output", "ps", "[4242,4250]")
    write("runc_output", "list-empty", "null")
    write("runc_output", "version", "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\n"
                                    "go: go1.19.8\nlibseccomp: 2.5.4\n")
    write("runc_output", "events", json.dumps({"type": "stats", "id": "c1", "data": {
        "cpu": {"usage": {"total": 123456, "percpu": [100, 200], "kernel": 10, "user": 20}, "throttling": {}},
        "memory": {"usage": {"limit": 8388608, "usage": 1024, "max": 2048, "failcnt": 0}, "raw": {"cache": 0}},
        "pids": {"current": 1, "limit": 64}, "blkio": {}, "hugetlb": {}}}) + "\n" +
        json.dumps({"type": "oom", "id": "c1"}) + "\n")
    write("runc_log", "json", '{"level":"error","msg":"container_linux.go:380: starting container process caused: '
                              'exec: \\"nosuch\\": executable file not found in $PATH","time":"2026-12-02T01:00:00Z"}\n')
    write("runc_log", "text", 'time="2026-12-02T01:00:00Z" level=error msg="container \\"c1\\" does not exist"\n'
                              'time="2026-12-02T01:00:00Z" level=warning msg=unquoted\n')
    try:
        for name, args in [("features", ["features"]), ("runc-version", ["--version"])]:
            out = subprocess.run(["runc", *args], capture_output=True, timeout=10).stdout
            if out:
                write("runc_output", name, out)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["runc", "spec"], cwd=tmp, capture_output=True, timeout=10)
            with open(os.path.join(tmp, "config.json"), "rb") as f:
                write("bundle_spec", "runc-spec", f.read())
            for fmt in ("json", "text"):
                log = os.path.join(tmp, "log." + fmt)
                subprocess.run(["runc", "--root", tmp, "--log", log, "--log-format", fmt, "state", "nosuch"],
                               capture_output=True, timeout=10)
                if os.path.exists(log):
                    with open(log, "rb") as f:
                        write("runc_log", "runc-" + fmt, f.read())
    except (OSError, subprocess.SubprocessError):
        pass


def main():
    for name, payload in TASK.items():
        method = name.split("-")[0]
        write("task_request", name, bytes([METHODS.index(method)]) + payload)
    write("ttrpc_frames", "create", frame(1, "Create", TASK["Create"], [("containerd-namespace", "default")]))
    write("ttrpc_frames", "exec-start", frame(3, "Exec", TASK["Exec"]) + frame(5, "Start", message((1, "c1"), (2, "exec-1"))))
    write("ttrpc_frames", "kill-wait", frame(7, "Kill", TASK["Kill"]) + frame(9, "Wait", TASK["Wait"]))
    write("ttrpc_frames", "oversized", struct.pack(">IIBB", 16 << 20, 1, 1, 0) + b"\0" * 64)

    write("runc_options", "runc", RUNC_ANY)
    write("runc_options", "cri", any_of("runtimeoptions.v1.Options", message((1, ""), (2, "/etc/containerd/runc.toml"))))
    write("shim_start", "options-1.6", RUNC_ANY)
    write("shim_start", "bootstrap-2.4", message((1, "c1"), (2, "default"), (4, "v2.4.2"),
                                                  (5, "/run/containerd/containerd.sock.ttrpc"),
                                                  (6, "/run/containerd/containerd.sock"),
                                                  (7, "/usr/bin/containerd"), (8, message((1, RUNC_ANY))),
                                                  (9, "/run/containerd/s")))
    write("shim_start", "flags", "\0".join(["-namespace", "default", "-address", "/run/containerd/containerd.sock",
                                            "-publish-binary", "/usr/bin/containerd", "-id", "c1", "-bundle", STATE,
                                            "start"]))
    write("bundle_spec", "pid-ns", json.dumps({"ociVersion": "1.0.2", "process": {"args": ["sleep", "600"], "cwd": "/"},
                                               "root": {"path": "rootfs"},
                                               "annotations": {"io.kubernetes.cri.sandbox-id": "0123abcd"},
                                               "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"},
                                                                        {"type": "network", "path": "/proc/1/ns/net"}]}}))

    write("log_driver_uri", "json-file", "binary:///usr/local/bin/ctrd-log-driver?sink=json-file&path=/var/log/ctr/c1.log"
                                         "&max-size=10m&max-file=5&compress=true&tag=web")
    write("log_driver_uri", "cri", "binary-v2:///usr/local/bin/ctrd-log-driver?sink=cri&path=%2Fvar%2Flog%2Fc2.log"
                                   "&mode=non-blocking&max-buffer-size=1m&drain-timeout=5s&ready=close")
    write("log_driver_uri", "syslog", "binary:///usr/local/bin/ctrd-log-driver?sink=syslog&syslog-address=udp://127.0.0.1:514"
                                      "&syslog-facility=local3&syslog-format=rfc5424micro&tag=web")
    write("log_driver_uri", "journald", "binary:///usr/local/bin/ctrd-log-driver?sink=journald&name=web"
                                        "&journald-socket=/run/systemd/journal/socket")
    write("log_driver_uri", "file", "file:///var/log/c1.log")

    labels = {"containerd.io/gc.root": "2026-12-02T01:00:00Z", "containerd.io/snapshot.ref": "sha256:ab"}
    snap = {
        0: message((1, "overlay"), (2, "default/12/extract-123-abc sha256:0123"), (3, "sha256:4567"), (4, b"")),
        3: message((1, "overlay"), (2, "sha256:0123"), (3, "default/12/extract-123-abc sha256:0123")),
        6: message((1, "overlay"), (2, message((1, "sha256:0123"), (4, 3)))),
        7: message((1, "overlay"), (2, "labels.\"containerd.io/gc.root\""), (2, "parent~=\"^sha256:\",kind==committed")),
    }
    for method, payload in snap.items():
        if method in (0, 3):
            payload += string_map(4, labels)
        if method == 6:
            payload = message((1, "overlay"), (2, message((1, "sha256:0123"), (4, 3)) + string_map(6, labels)))
        write("snapshot_request", str(method), bytes([method]) + payload)
    # A commit onto another parent (rebase, containerd 2.2+: `parent` is field 5).
    write("snapshot_request", "3-rebase", bytes([3]) + message((1, "overlay"), (2, "sha256:0123"),
                                                                (3, "default/12/extract-123-abc sha256:0123"),
                                                                (5, "sha256:4567")))
    write("snapshot_filter", "ctr", 'labels."containerd.io/gc.root"\nname==base,kind!=view|parent~=/^sha256:/\n'
                                    'labels.a.b=="c,d|e"')

    images()
    runc_seeds()


if __name__ == "__main__":
    main()
