# SimCLR vs MargNet on faint, compact SDSS sources: from SkyServer to results/table1.md.
# The science lives in the sdssclr package (src/); rules are declared in workflow/rules/.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))


configfile: str(Path(workflow.basedir) / "config.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/survey.smk"
include: "workflow/rules/samples.smk"
include: "workflow/rules/stamps.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        final_targets(),
