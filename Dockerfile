# syntax=docker/dockerfile:1

# One image for every process: the default command is the web process; run
# `python -m worker`, `python -m kyc.migrate` (release) or `python -m sandbox` with the same image.

# Build stage: a virtualenv holding kyc-relay and its dependencies. Only the venv
# is copied on, so pip, build tools and caches stay out of the runtime image.
FROM python:3.11-slim AS builder

# pip compiles the bytecode at install time: the runtime user cannot write it into the venv later.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH="/opt/venv/bin:$PATH"

RUN python -m venv /opt/venv
WORKDIR /src

# Dependencies get a layer of their own: they change far less often than the code.
# A pinned requirements.lock is used when the repository has one, else the ranges in pyproject.toml.
COPY pyproject.toml requirements.lock* ./
RUN if [ -f requirements.lock ]; then \
        pip install --no-cache-dir -r requirements.lock; \
    else \
        python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep=chr(10))" \
            > /tmp/requirements.txt \
        && pip install --no-cache-dir -r /tmp/requirements.txt; \
    fi

# The project itself, installed (not editable) so the runtime needs no source tree. pyproject.toml
# is named again so the COPY has a source even while README.md (optional) is absent.
COPY pyproject.toml README.md* ./
COPY kyc ./kyc
COPY service ./service
COPY worker ./worker
COPY sandbox ./sandbox
RUN pip install --no-cache-dir --no-deps .


# Runtime stage: the same base, so the venv's interpreter path is valid here too.
FROM python:3.11-slim

ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8000 \
    WEB_CONCURRENCY=2

# A home directory, because gunicorn (25.1 and later) keeps its control socket under ~/.gunicorn.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# The demo webhook subscriber (docker-compose's `subscriber`); it is not part of the installed package.
COPY devstack ./devstack

# Numeric, so runtimes that check for a non-root user (runAsNonRoot) can tell without /etc/passwd.
USER 10001:10001
EXPOSE 8000

# A shell, so $PORT and $WEB_CONCURRENCY are read when the container starts (platforms set PORT);
# exec, so gunicorn is PID 1 and gets the runtime's SIGTERM directly.
CMD ["sh", "-c", "exec gunicorn --bind 0.0.0.0:${PORT:-8000} --workers ${WEB_CONCURRENCY:-2} --worker-class gthread --threads ${WEB_THREADS:-4} --access-logfile - 'service:create_app()'"]
