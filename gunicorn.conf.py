"""gunicorn reads this file from the working directory: JSON logs in every web worker."""

from kyc import logs

# One JSON line per request, like the application's own lines; no query strings (they may hold input).
access_log_format = (
    '{"logger": "access", "method": "%(m)s", "path": "%(U)s", "status": %(s)s, '
    '"duration_ms": %(M)s, "request_id": "%({x-request-id}o)s"}'
)


def post_fork(server: object, worker: object) -> None:
    logs.configure()
