"""``python -m privaudit.cli``: the same as the ``privaudit`` console script."""

from .app import main

main()
