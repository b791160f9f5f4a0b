"""A bench-only Django project serving dj-stripe's webhook view: the peer of
``bench/peer.py``. It runs in its own virtualenv (``.venv`` here, built from
``requirements.txt`` by ``bench/peer.py``); nothing in production imports it."""
