"""The one list of Table 1 model names, with what the workflow needs to know about each.

Rules (wildcards, inputs, GPU requests, config sections), the config schema (its enum of model
names is filled from here) and the tables (row order and labels) all read :data:`MODELS`; the
implementations in :mod:`sdssclr.learn.classifiers` attach to these names. This module imports no
heavy library, so the Snakefile can read it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelSpec:
    name: str
    label: str
    #: Section of the ``classifiers`` config the model reads (and nothing else).
    config_key: str
    #: Needs the SimCLR encoder pretrained on its dataset for the same seed.
    pretrained: bool = False
    #: Trains on a GPU when there is one (the rule asks for one).
    uses_gpu: bool = True
    #: Parts reported as rows of their own, from the same run: name -> label.
    components: dict[str, str] = field(default_factory=dict)
    #: Builds the pretraining encoder's architecture from random initialisation: its config
    #: section gets ``encoder`` (the pretraining's encoder, crop and normalisation).
    encoder_architecture: bool = False
    #: A pretrained model's random-init control: the same network and recipe from a random encoder.
    control: str = ""
    #: A model pretrained on labelled objects only names the model it ablates (the same model
    #: pretrained on all objects): their difference is what the unlabelled objects add.
    ablates: str = ""

    @property
    def pretraining(self) -> str:
        """The pretraining set of a pretrained model's encoder (:data:`PRETRAINING_SETS`): 'labelled'
        (the labelled training objects only) for a model that ablates another, else 'all'."""
        return "labelled" if self.ablates else "all"


#: The pretraining sets of every encoder: 'all' (labelled training and unlabelled objects) and
#: 'labelled' (the labelled training objects only).
PRETRAINING_SETS = ("all", "labelled")


#: Every Table 1 model, in table order.
MODELS: dict[str, ModelSpec] = {s.name: s for s in (
    ModelSpec("gbdt", "Gradient-boosted trees (24 features)", "gbdt", uses_gpu=False),
    ModelSpec("margnet", "MargNet (ours)", "margnet",
              components={"margnet-ann": "MargNet ANN (24 features)", "margnet-cnn": "MargNet CNN (stamps)"}),
    ModelSpec("simclr", "SimCLR fine-tuned + features", "finetune", pretrained=True, control="twotower"),
    ModelSpec("twotower", "Two towers, random init (control)", "finetune", encoder_architecture=True),
    ModelSpec("simclr-linear", "SimCLR linear probe + features", "linear", pretrained=True, control="linear-random"),
    ModelSpec("linear-random", "Linear probe, random-init encoder (control)", "linear", encoder_architecture=True),
    ModelSpec("simclr-margformer", "SimCLR + MargFormer (fine-tuned)", "margformer", pretrained=True,
              control="margformer"),
    ModelSpec("simclr-margformer-labelled", "SimCLR + MargFormer, pretrained on labelled objects only",
              "margformer", pretrained=True, control="margformer", ablates="simclr-margformer"),
    ModelSpec("margformer", "MargFormer, random init (control)", "margformer", encoder_architecture=True),
)}

#: Every pretrained model has its control (a control may serve several: the labelled-only row shares
#: the control of the model it ablates).
assert all(MODELS[s.control].encoder_architecture and MODELS[s.control].config_key == s.config_key
           for s in MODELS.values() if s.pretrained), "a pretrained model's control must share its config"
assert all(MODELS[s.ablates].pretrained and not MODELS[s.ablates].ablates and MODELS[s.ablates].control == s.control
           for s in MODELS.values() if s.ablates), "a labelled-only model ablates a model with the same control"

#: Label of every table row: the models and their components.
LABELS: dict[str, str] = {k: v for s in MODELS.values() for k, v in {s.name: s.label, **s.components}.items()}


def spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r} (expected one of {list(MODELS)})") from None


def row_names(models) -> list[str]:
    """Table rows of ``models`` in table order, each model followed by its components."""
    return [row for name, s in MODELS.items() if name in models for row in (name, *s.components)]


def model_config(config: dict, name: str) -> dict:
    """The configuration one model's training reads from the whole workflow ``config``: its own
    ``classifiers`` section and, for a model built on the pretraining encoder's architecture, that
    architecture (``encoder``: name, crop, normalisation). Nothing else, so that no other key can
    trigger its rerun."""
    model = spec(name)
    cfg = dict(config["classifiers"][model.config_key])
    if model.encoder_architecture:
        pre = config["pretrain"]
        cfg["encoder"] = {"name": pre["encoder"], "crop": pre["augment"]["crop"], "normalization": pre["normalization"]}
    return cfg
