"""Reporters: turn a Review into checkpatch lines, SARIF, b4 review JSON and reply mails.

`lines.format_line` is the one checkpatch-style line format; checkpatch output, `b4-check` and the
sendemail hook all print through it.
"""
