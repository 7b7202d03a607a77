"""Test support that ships with the package (used by nvr's own tests and by ``nvr demo``
never): replay openers, fault-injecting directories, database factories.
No module outside ``nvr/testing`` imports this package."""
