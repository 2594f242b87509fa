"""
nginx set up like the proxy on Elastic Beanstalk's Docker platform, for
tests on loopback.

Run as a script, it fetches Debian's nginx into a cache folder without
installing it (no service starts) and prints the binary's path:

    python tests/eb_nginx.py [--cache FOLDER]

The cache folder is C{$WSECHO_NGINX_CACHE}, else C{~/.cache/wsecho/nginx}.
C{apt-get download} needs the package lists: run C{apt-get update} once on a
new machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from image_process import baseEnvironment, waitForConnect
from serverprocess import RunningProcess

CACHE_VARIABLE = "WSECHO_NGINX_CACHE"
PACKAGES = ("nginx", "nginx-common")
PLATFORM_LOG_FOLDER = "/var/log/nginx/"

PLATFORM_HEALTHD_CONF = """\
if ($time_iso8601 ~ "^(\\d{4})-(\\d{2})-(\\d{2})T(\\d{2})") {
    set $year $1;
    set $month $2;
    set $day $3;
    set $hour $4;
}
access_log /var/log/nginx/healthd/application.log.$year-$month-$day-$hour healthd;
"""
"""
The platform's own C{conf.d/elasticbeanstalk/healthd.conf} (Amazon Linux 2
Docker platform), which a bundle's file of the same name replaces.
"""

NGINX_CONF = """\
# Like /etc/nginx/nginx.conf of Elastic Beanstalk's Docker platform, on
# loopback, with every path under the prefix and the test's additions marked.
daemon off;
worker_processes 1;
error_log {prefix}/logs/error.log info;
pid {prefix}/nginx.pid;

events {{
    worker_connections 1024;
}}

http {{
    log_format main '$remote_addr - $remote_user [$time_local] "$request" '
                    '$status $body_bytes_sent "$http_referer" '
                    '"$http_user_agent" "$http_x_forwarded_for"';
    log_format healthd '$msec"$uri"$status"$request_time"$upstream_response_time"'
                       '$http_x_forwarded_for';
    # Test only: the Connection header that nginx sends upstream.
    log_format upstream_headers '$uri $status connection=$connection_upgrade';

    client_body_temp_path {prefix}/temp/client_body;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;

    include {prefix}/conf.d/*.conf;

    upstream docker {{
        server 127.0.0.1:{upstreamPort};
        keepalive 256;
    }}

    map $http_upgrade $connection_upgrade {{
        default "upgrade";
    }}

    server {{
        listen 127.0.0.1:{listenPort} default_server;
        root {prefix}/html;

        access_log {prefix}/logs/access.log main;
        access_log {prefix}/logs/upstream.log upstream_headers;

        client_header_timeout 60;
        client_body_timeout 60;
        keepalive_timeout 60;
        gzip off;

        location / {{
            proxy_pass http://docker;
            proxy_http_version 1.1;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}

        include {prefix}/conf.d/elasticbeanstalk/*.conf;
    }}
}}
"""


class NginxUnavailableError(Exception):
    """
    nginx could not be fetched. The message gives the cause.
    """


def defaultCache() -> Path:
    configured = os.environ.get(CACHE_VARIABLE)
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "wsecho" / "nginx"


def fetchNginx(cache: Path | None = None) -> Path:
    """
    Return the path of the nginx binary in C{cache}, fetching and unpacking
    Debian's packages there first if needed.

    @raise NginxUnavailableError: C{apt-get download} or C{dpkg -x} failed.
    """
    cache = cache or defaultCache()
    binary = cache / "usr" / "sbin" / "nginx"
    if binary.is_file():
        return binary
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise NginxUnavailableError(
                f"{tool} is not installed; fetching nginx needs a Debian system"
            )
    with tempfile.TemporaryDirectory(prefix="wsecho-nginx-download-") as download:
        # apt-get downloads as the _apt user when that user can write here.
        os.chmod(download, 0o777)  # noqa: S103
        fetched = subprocess.run(
            ["apt-get", "download", *PACKAGES],
            cwd=download,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if fetched.returncode != 0:
            lines = (fetched.stderr or fetched.stdout).strip().splitlines() or [
                "no output"
            ]
            raise NginxUnavailableError(
                f"apt-get download {' '.join(PACKAGES)} failed: {lines[-1]} "
                "(run apt-get update first on a new machine)"
            )
        cache.mkdir(parents=True, exist_ok=True)
        for package in sorted(Path(download).glob("*.deb")):
            subprocess.run(
                ["dpkg", "-x", str(package), str(cache)], check=True, timeout=120
            )
    if not binary.is_file():
        raise NginxUnavailableError(f"the nginx packages did not contain {binary}")
    return binary


def preparePrefix(
    prefix: Path,
    platformNginx: Path,
    overrides: Mapping[str, str] = {},
) -> None:
    """
    Lay out an nginx prefix with the platform's drop-ins, then the bundle's.

    The bundle's C{.platform/nginx/conf.d} is copied over the platform's own
    files, as Elastic Beanstalk does, with C{/var/log/nginx/} moved under the
    prefix. Each directive in C{overrides} must appear exactly once in the
    bundle's drop-ins and gets the given value there.

    @param platformNginx: The bundle's C{.platform/nginx} folder.
    """
    for folder in ("conf.d/elasticbeanstalk", "logs/healthd", "temp", "html"):
        (prefix / folder).mkdir(parents=True, exist_ok=True)
    platformHealthd = PLATFORM_HEALTHD_CONF.replace(
        PLATFORM_LOG_FOLDER, f"{prefix}/logs/"
    )
    (prefix / "conf.d" / "elasticbeanstalk" / "healthd.conf").write_text(
        platformHealthd
    )
    found = dict.fromkeys(overrides, 0)
    for source in sorted((platformNginx / "conf.d").rglob("*.conf")):
        text = source.read_text(encoding="utf-8")
        for directive, value in overrides.items():
            text, count = re.subn(
                rf"^(\s*{re.escape(directive)}\s+)[^;]+;",
                rf"\g<1>{value};",
                text,
                flags=re.MULTILINE,
            )
            found[directive] += count
        target = prefix / "conf.d" / source.relative_to(platformNginx / "conf.d")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.replace(PLATFORM_LOG_FOLDER, f"{prefix}/logs/"))
    for directive, count in found.items():
        if count != 1:
            raise AssertionError(
                f"{directive} appears {count} times in the bundle's drop-ins, "
                "expected once"
            )
    # When the master process runs as root, nginx runs its workers as the
    # user nobody. The workers open the healthd log at each request, because
    # its name contains variables, so they need write access to the folder.
    for path in [prefix, *prefix.rglob("*")]:
        if path.is_dir():
            path.chmod(0o777 if path.name in ("logs", "healthd") else 0o755)


def startNginx(
    binary: Path, prefix: Path, upstreamPort: int, listenPort: int
) -> RunningProcess:
    """
    Write nginx.conf under C{prefix}, start nginx in the foreground and wait
    until it accepts connections on 127.0.0.1:C{listenPort}.
    """
    conf = prefix / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            prefix=prefix, upstreamPort=upstreamPort, listenPort=listenPort
        )
    )
    errorLog = prefix / "logs" / "error.log"
    command = [str(binary), "-p", f"{prefix}/", "-c", str(conf), "-e", str(errorLog)]
    checked = subprocess.run(
        [*command, "-t"], capture_output=True, text=True, timeout=60, check=False
    )
    if checked.returncode != 0:
        raise AssertionError(f"nginx -t rejected {conf}:\n{checked.stderr}")
    process = RunningProcess(
        command, baseEnvironment(["/usr/sbin", "/usr/bin", "/bin"]), prefix
    )
    try:
        waitForConnect("127.0.0.1", listenPort, process)
    except AssertionError:
        process.stop()
        raise AssertionError(f"nginx did not start:\n{errorLog.read_text()}") from None
    return process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Fetch Debian's nginx into a cache folder."
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help=f"the cache folder [default: ${CACHE_VARIABLE}, "
        "else ~/.cache/wsecho/nginx]",
    )
    arguments = parser.parse_args(argv)
    try:
        binary = fetchNginx(arguments.cache)
    except NginxUnavailableError as error:
        sys.stderr.write(f"eb_nginx: error: {error}\n")
        return 1
    sys.stdout.write(f"{binary}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
