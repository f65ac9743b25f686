"""Market data, features, the multi-ticker LSTM ensemble, its training, evaluation and export.

Importing this package (or ``models.data`` / ``models.features``) never imports torch:
only ``models.train`` (and its ``models.fitting``), ``models.net`` and ``models.export`` do.
"""
