"""Pieces shared by the API and the workers: settings, database, ORM models, artifact store.

Everything here stays importable without torch, so the API process never pays for (or risks)
loading ML libraries.
"""
