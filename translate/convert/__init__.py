"""Folder -> folder conversion (`translate convert`): plan (which files, which names, which process), io (decode,
channels, atomic encode), manifest (what a folder holds and with which model), gallery (HTML to look at it).
The command itself is folder.py."""
