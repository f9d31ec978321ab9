"""cli: the `scsp` command line (`scsp.cli.main`), one module per group of commands.

Kept free of imports, so that `python -m scsp.cli.solve` and `python -m scsp.cli.apikey` run their
module once.
"""
