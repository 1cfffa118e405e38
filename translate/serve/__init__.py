"""The web studio (`translate serve`): one page and an HTTP API over exports, served offline.

app.py holds the routes and error codes; guard.py which requests are answered at all (Host, Origin); limits.py
what one upload may ask for, checked from its header; upload.py decodes an upload (and its colour hint map) the way
`translate convert` decodes a file; worker.py gives each export two lanes (images within one tile, larger ones),
lane.py runs a lane's bounded queue and batching and replaces its child process when work outlives its deadline,
engine.py is that child; card.py describes an export; command.py the flags and the server; static/ is the page
(plain HTML/JS/CSS, nothing fetched from elsewhere).
"""
