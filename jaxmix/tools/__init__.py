"""Tools for people: model files (`files.py`), figures (`plot.py`), reading data tables and the command
line's commands (`cli_fit`, `cli_predict` (and info), `cli_select`, `cli_demo`, `cli_common`) and report.
The command line's parser and entry point are `jaxmix/cli.py`, the estimators `jaxmix/sklearn/`.
"""
