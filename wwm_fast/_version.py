"""The package version, in a module of its own: every module that records the version (output
fingerprints, segmentation cache headers, ``--version``) imports it from here, never from the
package ``__init__``, so no import depends on the order of lines there. Imports nothing."""

__version__ = "0.1.0"
