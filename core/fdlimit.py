"""Process limits: a server process holds one file descriptor per open connection."""

from __future__ import annotations

import resource

# Descriptors a server process uses besides its clients' connections: the Redis pool (256), the
# listening socket, log files, pipes and the Python runtime's own.
FD_RESERVE = 512


def raise_open_file_limit() -> tuple[int, int]:
    """Raise this process's soft limit of open files to its hard limit; return (soft, hard).

    Children forked afterwards (gunicorn's workers) inherit the raised limit. Where the system
    refuses (a hard limit the kernel caps lower, as on macOS), the limit stays as it was.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        wanted = max(soft, 1 << 20) if soft != resource.RLIM_INFINITY else soft
    else:
        wanted = hard
    if soft != resource.RLIM_INFINITY and wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)
