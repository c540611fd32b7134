"""Privacy policies as code, shipped with privaudit; compiled by :mod:`privaudit.policy`."""
