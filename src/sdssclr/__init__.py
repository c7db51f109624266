"""Science code of the SDSS SimCLR-vs-MargNet workflow, one subpackage per stage of the pipeline.

Stages, in pipeline order (a stage imports only from earlier stages and the shared modules):

- ``survey``: where the data come from: the SkyServer client (``skyserver``), the SDSS frame file
  format (``frames``), frame providers - a local mirror or the archive (``fetch``) - and the
  offline synthetic survey (``synthetic``).
- ``samples``: sample selection: the MargNet cuts (``cuts``), the cut pools (``pools``), balanced
  experiment splits (``splits``), the unlabelled objects (``unlabelled``) and what each encoder
  pretrains on (``pretraining_set``).
- ``stamps``: WCS-aligned stamp cutting (``cutting``), memory-mapped shards and their index
  (``shards``), and objects loaded with their stamps and features (``objects``).
- ``learn``: augmentations, encoders, SimCLR's head and loss, MargNet and MargFormer networks,
  the training engine and checkpoints, pretraining, the classifiers of Table 1, supervised runs,
  conformal calibration, survey-wide predictions, and the run files they leave (``runfiles``,
  read without torch).
- ``results``: tables, statistics, figures, the conformal coverage report, similarity search,
  HTML pages and the published reference numbers (no torch).

Shared small pieces: ``bands`` (photometric constants), ``catalog`` (columns, features, flags,
classes and tasks), ``experiments`` (the experiment graph and split vocabulary), ``config``
(validation), ``registry`` (model names), ``io`` (atomic files, metadata, logs) and ``workflow``
(Snakefile glue).
"""

__version__ = "0.1.0"
