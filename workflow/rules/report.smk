rule conformal:
    """Conformal prediction sets of every run of the first split seed: coverage and set size per
    class and vs r magnitude."""
    input:
        run_files("predictions.parquet", EXPERIMENTS, split_seeds=[FIRST_SPLIT]),
    output:
        table="results/conformal.md",
        plot=report(
            "results/figures/conformal_coverage.png",
            caption="../report/conformal.rst",
            category="3. Calibrated prediction sets",
        ),
    log:
        "results/logs/conformal.log",
    conda:
        "../../envs/data.yaml"
    params:
        models=MODELS,
        alpha=config["conformal"]["alpha"],
        mondrian=config["conformal"]["mondrian"],
        n_bins=config["conformal"]["magnitude_bins"],
    script:
        "../scripts/conformal.py"


rule predict:
    """Class probabilities and prediction sets of every stamped object, from every seed's model."""
    input:
        models=lambda wc: run_files(
            "model.pt",
            [wc.experiment],
            [wc.task],
            [wc.model],
            split_seeds=[FIRST_SPLIT],
        ),
        split=lambda wc: splits_of([wc.experiment], [FIRST_SPLIT])[0],
        # the experiment's own objects and the unlabelled objects of its dataset's fields
        index=lambda wc: predict_stamps(wc.experiment),
        stamps=lambda wc: stamp_files(predict_stamps(wc.experiment)),
    output:
        "results/predictions/{experiment}/{task}/{model}.parquet",
    log:
        "results/logs/predict_{experiment}_{task}_{model}.log",
    benchmark:
        "results/benchmarks/predict_{experiment}_{task}_{model}.tsv"
    wildcard_constraints:
        experiment="|".join(OWN_EXPERIMENTS),
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        gpu=model_gpus,
        mem_mb=16000,
        runtime=120,
    params:
        alpha=config["conformal"]["alpha"],
        mondrian=config["conformal"]["mondrian"],
    script:
        "../scripts/predict.py"


rule similarity_index:
    """The saved similarity-search index of one encoder's embeddings (python -m sdssclr similar)."""
    input:
        pretrained("embeddings"),
    output:
        index="results/similarity/{dataset}/split{split}/seed{seed}/index.faiss",
        vectors="results/similarity/{dataset}/split{split}/seed{seed}/vectors.npy",
        objid="results/similarity/{dataset}/split{split}/seed{seed}/objid.npy",
    log:
        "results/logs/similarity_index_{dataset}_split{split}_seed{seed}.log",
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=8000,
    script:
        "../scripts/similarity_index.py"


rule pretrain_curve_plot:
    """Loss, learning rate, images/s and validation k-NN accuracy of one pretraining run."""
    input:
        pretrained("curve"),
    output:
        report(
            "results/figures/pretrain_{dataset}_split{split}_seed{seed}.png",
            caption="../report/pretrain_curve.rst",
            category="4. Pretraining",
            subcategory="Curves",
            labels={"dataset": "{dataset}", "split": "{split}", "seed": "{seed}"},
        ),
    log:
        "results/logs/pretrain_curve_plot_{dataset}_split{split}_seed{seed}.log",
    conda:
        "../../envs/data.yaml"
    params:
        source=SOURCE,
    script:
        "../scripts/pretrain_curve.py"


rule embedding_map:
    """t-SNE of an encoder's embeddings of its dataset's test objects, by class and by r magnitude."""
    input:
        embeddings=pretrained("embeddings"),
        split=pretrain_split,
    output:
        report(
            "results/figures/embedding_{dataset}_split{split}_seed{seed}.png",
            caption="../report/embedding_map.rst",
            category="4. Pretraining",
            subcategory="Embedding maps",
            labels={"dataset": "{dataset}", "split": "{split}", "seed": "{seed}"},
        ),
    log:
        "results/logs/embedding_map_{dataset}_split{split}_seed{seed}.log",
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=8000,
    script:
        "../scripts/embedding_map.py"


rule gallery:
    """Most confident and misclassified test stamps per class, MargNet and the best SimCLR model."""
    input:
        predictions=lambda wc: run_files(
            "predictions.parquet",
            [wc.experiment],
            [wc.task],
            split_seeds=[FIRST_SPLIT],
        ),
        metrics=lambda wc: run_metrics(
            [wc.experiment], [wc.task], split_seeds=[FIRST_SPLIT]
        ),
        index=lambda wc: stamp_index(FIRST_SPLIT, wc.experiment),
        stamps=lambda wc: stamp_files([stamp_index(FIRST_SPLIT, wc.experiment)]),
    output:
        report(
            "results/figures/gallery_{experiment}_{task}.png",
            caption="../report/gallery.rst",
            category="2. Per experiment",
            subcategory="Stamp galleries",
            labels={"experiment": "{experiment}", "task": "{task}"},
        ),
    log:
        "results/logs/gallery_{experiment}_{task}.log",
    conda:
        "../../envs/data.yaml"
    params:
        models=MODELS,
        baseline=config["comparison"]["baseline"],
        source=SOURCE,
    script:
        "../scripts/gallery.py"


rule accuracy_vs_magnitude:
    """Test accuracy of every model in bins of r magnitude."""
    input:
        lambda wc: run_files(
            "predictions.parquet",
            [wc.experiment],
            [wc.task],
            split_seeds=[FIRST_SPLIT],
        ),
    output:
        report(
            "results/figures/accuracy_vs_mag_{experiment}_{task}.png",
            caption="../report/accuracy_vs_mag.rst",
            category="2. Per experiment",
            subcategory="Accuracy vs r magnitude",
            labels={"experiment": "{experiment}", "task": "{task}"},
        ),
    log:
        "results/logs/accuracy_vs_magnitude_{experiment}_{task}.log",
    conda:
        "../../envs/data.yaml"
    params:
        models=MODELS,
        source=SOURCE,
    script:
        "../scripts/accuracy_vs_mag.py"


rule html_page:
    """A results table as an HTML page (the report shows HTML, not markdown)."""
    input:
        "results/{page}.md",
    output:
        report(
            "results/report/{page}.html",
            caption="../report/table.rst",
            category="1. Tables",
            labels={"table": "{page}"},
        ),
    log:
        "results/logs/html_page_{page}.log",
    wildcard_constraints:
        page="table1|label_efficiency|conformal",
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/html_page.py"
