"""The web studio (`translate serve`): one page and an HTTP API over exports, served offline from one process.

worker.py runs each export's generators behind a bounded queue, upload.py checks and decodes an uploaded file the
way `translate convert` decodes one, card.py describes an export, app.py holds the routes and limits, command.py
the flags and the server; static/ is the page (plain HTML/JS/CSS, nothing fetched from elsewhere).
"""
