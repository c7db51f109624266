# SimCLR vs MargNet on faint, compact SDSS sources: from SkyServer to results/table1.md.
# The science lives in the sdssclr package (src/); rules are declared in workflow/rules/.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))


configfile: str(Path(workflow.basedir) / "config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/survey.smk"
include: "workflow/rules/samples.smk"
include: "workflow/rules/stamps.smk"
include: "workflow/rules/pretrain.smk"


rule all:
    input:
        "results/stamps/index.parquet",
        expand(
            "results/pretrain/{dataset}/seed{seed}/embeddings.parquet",
            dataset=pretrain_datasets(),
            seed=config["seeds"],
        ),
