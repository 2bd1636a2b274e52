"""Tools for people: model files (`files.py`), figures (`plot.py`), reading data tables and the command
line's report. The command line itself is `jaxmix/cli.py`, the estimators `jaxmix/sklearn/`.
"""
