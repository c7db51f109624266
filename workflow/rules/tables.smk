rule table1:
    """Table 1: every experiment x task x model, mean +- std over seeds, with published reference rows."""
    input:
        metrics=run_metrics(EXPERIMENTS),
        predictions=run_files("predictions.parquet", EXPERIMENTS),
    output:
        "results/table1.md",
    log:
        "results/logs/table1.log",
    conda:
        "../../envs/data.yaml"
    params:
        experiments=EXPERIMENTS,
        tasks=TASKS,
        models=MODELS,
        seeds=SEEDS,
        split_seeds=SPLIT_SEEDS,
        title="Table 1: MargNet vs SimCLR on compact and faint SDSS sources",
        comparison=config["comparison"],
    script:
        "../scripts/table.py"


rule experiment_table:
    """One experiment's rows alone (rerun one experiment with this target)."""
    input:
        metrics=lambda wc: run_metrics([wc.experiment]),
        predictions=lambda wc: run_files("predictions.parquet", [wc.experiment]),
    output:
        "results/experiments/{experiment}.md",
    log:
        "results/logs/experiment_table_{experiment}.log",
    conda:
        "../../envs/data.yaml"
    params:
        experiments=lambda wc: [wc.experiment],
        tasks=TASKS,
        models=MODELS,
        seeds=SEEDS,
        split_seeds=SPLIT_SEEDS,
        title=lambda wc: f"Experiment {wc.experiment}: MargNet vs SimCLR",
        comparison=config["comparison"],
    script:
        "../scripts/table.py"


rule label_efficiency:
    """Accuracy against the number of labels used (label_efficiency.experiment)."""
    input:
        metrics=label_efficiency_files(),
        predictions=label_efficiency_files("predictions.parquet"),
    output:
        table="results/label_efficiency.md",
        plot=report(
            "results/label_efficiency.png",
            caption="../report/label_efficiency.rst",
            category="1. Tables",
        ),
    log:
        "results/logs/label_efficiency.log",
    conda:
        "../../envs/data.yaml"
    params:
        le=LE,
        seeds=SEEDS,
        split_seeds=SPLIT_SEEDS,
        comparison=config["comparison"],
    script:
        "../scripts/label_efficiency.py"


rule confusion_plot:
    """Confusion matrices of every model for one experiment and task, summed over seeds."""
    input:
        lambda wc: run_metrics([wc.experiment], [wc.task]),
    output:
        report(
            "results/figures/confusion_{experiment}_{task}.png",
            caption="../report/confusion.rst",
            category="2. Per experiment",
            subcategory="Confusion matrices",
            labels={"experiment": "{experiment}", "task": "{task}"},
        ),
    log:
        "results/logs/confusion_{experiment}_{task}.log",
    conda:
        "../../envs/data.yaml"
    params:
        models=MODELS,
    script:
        "../scripts/confusion_plot.py"
