"""Studies of binary networks built on ``bnnlib``, and the machinery they share.

Shared machinery (top level, imported by every study, never importing a study):
``sweep`` (many ``TrainConfig`` runs, one record folder each, resumable), ``figures`` (one
style, deterministic saving of figures and tables with manifests, the gallery), ``nbparams``
and ``notebooks`` (parameter cells, presets, the papermill runner). One package per study,
the same rooms in each: ``complexity``, ``error_accumulation``, ``gain_surface``, ``dwr``
(and ``regime``). A study provides ``__init__.py`` (its public API), ``study.py`` (configs,
presets, run), ``tables.py``, ``plots.py``, ``fit.py`` / ``paper.py`` where it has fits or the
paper's numbers as data, and ``__main__.py`` (its CLI). To the notebook runner a study is a
notebook ``notebooks/NAME.ipynb`` with one cell tagged ``parameters`` (type-annotated
assignments, a help comment each, including ``figures_dir``) plus presets
``notebooks/presets/NAME/PRESET.yaml``; the notebook only calls the study's functions, which
write through ``analysis.figures.save_figure`` / ``save_table``. Layers and import rules:
``docs/ARCHITECTURE.md``.
"""
