"""Stage 2, the samples: the MargNet cuts, the pools they select, balanced experiment splits, the
unlabelled objects of the sample's fields and the pretraining set of each encoder."""
