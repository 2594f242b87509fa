# The wsecho image: twistd -n wsecho on port 8080, as a non-root user.
#
# The build context is either this checkout or the unpacked bundle that
# `python -m wsecho.bundle` writes for Elastic Beanstalk. The bundle copies
# every source that a COPY line below names, so keep the two in step by
# editing only this file.

# Build stage: turn the project's source into a wheel.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml setup.cfg setup.py README.md ./
COPY wsecho ./wsecho
COPY twisted ./twisted
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Runtime stage: the wheel and its dependencies, nothing else.
FROM python:3.11-slim-bookworm
COPY --from=build /wheels /wheels
# Twisted writes dropin.cache next to the plugins on first use. Writing it
# here, as root, spares the non-root server a warning on every start.
# NOTE: the dependencies are not pinned, so each build takes the newest
# Twisted and Autobahn releases that setup.cfg allows.
RUN pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && python -c "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))"
RUN groupadd --system --gid 10001 wsecho \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --no-log-init \
        --shell /usr/sbin/nologin wsecho
# A numeric user lets orchestrators check that the container is not root.
USER 10001:10001
ENV SERVER_PORT=8080 PYTHONUNBUFFERED=1
EXPOSE 8080
# Elastic Beanstalk checks health through its load balancer instead; this
# check serves `docker run` and other orchestrators. It reads SERVER_PORT as
# a port number, so a SERVER_PORT set to an endpoint description needs
# a HEALTHCHECK of its own.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('SERVER_PORT', '8080'), timeout=4)"]
CMD ["twistd", "-n", "--pidfile=", "wsecho"]
