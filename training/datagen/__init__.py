"""QA dataset generation from the clause graph, split by job.

``source`` reads the graph, ``templates``/``template_gen`` and ``llm`` write candidate pairs,
``augment`` varies questions, ``quality`` scores and bands them, ``splits`` assigns clause groups,
``export`` writes the training formats and ``report`` the figures. The runner that ties them
together is :mod:`training.dataset` (configured by :mod:`training.dataset_config`).
"""
