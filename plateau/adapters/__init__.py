"""Thin adapters between the pure core and a framework's optimizers.

Each module is named after the library it touches and imports it at its top;
none of them is imported by ``import plateau`` or by this package, so a user
pays only for the framework they use. Adapters translate learning rates and
metrics in and out of :func:`plateau.step`; every decision stays in the core.
"""
