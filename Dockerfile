# Tallinn's MCP server over streamable HTTP, installed from the wheel.
#
#   docker build -t tallinn .
#   docker run --rm -p 8000:8000 tallinn        # the bundled starter library
#   docker run --rm -p 8000:8000 -v "$PWD/my-library:/library:ro" -e TALLINN_LIBRARY=/library tallinn
#
# The server runs as an unprivileged user; its SQLite state store lives in /var/lib/tallinn
# (a volume), unless TALLINN_STORE_URL names a PostgreSQL database (see examples/compose/).
# The test suite lints this file with hadolint and runs its CMD and HEALTHCHECK outside a
# container; it does not build the image (examples/compose/README.md says what was run).

FROM python:3.12-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir "uv==0.13.9"
COPY pyproject.toml uv.lock README.md ./
COPY src ./src
# The wheel, and the lock file's versions of its dependencies as pip constraints.
RUN uv build --wheel --out-dir /dist \
    && uv export --locked --no-dev --extra postgres --no-emit-project --no-hashes \
       --quiet -o /dist/constraints.txt

FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TALLINN_STORE_URL=sqlite:////var/lib/tallinn/state.db
COPY --from=build /dist /tmp/dist
RUN set -- /tmp/dist/tallinn-*.whl \
    && pip install --no-cache-dir --constraint /tmp/dist/constraints.txt "$1[postgres]" \
    && rm -rf /tmp/dist \
    && groupadd --system --gid 10001 tallinn \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/tallinn --create-home \
       --shell /usr/sbin/nologin tallinn
USER 10001:10001
WORKDIR /var/lib/tallinn
VOLUME ["/var/lib/tallinn"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["tallinn", "serve", "--http", "--host", "0.0.0.0", "--port", "8000"]
