"""Built-in jurisdiction plugins, loaded through the ``mra.jurisdictions`` entry-point group like any other."""
