"""Starts the real Milvus 2.3.5 standalone server (PyPI `milvus==2.3.5`) on
127.0.0.1 with every port free, for the tests and the benchmark.

    python scripts/milvus_server.py --root .tools/milvus --data DIR --port PORT
        [--tls-mode 1|2 --server-pem F --server-key F --ca-pem F] [--auth]
        [--import-max-file-size BYTES] [--s3 HOST:PORT --s3-bucket NAME]

`--root` is where scripts/setup.sh unpacked the package's binaries (bin/).
The package's own `milvus-server` picks ports by probing from fixed defaults
and always starts embedded etcd on 2379/2380, so two servers collide; this
writes the same config with a free port for each and an etcd config of its
own, then becomes the server process (exec): SIGINT or SIGTERM to this pid
stops Milvus gracefully. Its data survives a restart on the same DIR.
"""

import argparse
import json
import os
import re
import shutil
import socket
import sys


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-mode", type=int, default=0)
    parser.add_argument("--server-pem", default="")
    parser.add_argument("--server-key", default="")
    parser.add_argument("--ca-pem", default="")
    parser.add_argument("--auth", action="store_true")
    parser.add_argument("--import-max-file-size", type=int, default=0)
    # Keeps its data in an S3-protocol server instead of the local disk, as a
    # cluster does; the keys come from MILVUS_S3_ACCESS_KEY and
    # MILVUS_S3_SECRET_KEY.
    parser.add_argument("--s3", default="")
    parser.add_argument("--s3-bucket", default="a-bucket")
    args = parser.parse_args()

    root, data = os.path.abspath(args.root), os.path.abspath(args.data)
    package = os.path.join(root, "site", "milvus")
    for sub in ("configs", "logs", "data", "run"):
        os.makedirs(os.path.join(data, sub), exist_ok=True)

    # Ports are chosen once per data directory: a restart reuses them.
    ports_file = os.path.join(data, "ports.json")
    if os.path.exists(ports_file):
        with open(ports_file, encoding="utf-8") as f:
            ports = json.load(f)
    else:
        ports = {}
    ports["proxy_port"] = args.port
    values = {
        "etcd_data_dir": os.path.join(data, "data", "etcd.data"),
        "local_storage_dir": os.path.join(data, "data"),
        "rocksmq_data_dir": os.path.join(data, "data", "rocksmq"),
        "etcd_log_path": os.path.join(data, "logs", "etcd.log"),
        "system_log_path": os.path.join(data, "logs"),
        "tls_mode": str(args.tls_mode),
        "server_pem_path": args.server_pem,
        "server_key_path": args.server_key,
        "ca_pem_path": args.ca_pem,
        "authorization_enabled": "true" if args.auth else "false",
    }

    def fill(match):
        text = match.group(1).strip()
        key = text.split(":")[0].split("(")[0].strip()
        if key.endswith("_port"):
            ports.setdefault(key, free_port())
            return str(ports[key])
        default = text.split(":", 1)[1].strip() if ":" in text else ""
        return values.get(key) or default

    with open(os.path.join(package, "data", "config.yaml.template"), encoding="utf-8") as f:
        config = re.sub(r"\{\{(.*?)\}\}", fill, f.read())
    if args.import_max_file_size:
        config = re.sub(
            r"ImportMaxFileSize: \d+", f"ImportMaxFileSize: {args.import_max_file_size}", config
        )
    if args.s3:
        config = use_s3(config, args.s3, args.s3_bucket)
    for key in ("etcd_client", "etcd_peer", "metrics"):
        ports.setdefault(key, free_port())
    with open(ports_file, "w", encoding="utf-8") as f:
        json.dump(ports, f)
    with open(os.path.join(data, "configs", "milvus.yaml"), "w", encoding="utf-8") as f:
        f.write(config)
    shutil.copy(os.path.join(package, "data", "glog.conf"), os.path.join(data, "configs", "glog.conf"))
    etcd_config = os.path.join(data, "configs", "embedEtcd.yaml")
    client, peer = f"http://127.0.0.1:{ports['etcd_client']}", f"http://127.0.0.1:{ports['etcd_peer']}"
    with open(etcd_config, "w", encoding="utf-8") as f:
        f.write(
            f"listen-client-urls: {client}\nadvertise-client-urls: {client}\n"
            f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\n"
            f"initial-cluster: default={peer}\n"
        )

    binary = os.path.join(root, "bin", "milvus")
    env = dict(os.environ)
    env.update(
        DEPLOY_MODE="STANDALONE",
        METRICS_PORT=str(ports["metrics"]),
        MILVUS_RUN_DIR=os.path.join(data, "run"),
        ETCD_CONFIG_PATH=etcd_config,
        LD_LIBRARY_PATH=os.path.join(root, "bin") + ":" + os.environ.get("LD_LIBRARY_PATH", ""),
    )
    os.chdir(data)
    sys.stdout.flush()
    die_with_parent()
    os.execve(binary, [binary, "run", "standalone"], env)


def use_s3(config, endpoint, bucket):
    """`config` with its data in bucket `bucket` of the S3-protocol server at `endpoint`."""
    host, port = endpoint.rsplit(":", 1)
    settings = {
        "address": host,
        "port": port,
        "accessKeyID": os.environ["MILVUS_S3_ACCESS_KEY"],
        "secretAccessKey": os.environ["MILVUS_S3_SECRET_KEY"],
        "bucketName": bucket,
    }
    head, minio = config.split("\nminio:\n", 1)
    block, rest = minio.split("\n\n", 1)
    for key, value in settings.items():
        block = re.sub(rf"^(  {key}:) [^#\n]*", lambda m: f"{m.group(1)} {value} ", block, count=1, flags=re.M)
    config = head + "\nminio:\n" + block + "\n\n" + rest
    return re.sub(r"storageType: local", "storageType: minio", config)


def die_with_parent():
    """The server gets SIGKILL when its parent (a test, a benchmark) dies, so
    an aborted run leaves no server behind (Linux; kept across exec)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() == 1:
        sys.exit("milvus_server.py: the parent is already gone")


if __name__ == "__main__":
    main()
