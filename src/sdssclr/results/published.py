"""Published figures quoted as reference rows (accuracy / macro precision / macro recall, %).

These are literature values, not results of this workflow; every table prints them under their
own name with their source.
"""

MARGNET_SOURCE = "Chaini et al. 2023, MNRAS 518, 3123, Table 5 (SDSS DR16)"
MARGFORMER_SOURCE = "AstroFormer README (its exp2 used a 6:1:1 split)"

#: (experiment, task) -> {model: (accuracy, precision, recall)}
PUBLISHED = {
    ("exp1", "SG"): {"ANN": (97.9, 97.8, 97.9), "CNN": (97.4, 97.4, 97.4), "MargNet": (98.1, 98.1, 98.1),
                     "MargFormer": (98.1, 98.1, 98.1)},
    ("exp1", "SGQ"): {"ANN": (93.0, 93.0, 93.0), "CNN": (91.6, 91.7, 91.6), "MargNet": (93.3, 93.3, 93.3),
                      "MargFormer": (93.2, 93.3, 93.2)},
    ("exp2", "SG"): {"ANN": (96.0, 96.0, 96.0), "CNN": (95.2, 95.2, 95.2), "MargNet": (96.9, 96.9, 96.9),
                     "MargFormer": (97.1, 97.1, 97.1)},
    ("exp2", "SGQ"): {"ANN": (86.0, 86.1, 86.1), "CNN": (84.2, 84.5, 84.2), "MargNet": (86.7, 86.8, 86.7),
                      "MargFormer": (86.7, 86.8, 86.7)},
    ("exp3", "SG"): {"ANN": (91.6, 92.4, 91.6), "CNN": (89.3, 90.4, 89.3), "MargNet": (92.0, 92.7, 92.0),
                     "MargFormer": (92.7, 93.2, 92.7)},
    ("exp3", "SGQ"): {"ANN": (73.1, 76.3, 73.1), "CNN": (69.4, 73.9, 69.4), "MargNet": (73.4, 76.5, 73.4),
                      "MargFormer": (75.2, 77.9, 75.3)},
}


def citation(model: str) -> str:
    """The source of a published reference row."""
    return MARGFORMER_SOURCE if model == "MargFormer" else MARGNET_SOURCE
