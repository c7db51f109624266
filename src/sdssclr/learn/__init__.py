"""Stage 4, learning: SimCLR pretraining, the Table 1 classifiers and their runs, conformal
calibration and survey-wide predictions. Its run files (:mod:`sdssclr.learn.runfiles`) and metric
definitions (:mod:`sdssclr.learn.metrics`) import no torch, so later stages read them cheaply."""
