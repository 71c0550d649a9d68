"""WSGI entry for production: gunicorn -k gevent -w 1 -b 0.0.0.0:8000 wsgi:app"""

from app import create_app

app = create_app()
