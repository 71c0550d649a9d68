"""WSGI entry for production: `gunicorn wsgi:app` from the repository root.

gunicorn.conf.py there selects the gevent worker (websockets need it) and the shutdown timeouts;
`-b 0.0.0.0:8000 -w 1` and the like on the command line override it.
"""

from app import create_app

app = create_app()
