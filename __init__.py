"""mra: regional mutual recognition of professional qualifications.

The repository root is the ``mra`` package: ``mra.core`` (domain and plugin contract, no I/O),
``mra.events`` (event schemas and Kafka transport), ``mra.services`` (the running services),
``mra.plugins`` (the built-in jurisdictions) and ``mra.cli`` (the command line).
"""

__version__ = "0.1.0"
