"""Support of ``recipes/`` and ``evaluation/``: not part of the gibloss API.

The data loaders with their offline stand-ins (:mod:`.data`), the paper's architectures
(:mod:`.models`), the configuration, checkpoint and reporting machinery of the recipes
(:mod:`.experiment`) and the definitions of the regularised-versus-plain study that its training
recipe and its evaluation share (:mod:`.study`). They change with the recipes, without
deprecation; code outside this repository should not import them.
"""
