"""DWR study: the paper's CIFAR-10 Tables 4-7 reproduced, and the speed of DWR backbones.

Rooms: ``pipeline`` (the method: widen -> pre-train -> prune -> train, one record per stage),
``study`` (what each table runs, presets' training fields, running the jobs), ``paper`` (the
paper's numbers and claims as data), ``tables`` (rows from records only, Markdown/CSV tables,
orderings), ``plots`` (accuracy vs OPs), ``speed`` (one interleaved timing run of original vs
DWR backbones) and ``__main__`` (CLI: ``python -m analysis.dwr``). The notebook is
``notebooks/dwr_tables.ipynb``.
"""
from . import paper, pipeline, plots, speed, study, tables
from .paper import CLAIMS, PAPER, paper_rows
from .pipeline import (calibration_images, dwr, load_stage_records, prune_stage, read_run,
                       run_config, spec_of)
from .plots import accuracy_vs_ops
from .speed import measure_speed, speed_markdown, speed_rows
from .study import TABLES, find_record, jobs, record_index, run_job, run_jobs, train_kw
from .tables import (build_table, orderings, records_summary, resolve_dataset_name, table_frame,
                     welch_ci, write_orderings, write_speed, write_table)

__all__ = ["paper", "pipeline", "plots", "speed", "study", "tables",
           "CLAIMS", "PAPER", "paper_rows", "calibration_images", "dwr", "load_stage_records",
           "prune_stage", "read_run", "run_config", "spec_of", "accuracy_vs_ops", "measure_speed",
           "speed_markdown", "speed_rows", "TABLES", "find_record", "jobs", "record_index",
           "run_job", "run_jobs", "train_kw", "build_table", "orderings", "records_summary",
           "resolve_dataset_name", "table_frame", "welch_ci", "write_orderings", "write_speed",
           "write_table"]
