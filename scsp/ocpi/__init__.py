"""OCPI 2.2.1 objects and the HTTP controllers of the modules we implement."""
